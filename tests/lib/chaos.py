#!/usr/bin/env python3
"""chaos.py: the chaos drill behind tests/fault/chaos*.sh and bench/chaos/run.sh.

Runs `visiond up` (3 worker supervisors) on a fresh data directory with a mix of
`count` jobs (exactly-once bookkeeping in a side table), `embed` jobs on real
images (Fashion-MNIST PNGs and the face-api sample photos) and one training
session, while SIGKILLing, at seeded random moments, work-horses, worker
supervisors, the model server and (--backend redis) redis-server. Before that it
runs the same training session undisturbed and keeps its metrics.

At the end it checks, and exits 1 when one fails:
  - every job is finished or failed, and every failed job has a recorded reason
    (lost = jobs in any other state, or missing);
  - no job finished twice: per job at most one "finished" line in the logs, and
    for count jobs exactly one side-table row for the finishing attempt and none
    for a later attempt, never two rows for one (job, attempt);
  - the training session succeeded with the same cv_accuracy and labels as the
    undisturbed run (every other metric is compared and printed too);
  - PRAGMA integrity_check is ok on every SQLite file;
  - once `up` has been stopped with SIGTERM, no process is left that names the
    work directory.
It prints the counts (jobs, kills of each kind, lost, finished twice).
"""
import argparse
import glob
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

TRAIN_LABELS = ["trouser", "bag", "sneaker", "dress"]


def log(msg):
    name = os.path.basename(sys.argv[0]).split(".")[0] or "chaos"  # chaos or soak
    print("%s %s: %s" % (name, time.strftime("%H:%M:%S"), msg), flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def http(method, url, body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            if not r.headers.get("Content-Type", "").startswith("application/json"):
                return r.status, raw.decode(errors="replace")
            return r.status, json.loads(raw or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError, ValueError) as e:
        return 0, str(e)


class Redis:
    """A redis-server on a loopback port, appendonly + appendfsync always."""

    def __init__(self, work):
        self.dir = os.path.join(work, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.proc = None
        self.url = "redis://127.0.0.1:%d/0" % self.port

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.dir,
             "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             "--daemonize", "no", "--logfile", os.path.join(self.dir, "redis.log")],
            stdin=subprocess.DEVNULL)
        for _ in range(300):
            r = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True)
            if r.stdout.strip() == b"PONG":
                return
            time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()


class Up:
    """`visiond up` on a data directory; its log collects every child's stderr."""

    def __init__(self, a, data, queue, name):
        self.a, self.data, self.queue = a, data, queue
        self.port = free_port()
        self.api = "http://127.0.0.1:%d" % self.port
        self.logpath = os.path.join(a.work, name + ".log")
        self.proc = None

    def start(self):
        os.makedirs(self.data, exist_ok=True)
        args = [self.a.visiond, "up", "--data", self.data, "--listen", "127.0.0.1:%d" % self.port,
                "--workers", "3", "--concurrency", str(self.a.concurrency), "--models", self.a.models,
                "--media-root", self.a.images, "--model-threads", str(self.a.model_threads),
                "--preload", "mobilenet_v2"]
        if self.queue:
            args += ["--queue", self.queue]
        self.logf = open(self.logpath, "ab")
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        end = time.time() + 300
        while time.time() < end:
            st, _ = http("GET", self.api + "/healthz", timeout=5)
            if st == 200 and self.model_server_ready():
                return
            if self.proc.poll() is not None:
                raise RuntimeError("visiond up exited: see " + self.logpath)
            time.sleep(0.2)
        raise RuntimeError("visiond up did not come up: see " + self.logpath)

    def model_server_ready(self):
        st, body = http("GET", self.api + "/models", timeout=10)
        if st != 200:
            return False
        return any(m.get("name") == "mobilenet_v2" and m.get("state") == "ready"
                   for m in body.get("models", []))

    def kids(self):
        """{'workers': [pids], 'model-server': [pids], 'serve': [pids]}"""
        out = {"worker": [], "model-server": [], "serve": []}
        for c in children(self.proc.pid):
            argv = cmdline(c)
            if len(argv) > 1:
                k = argv[1].decode(errors="replace")
                if k in out and alive(c):
                    out[k].append(c)
        return out

    def stop(self, hard=False):
        if hard:  # SIGKILL: the children must stop by themselves (PR_SET_PDEATHSIG)
            self.proc.kill()
            self.proc.wait()
            self.logf.close()
            return 0
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=120)
        self.logf.close()
        return rc


def vd(a, *args, queue=None):
    cmd = [a.visiond] + list(args)
    if queue:
        cmd += ["--queue", queue]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), r.returncode, r.stderr.strip()))
    return r.stdout


def stats(a, queue):
    try:
        return json.loads(vd(a, "queue", "stats", queue=queue))["counts"]
    except (RuntimeError, ValueError):
        return None  # the queue is down (redis killed): ask again later


def session(up, sid):
    st, body = http("GET", up.api + "/training/sessions/" + sid)
    return body if st == 200 else None


def create_session(up, folder):
    st, body = http("POST", up.api + "/training/sessions",
                    {"name": "chaos", "kind": "image", "model": "mobilenet_v2", "folder": folder})
    if st != 202:
        raise RuntimeError("POST /training/sessions: %s %s" % (st, body))
    return body["id"], body["job_id"]


def wait_session(up, sid, limit_s):
    end = time.time() + limit_s
    while time.time() < end:
        s = session(up, sid)
        if s and s["state"] in ("succeeded", "failed", "canceled"):
            return s
        time.sleep(0.5)
    raise RuntimeError("session %s did not end" % sid)


def prepare_images(a):
    """Fashion-MNIST PNGs: TRAIN_LABELS under images/train (the session), the
    other labels and the face-api sample photos under images/embed (embed jobs)."""
    all_dir = os.path.join(a.work, "fm")
    vd(a, "dataset", "fashion-mnist", "--out", all_dir, "--per-label", str(a.per_label))
    train = os.path.join(a.images, "train")
    emb = os.path.join(a.images, "embed")
    os.makedirs(train)
    os.makedirs(emb)
    for label in sorted(os.listdir(all_dir)):
        src = os.path.join(all_dir, label)
        if label in TRAIN_LABELS:
            shutil.move(src, os.path.join(train, label))
        else:
            for f in sorted(os.listdir(src)):
                shutil.copy(os.path.join(src, f), os.path.join(emb, label + "-" + f))
    for f in sorted(glob.glob(os.path.join(a.faces_demo, "sample*.jpg"))):
        shutil.copy(f, emb)
    return train, sorted(os.path.join(emb, f) for f in os.listdir(emb))


def undisturbed(a, train):
    up = Up(a, os.path.join(a.work, "data-calm"), None, "up-calm")
    up.start()
    try:
        sid, _ = create_session(up, train)
        s = wait_session(up, sid, 900)
    finally:
        up.stop()
    if s["state"] != "succeeded":
        raise RuntimeError("undisturbed session %s: %s" % (s["state"], s.get("message")))
    return s


class Chaos:
    def __init__(self, a, up, redis, rng, train_job):
        self.a, self.up, self.redis, self.rng, self.train_job = a, up, redis, rng, train_job
        self.kills = {"horse": 0, "supervisor": 0, "model-server": 0, "redis": 0}
        self.spared = 0
        self.train_hit = False

    def train_holder(self):
        """pid of the supervisor running the training job in its last attempt, or
        None. Its last attempt is spared so that the session can succeed: the API
        enqueues it with 3 retries and every kill that hits it uses one."""
        try:
            j = json.loads(vd(self.a, "jobs", "show", self.train_job, queue=self.up.queue))
        except (RuntimeError, ValueError):
            return None
        if j.get("state") != "started" or j.get("attempts", 0) < 1 + j.get("max_retries", 3) - 1:
            return None
        w = j.get("worker") or ""
        try:
            return int(w.rsplit(":", 1)[1])
        except (IndexError, ValueError):
            return None

    def hit_train(self, sess):
        """Once: SIGKILLs the training job's work-horse after it stored some
        embeddings, so that the session always resumes in a new attempt."""
        if self.train_hit or not sess or sess["state"] != "running":
            return
        if (sess.get("progress") or {}).get("done", 0) < 1:
            return
        pid = attempt = None
        pat = re.compile(r"job %s \(train_session\) started, attempt (\d+)/\d+, work-horse (\d+)" %
                         re.escape(self.train_job))
        with open(self.up.logpath, errors="replace") as f:
            for line in f:
                m = pat.search(line)
                if m:
                    attempt, pid = int(m.group(1)), int(m.group(2))
        if attempt is not None and attempt > 1:
            self.train_hit = True  # other kills already made it resume: never spend its last try
            return
        if pid is None or not alive(pid):
            return
        os.kill(pid, signal.SIGKILL)
        self.train_hit = True
        self.kills["horse"] += 1
        log("kill -9 horse %d (the training job's, at %s of %s examples)" %
            (pid, sess["progress"].get("done"), sess["progress"].get("total")))

    def kill_one(self):
        kinds = [("horse", 5), ("supervisor", 2), ("model-server", 1)]
        if self.redis:
            kinds.append(("redis", 1))
        kind = self.rng.choices([k for k, _ in kinds], [w for _, w in kinds])[0]
        spare = self.train_holder()
        kids = self.up.kids()
        victims = []
        if kind == "horse":
            victims = [h for w in kids["worker"] if w != spare for h in children(w) if alive(h)]
        elif kind == "supervisor":
            victims = [w for w in kids["worker"] if w != spare]
        elif kind == "model-server":
            victims = kids["model-server"] if spare is None else []
        if kind == "redis":
            if spare is not None:
                self.spared += 1
                return
            self.redis.kill()
            self.kills["redis"] += 1
            log("kill -9 redis-server (pid %d); restarting it" % self.redis.proc.pid)
            self.redis.start()
            return
        if not victims:
            if spare is not None:
                self.spared += 1
            return
        v = self.rng.choice(sorted(victims))
        try:
            os.kill(v, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.kills[kind] += 1
        log("kill -9 %s %d" % (kind, v))


def check_count_table(side, jobs):
    db = sqlite3.connect(side)
    rows = db.execute("SELECT job_id, attempt, count(*) FROM runs GROUP BY job_id, attempt").fetchall()
    db.close()
    per = {}
    dup_attempt = 0
    for jid, att, n in rows:
        per.setdefault(jid, {})[att] = n
        if n > 1:
            dup_attempt += 1
    bad = 0
    runs = sum(n for _, _, n in rows)
    for j in jobs:
        if j["type"] != "count":
            continue
        seen = per.get(j["id"], {})
        later = [x for x in seen if x > j["attempts"]]
        if later or (j["state"] == "finished" and seen.get(j["attempts"]) != 1):
            bad += 1
            if bad <= 5:
                log("count job %s (%s, attempts %d): side-table attempts %s" %
                    (j["id"], j["state"], j["attempts"], sorted(seen.items())))
    return bad + dup_attempt, runs


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--visiond", required=True)
    p.add_argument("--models", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--backend", choices=["sqlite", "redis"], default="sqlite")
    p.add_argument("--jobs", type=int, default=300, help="jobs in all (count + embed + 1 train)")
    p.add_argument("--embed-jobs", type=int, default=12)
    p.add_argument("--embed-paths", type=int, default=4, help="images per embed job")
    p.add_argument("--per-label", type=int, default=8, help="Fashion-MNIST images per label")
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--model-threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--max-kills", type=int, default=20)
    p.add_argument("--kill-min", type=float, default=0.3, help="seconds between kills, least")
    p.add_argument("--kill-max", type=float, default=1.5, help="seconds between kills, most")
    p.add_argument("--retries", type=int, default=8, help="retries of the count and embed jobs")
    p.add_argument("--stop", choices=["term", "kill"], default="term",
                   help="how `up` is stopped at the end: SIGTERM, or SIGKILL (its children "
                   "must then stop by themselves)")
    p.add_argument("--timeout", type=float, default=1200, help="seconds to wait for the end")
    p.add_argument("--faces-demo", default="/opt/visiond/deps/npm/@vladmandic+face-api@1.7.15/demo")
    a = p.parse_args()
    a.work = os.path.abspath(a.work)
    a.images = os.path.join(a.work, "media")
    os.makedirs(a.images, exist_ok=True)
    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(4), "little")
    log("seed %d (rerun with --seed %d); backend %s; %d jobs" % (seed, seed, a.backend, a.jobs))
    rng = random.Random(seed)

    train, embed_files = prepare_images(a)
    t0 = time.time()
    calm = undisturbed(a, train)
    cm = calm["metrics"]
    log("undisturbed session: cv_accuracy %s, labels %s (%.1f s)" %
        (cm["cv_accuracy"], cm["labels"], time.time() - t0))

    redis = None
    if a.backend == "redis":
        redis = Redis(a.work)
        redis.start()
        queue = redis.url
    else:
        queue = "sqlite:" + os.path.join(a.work, "data", "visiond.db")
    up = Up(a, os.path.join(a.work, "data"), queue, "up")
    failures = []
    try:
        up.start()
        side = os.path.join(a.work, "side.db")
        db = sqlite3.connect(side)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE runs(job_id TEXT, attempt INT, pid INT)")
        db.commit()
        db.close()

        sid, train_job = create_session(up, train)
        n_embed = min(a.embed_jobs, max(a.jobs - 1, 0))
        n_count = a.jobs - 1 - n_embed
        ids = set([train_job])
        enq_err = []

        def enqueue_all():  # in a thread: the chaos starts while jobs are still coming in
            try:
                def enqueue(typ, payload, n):  # retried while redis-server is down
                    got = []
                    while len(got) < n:
                        cmd = [a.visiond, "jobs", "enqueue", typ, "--payload", payload,
                               "--count", str(n - len(got)), "--retries", str(a.retries),
                               "--queue", queue]
                        r = subprocess.run(cmd, capture_output=True, text=True)
                        got += r.stdout.split()
                        if r.returncode != 0:
                            if a.backend != "redis":
                                raise RuntimeError(r.stderr.strip())
                            log("enqueue: %s; again in 1 s" % r.stderr.strip()[:120])
                            time.sleep(1)
                    ids.update(got)

                for i in range(n_embed):
                    paths = [embed_files[(i * a.embed_paths + k) % len(embed_files)]
                             for k in range(a.embed_paths)]
                    enqueue("embed", json.dumps({"model": "mobilenet_v2", "paths": paths,
                                                 "mode": "image"}), 1)
                if n_count:
                    enqueue("count", json.dumps({"db": side}), n_count)
                log("enqueued %d count, %d embed, 1 train_session (session %s, job %s)" %
                    (n_count, n_embed, sid, train_job))
            except RuntimeError as e:
                enq_err.append(str(e))

        enq = threading.Thread(target=enqueue_all)
        enq.start()

        ch = Chaos(a, up, redis, rng, train_job)
        t1 = time.time()
        end = t1 + a.timeout
        next_kill = t1 + rng.uniform(a.kill_min, a.kill_max)
        nkills = 0
        while time.time() < end:
            c = stats(a, queue)
            pending = None if c is None else sum(c.get(k, 0) for k in ("queued", "scheduled", "started"))
            s = session(up, sid) if c is not None else None
            sdone = s is not None and s["state"] in ("succeeded", "failed", "canceled")
            if pending == 0 and not enq.is_alive():
                break  # every job ended (a session still running is a failure, below)
            ch.hit_train(s)
            if nkills < a.max_kills and time.time() >= next_kill:
                before = sum(ch.kills.values())
                ch.kill_one()
                nkills += sum(ch.kills.values()) - before
                next_kill = time.time() + rng.uniform(a.kill_min, a.kill_max)
            time.sleep(0.1)
        else:
            failures.append("jobs did not end within %d s" % a.timeout)
        elapsed = time.time() - t1
        enq.join()
        failures += ["enqueue: " + e for e in enq_err]
        s = session(up, sid) or {}
        jobs = json.loads(vd(a, "jobs", "list", "--json", "--limit", "100000", queue=queue))
    finally:
        rc = up.stop(hard=a.stop == "kill") if up.proc else None
        if redis and sys.exc_info()[0] is not None:
            redis.stop()
    if rc != 0:
        failures.append("visiond up exited %s on SIGTERM" % rc)

    # -- checks --
    byid = {j["id"]: j for j in jobs}
    states = {}
    for j in jobs:
        states[j["state"]] = states.get(j["state"], 0) + 1
    missing = [i for i in ids if i not in byid]
    lost = len(missing) + sum(1 for j in jobs if j["id"] in ids and j["state"] not in ("finished", "failed"))
    noreason = [j["id"] for j in jobs if j["state"] == "failed" and not (j.get("error") or "").strip()]
    fin_lines = {}
    with open(up.logpath, errors="replace") as f:
        for line in f:
            m = re.search(r"job (\S+) \((\w+)\) finished in", line)
            if m:
                fin_lines[m.group(1)] = fin_lines.get(m.group(1), 0) + 1
    twice_log = sum(1 for n in fin_lines.values() if n > 1)
    twice_side, runs = check_count_table(side, jobs)
    finished_twice = twice_log + twice_side
    if lost:
        failures.append("%d jobs lost (missing %d)" % (lost, len(missing)))
    if noreason:
        failures.append("%d failed jobs without a reason, e.g. %s" % (len(noreason), noreason[0]))
    if finished_twice:
        failures.append("%d jobs finished twice (log %d, side table %d)" %
                        (finished_twice, twice_log, twice_side))

    # the training session against the undisturbed run
    tj = byid.get(train_job, {})
    if s.get("state") != "succeeded":
        failures.append("session %s: %s" % (s.get("state"), s.get("message")))
    else:
        m = s["metrics"]
        for k in ("cv_accuracy", "labels"):
            if m.get(k) != cm.get(k):
                failures.append("session %s differs: %s (chaos) vs %s (undisturbed)" % (k, m.get(k), cm.get(k)))
        other = sorted(k for k in set(m) | set(cm) if m.get(k) != cm.get(k))
        log("session: cv_accuracy %s (undisturbed %s), labels equal %s, job attempts %s; "
            "other metrics that differ: %s" % (m.get("cv_accuracy"), cm.get("cv_accuracy"),
                                               m.get("labels") == cm.get("labels"),
                                               tj.get("attempts"), other or "none"))

    # why the metrics match (or not): the session's vectors and classifier, bit for bit
    try:
        db = sqlite3.connect(os.path.join(up.data, "store.db"))
        db.execute("ATTACH ? AS calm", (os.path.join(a.work, "data-calm", "store.db"),))
        n, same = db.execute(
            "SELECT count(*), coalesce(sum(e.vector = c.vector), 0) FROM examples x "
            "JOIN embeddings e ON e.sha256 = x.sha256 AND e.model = 'mobilenet_v2' "
            "JOIN calm.embeddings c ON c.sha256 = e.sha256 AND c.model = e.model "
            "WHERE x.session_id = ?", (sid,)).fetchone()
        cls = db.execute("SELECT count(*) FROM classifiers a JOIN calm.classifiers b "
                         "WHERE a.session_id = ? AND a.blob = b.blob", (sid,)).fetchone()[0]
        db.close()
        log("session vectors bit-identical to the undisturbed run: %d of %d; classifier identical: %s"
            % (same, n, "yes" if cls else "no"))
    except sqlite3.Error as e:
        log("could not compare the stores: %s" % e)

    # SQLite files
    dbs = sorted(set(glob.glob(os.path.join(a.work, "**", "*.db"), recursive=True)))
    for d in dbs:
        r = sqlite3.connect(d).execute("PRAGMA integrity_check").fetchone()[0]
        if r != "ok":
            failures.append("integrity_check %s: %s" % (d, r))
    # orphans: anything still running that names the work directory
    if redis:
        redis.stop()

    def leftovers():
        out = []
        for pid in os.listdir("/proc"):
            if pid.isdigit() and int(pid) != os.getpid() and alive(int(pid)):
                if any(a.work.encode() in x for x in cmdline(int(pid))):
                    out.append(int(pid))
        return out

    orphans = leftovers()
    end = time.time() + 60  # after a SIGKILL of up, its children stop gracefully
    while orphans and time.time() < end:
        time.sleep(0.5)
        orphans = leftovers()
    if orphans:
        failures.append("orphan processes: %s" % orphans)

    failed_reasons = {}
    for j in jobs:
        if j["state"] == "failed":
            r = re.sub(r"[0-9a-f]{16,}|\d+", "N", (j.get("error") or ""))[:60]
            failed_reasons[r] = failed_reasons.get(r, 0) + 1
    k = ch.kills
    log("RESULT backend=%s seed=%d jobs=%d (count %d, embed %d, train 1) states=%s "
        "kills: horse=%d supervisor=%d model-server=%d redis=%d (spared %d) "
        "up stopped by %s; lost=%d finished_twice=%d count_runs=%d attempts=%d sqlite_files=%d orphans=%d "
        "chaos_seconds=%.0f" %
        (a.backend, seed, len(ids), n_count, n_embed, json.dumps(states, sort_keys=True),
         k["horse"], k["supervisor"], k["model-server"], k["redis"], ch.spared,
         "SIGKILL" if a.stop == "kill" else "SIGTERM", lost,
         finished_twice, runs, sum(j.get("attempts", 0) for j in jobs), len(dbs), len(orphans),
         elapsed))
    if failed_reasons:
        log("failed jobs by reason: %s" % json.dumps(failed_reasons, sort_keys=True))
    for f in failures:
        log("FAIL: " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
