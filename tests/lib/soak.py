#!/usr/bin/env python3
"""soak.py: steady load on `visiond up`, sampling every process's RSS and open fds.

Load (closed loops, so the rate is steady and never piles up):
  - POST /embeddings with new Fashion-MNIST images (cache misses: the model
    server computes them), every 4th request on images already embedded (cache
    hits), every 5th as a multipart upload (the api's upload path);
  - POST /jobs: `count` jobs (side table) and now and then an `embed` job;
  - GET /jobs/ID, GET /healthz, GET /metrics.
Every --interval seconds it reads VmRSS (/proc/PID/status) and the number of
open fds (/proc/PID/fd) of `up`, the model server, each worker supervisor and
the api. After --warmup seconds it prints per process the RSS slope (KB/min,
least squares) and the fd growth: min over the last third of the samples
minus max over the first third, counted only when the floor also rose from
the first third to the middle one and from the middle one to the last (> 0
only when fds pile up steadily; a request or a horse in flight at one sample,
or a pool opening one more handle once under a burst, does not count).

With --check it fails (exit 1) when a process's fds grew, an RSS slope is over
--max-slope-kb over the whole window and over its second half (a leak keeps
growing; a one-time step such as a model's first load lifts only the first), a request or a job failed, `up` did not exit 0 on SIGTERM, or
a sanitizer report (LeakSanitizer, AddressSanitizer, UBSan) is in the log.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chaos import Up, alive, children, cmdline, http, log, vd  # noqa: E402


def proc_sample(pid):
    rss = None
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        fds = len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None
    return rss, fds


def rss_parts(pid):
    """{RssAnon, RssFile, RssShmem} of pid in bytes ({} when gone)."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k = line.split(":")[0]
                if k in ("RssAnon", "RssFile", "RssShmem"):
                    out[k] = int(line.split()[1]) * 1024
    except OSError:
        return {}
    return out


def inner_sample(up):
    """The api's and the model server's own memory accounts ({name: bytes}; {} on failure),
    and what their resident memory is made of (anonymous, file-backed, shared memory)."""
    out = {}
    for name, pid in processes(up).items():
        if name in ("api", "model-server"):
            for k, v in rss_parts(pid).items():
                out["%s.%s" % (name, k)] = v
    try:
        st, text = http("GET", up.api + "/metrics", timeout=10)
        if st == 200:
            for line in text.splitlines():
                for key in ("visiond_malloc_in_use_bytes", "visiond_malloc_held_bytes",
                            "visiond_sqlite_memory_bytes"):
                    if line.startswith(key + " "):
                        out["api." + key[len("visiond_"):]] = int(float(line.split()[1]))
        st, h = http("GET", up.api + "/healthz", timeout=10)
        p = h.get("model_server", {}).get("health", {}).get("process", {}) if st == 200 else {}
        for key in ("malloc_in_use_bytes", "malloc_held_bytes"):
            if key in p:
                out["model-server." + key] = p[key]
    except Exception:  # a sample is best effort: the load's own checks catch real failures
        return out
    return out


def slope(xs, ys):
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


class Load:
    def __init__(self, a, up, images, side):
        self.a, self.up, self.images, self.side = a, up, images, side
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts = {"embed_requests": 0, "images": 0, "uploads": 0, "cache_hits": 0,
                       "jobs": 0, "gets": 0}
        self.errors = []
        self.job_ids = []
        self.next_image = 0

    def err(self, msg):
        with self.lock:
            self.errors.append(msg)
        log("load error: " + msg[:300])

    def take(self, n):
        with self.lock:
            i = self.next_image
            self.next_image += n
        return [self.images[(i + k) % len(self.images)] for k in range(n)]

    def embed_loop(self):
        k = 0
        while not self.stop.is_set():
            k += 1
            if k % 4 == 0:
                paths = self.images[:self.a.batch]  # cache hits
            else:
                paths = self.take(self.a.batch)
            if k % 5 == 0:
                cmd = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "120",
                       "-F", "vectors=false"]
                for i, p in enumerate(paths):
                    cmd += ["-F", "f%d=@%s" % (i, p)]
                r = subprocess.run(cmd + [self.up.api + "/embeddings"], capture_output=True, text=True)
                if r.stdout.strip() != "200":
                    self.err("upload to /embeddings: %s" % r.stdout)
                with self.lock:
                    self.counts["uploads"] += 1
            else:
                st, body = http("POST", self.up.api + "/embeddings",
                                {"paths": paths, "vectors": k % 2 == 0}, timeout=120)
                if st != 200:
                    self.err("POST /embeddings: %s %s" % (st, str(body)[:200]))
                elif body.get("failed"):
                    self.err("POST /embeddings: %d failed" % body["failed"])
                else:
                    with self.lock:
                        self.counts["cache_hits"] += body.get("cached", 0)
            with self.lock:
                self.counts["embed_requests"] += 1
                self.counts["images"] += len(paths)
            self.stop.wait(self.a.pause)

    def job_loop(self):
        k = 0
        while not self.stop.is_set():
            k += 1
            if k % 20 == 0:
                job = {"type": "embed", "payload": {"paths": self.take(2)}, "max_retries": 2}
            else:
                job = {"type": "count", "payload": {"db": self.side}}
            st, body = http("POST", self.up.api + "/jobs", job)
            if st != 201:
                self.err("POST /jobs: %s %s" % (st, str(body)[:200]))
            else:
                with self.lock:
                    self.job_ids.append(body["id"])
                    self.counts["jobs"] += 1
                st, _ = http("GET", self.up.api + "/jobs/" + body["id"])
                if st != 200:
                    self.err("GET /jobs/ID: %s" % st)
            for path in ("/healthz", "/metrics"):
                st, _ = http("GET", self.up.api + path)
                if st != 200:
                    self.err("GET %s: %s" % (path, st))
            with self.lock:
                self.counts["gets"] += 3
            self.stop.wait(self.a.job_pause)


def processes(up):
    """{name: pid} of up and its long-lived children (horses come and go)."""
    out = {"up": up.proc.pid}
    n = 0
    for c in sorted(children(up.proc.pid)):
        argv = cmdline(c)
        if len(argv) > 1 and alive(c):
            role = argv[1].decode(errors="replace")
            if role == "worker":
                n += 1
                role = "worker-%d" % n
            elif role == "serve":
                role = "api"
            out[role] = c
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--visiond", required=True)
    p.add_argument("--models", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--duration", type=float, default=600, help="seconds of load")
    p.add_argument("--warmup", type=float, default=60, help="seconds left out of the slopes")
    p.add_argument("--interval", type=float, default=5, help="seconds between samples")
    p.add_argument("--batch", type=int, default=2, help="images per /embeddings request")
    p.add_argument("--pause", type=float, default=0.5, help="seconds between /embeddings requests")
    p.add_argument("--job-pause", type=float, default=0.1, help="seconds between POST /jobs")
    p.add_argument("--per-label", type=int, default=600, help="Fashion-MNIST images per label")
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--model-threads", type=int, default=2)
    p.add_argument("--check", action="store_true")
    p.add_argument("--max-slope-kb", type=float, default=20000, help="KB/min, with --check")
    p.add_argument("--sanitized", action="store_true", help="ASan build: no RSS bound")
    a = p.parse_args()
    a.work = os.path.abspath(a.work)
    a.images = os.path.join(a.work, "media")
    os.makedirs(a.images, exist_ok=True)
    vd(a, "dataset", "fashion-mnist", "--out", a.images, "--per-label", str(a.per_label),
       "--split", "train")
    images = []
    for label in sorted(os.listdir(a.images)):
        d = os.path.join(a.images, label)
        images += [os.path.join(d, f) for f in sorted(os.listdir(d))]
    # interleave the labels so that every request sees several
    images.sort(key=lambda x: (os.path.basename(x), x))
    side = os.path.join(a.work, "side.db")
    subprocess.run(["sqlite3", side, "PRAGMA journal_mode=WAL; CREATE TABLE runs(job_id TEXT, "
                    "attempt INT, pid INT);"], check=True, capture_output=True)

    up = Up(a, os.path.join(a.work, "data"), None, "up")
    failures = []
    samples = {}  # name -> [(t, rss, fds)]
    inner = []  # [(t, {metric: bytes})]: what the processes say of their own memory
    load = None
    try:
        up.start()
        load = Load(a, up, images, side)
        threads = [threading.Thread(target=load.embed_loop), threading.Thread(target=load.job_loop)]
        for t in threads:
            t.start()
        t0 = time.time()
        log("load for %.0f s (warm-up %.0f s), a sample every %.0f s" %
            (a.duration, a.warmup, a.interval))
        while time.time() - t0 < a.duration:
            now = time.time() - t0
            for name, pid in processes(up).items():
                s = proc_sample(pid)
                if s:
                    samples.setdefault(name, []).append((now, s[0], s[1]))
            inner.append((now, inner_sample(up)))
            time.sleep(max(0.0, a.interval - (time.time() - t0 - now)))
        load.stop.set()
        for t in threads:
            t.join()
        # let the last jobs end
        end = time.time() + 120
        while time.time() < end:
            c = json.loads(vd(a, "queue", "stats", queue="sqlite:" + os.path.join(up.data, "visiond.db")))["counts"]
            if c.get("queued", 0) + c.get("scheduled", 0) + c.get("started", 0) == 0:
                break
            time.sleep(0.5)
        stats = c
    finally:
        if load:
            load.stop.set()
        rc = up.stop() if up.proc else None
    if rc != 0:
        failures.append("visiond up exited %s on SIGTERM" % rc)

    csv = os.path.join(a.work, "samples.csv")
    with open(csv, "w") as f:
        f.write("process,seconds,rss_kb,fds\n")
        for name in sorted(samples):
            for t, rss, fds in samples[name]:
                f.write("%s,%.1f,%d,%d\n" % (name, t, rss, fds))
    log("samples in %s (kept with KEEP=1)" % csv)
    # slope: least squares over everything after the warm-up; late: over its second half
    # only (a cache filling up flattens there, a leak does not); floor: over each minute's
    # lowest sample.
    print("%-14s %7s %9s %9s %12s %11s %12s %5s %5s %5s %7s" %
          ("process", "samples", "rss0 KB", "rss1 KB", "slope KB/min", "late KB/min",
           "floor KB/min", "fd0", "fd1", "fdmax", "fd grew"))
    for name in sorted(samples):
        pts = [x for x in samples[name] if x[0] >= a.warmup]
        if len(pts) < 3:
            continue
        ts = [x[0] / 60.0 for x in pts]
        sl = slope(ts, [x[1] for x in pts])
        half = len(pts) // 2
        late = slope(ts[half:], [x[1] for x in pts[half:]])
        # floor: the lowest sample of each minute (a batch in flight at a sample is a spike,
        # not growth; a leak lifts the floor too)
        mins = {}
        for t, rss, _ in pts:
            k = int(t // 60)
            mins[k] = min(mins.get(k, rss), rss)
        fl = slope(sorted(mins), [mins[k] for k in sorted(mins)]) if len(mins) >= 2 else 0.0
        # fd growth: a leak lifts the count again and again; a pool that opens one more
        # handle under a burst (bounded by its size) lifts it once. So the growth counts
        # only when the floor rises from the first third to the middle one AND from the
        # middle one to the last (min of a later third minus max of the earlier one).
        third = max(1, len(pts) // 3)
        first, mid, last = pts[:third], pts[third:len(pts) - third], pts[-third:]
        step1 = min(x[2] for x in mid) - max(x[2] for x in first) if mid else 0
        step2 = min(x[2] for x in last) - max(x[2] for x in mid) if mid else 0
        grew = min(x[2] for x in last) - max(x[2] for x in first)
        if step1 <= 0 or step2 <= 0:
            grew = min(grew, 0)
        print("%-14s %7d %9d %9d %12.0f %11.0f %12.0f %5d %5d %5d %7d" %
              (name, len(pts), pts[0][1], pts[-1][1], sl, late, fl, pts[0][2], pts[-1][2],
               max(x[2] for x in pts), grew))
        if grew > 0:
            failures.append("%s: open fds grew by %d (%d -> %d)" % (name, grew, pts[0][2], pts[-1][2]))
        # A leak keeps growing, so it lifts the second half's slope as well; a one-time step
        # inside the window (a model loaded and calibrated on its first request, a heap that
        # grows once to its working size and is kept) lifts only the whole window's.
        if not a.sanitized and sl > a.max_slope_kb and late > a.max_slope_kb:
            failures.append("%s: RSS slope %.0f KB/min, second half %.0f KB/min > %.0f" %
                            (name, sl, late, a.max_slope_kb))
    # Where the memory goes (the processes' own accounts): glibc malloc's bytes in use and
    # held, SQLite's bytes (page caches), first and last sample after the warm-up.
    pts = [x for x in inner if x[0] >= a.warmup and x[1]]
    if len(pts) >= 2:
        print("%-34s %12s %12s %12s" % ("inner account (KB)", "first", "last", "slope KB/min"))
        for key in sorted(pts[-1][1]):
            xs = [(t / 60.0, m[key]) for t, m in pts if key in m]
            if len(xs) < 2:
                continue
            print("%-34s %12d %12d %12.0f" % (key, xs[0][1] // 1024, xs[-1][1] // 1024,
                                              slope([x[0] for x in xs], [x[1] / 1024 for x in xs])))
    c = load.counts if load else {}
    log("load: %s; queue at the end: %s" % (json.dumps(c, sort_keys=True), json.dumps(stats, sort_keys=True)))
    if load and load.errors:
        failures.append("%d load errors, first: %s" % (len(load.errors), load.errors[0]))
    if stats.get("failed", 0) or stats.get("finished", 0) != c.get("jobs", -1):
        failures.append("jobs: %d posted, queue counts %s" % (c.get("jobs", 0), stats))
    with open(up.logpath, errors="replace") as f:
        text = f.read()
    for pat in ("LeakSanitizer", "AddressSanitizer", "runtime error:"):
        if pat in text:
            i = text.index(pat)
            failures.append("sanitizer report in %s: %s" % (up.logpath, text[max(0, i - 200):i + 800]))
    m = re.search(r".*(restarting in|exited with status [1-9]|did not stop in).*", text)
    if m:
        failures.append("a child of up died or hung: %s" % m.group(0))
    for f in failures:
        log("FAIL: " + f)
    return 1 if (failures and a.check) else 0


if __name__ == "__main__":
    sys.exit(main())
