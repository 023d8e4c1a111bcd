#!/usr/bin/python3
"""The end-to-end race: one training session through visiond and through the
original Python stack (FastAPI + uvicorn, RQ with its forking `rq worker` on a
throwaway redis-server, OpenCV DNN on the same mobilenet_v2, scikit-learn),
in the same run, with 1 and 4 workers.

For each stack and worker count: start the stack from nothing (fresh data
directory, fresh redis), wait until it answers, POST /training/sessions with
the image folder, poll GET /training/sessions/{id} until it ends, stop the
stack. Measured: wall time from the POST to `succeeded`, images/s, the peak
over time of the summed VmRSS (and PSS) of every process of the stack
(sampled from /proc every 100 ms over the process tree), and the session's
cv_accuracy. Prints a table and the ratios; --json writes the numbers.

Run with Debian's python (/usr/bin/python3): it needs python3-opencv,
python3-sklearn, python3-onnx, python3-fastapi, python3-uvicorn, python3-rq,
python3-redis and redis-server (scripts/setup.sh installs them).

    /usr/bin/python3 bench/e2e/race.py [--quick] [--visiond build/visiond]
        [--per-label 30] [--workers 1,4] [--json OUT] [--keep]

Exit status: 0 when every session succeeded (the targets are printed, not
asserted: timings on a shared machine are not test outcomes), 1 otherwise,
77 when a needed package is missing.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PYSTACK = os.path.join(HERE, "pystack")
PY = "/usr/bin/python3"


def say(*a):
    print("race:", *a, flush=True)


def need_packages():
    missing = []
    for mod in ("cv2", "sklearn", "onnx", "fastapi", "uvicorn", "rq", "redis"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if not shutil.which("redis-server"):
        missing.append("redis-server")
    return missing


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


# ---- process-tree memory sampling -------------------------------------------

def _children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def _tree(roots):
    kids = _children_map()
    out, todo = [], list(roots)
    while todo:
        p = todo.pop()
        if p in out:
            continue
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _mem(pid):
    """(name, rss_kb, pss_kb) of a process, None when it is gone."""
    try:
        rss, name = 0, "?"
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Name:"):
                    name = line.split()[1]
                elif line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        pss = 0
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                    break
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        return classify(name, cmd), rss, pss
    except (OSError, ValueError):
        return None


def classify(name, cmd):
    """The part of a stack a process is, for the breakdown."""
    if "redis-server" in name or "redis-server" in cmd:
        return "redis"
    if "uvicorn" in cmd:
        return "api"
    if cmd.startswith("rq:") or ("rq" in cmd and "worker" in cmd):
        return "worker"  # RQ retitles its processes ("rq: Listening on ...", "rq: Processing ...")
    if "model-server" in cmd:
        return "model-server"
    if " serve " in cmd + " ":
        return "api"
    if " worker " in cmd + " ":
        return "worker"
    if " up " in cmd + " ":
        return "supervisor"
    return name


class Sampler(threading.Thread):
    """Samples the summed RSS/PSS of the trees under `roots` every `period` s."""

    def __init__(self, roots, period=0.1):
        super().__init__(daemon=True)
        self.roots, self.period = roots, period
        self.stop_ev = threading.Event()
        self.peak_rss = self.peak_pss = 0
        self.peak_parts = {}
        self.max_procs = 0
        self.samples = 0

    def sample(self):
        parts, tot_rss, tot_pss, n = {}, 0, 0, 0
        for pid in _tree(self.roots):
            m = _mem(pid)
            if m is None:
                continue
            part, rss, pss = m
            n += 1
            tot_rss += rss
            tot_pss += pss
            p = parts.setdefault(part, [0, 0, 0])
            p[0] += 1
            p[1] += rss
            p[2] += pss
        self.samples += 1
        self.max_procs = max(self.max_procs, n)
        if tot_rss > self.peak_rss:
            self.peak_rss, self.peak_parts = tot_rss, parts
        self.peak_pss = max(self.peak_pss, tot_pss)

    def run(self):
        while not self.stop_ev.is_set():
            self.sample()
            self.stop_ev.wait(self.period)

    def stop(self):
        self.stop_ev.set()
        self.join()
        self.sample()


# ---- the two stacks ------------------------------------------------------------

def stop_procs(procs, grace=20):
    for p in procs:
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + grace
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)  # each was started in its own session
            except ProcessLookupError:
                pass
            p.wait()


def wait_for(what, fn, timeout=60):
    t = time.time() + timeout
    while time.time() < t:
        try:
            if fn():
                return
        except (OSError, ValueError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    raise RuntimeError("%s did not come up in %d s" % (what, timeout))


class PyStack:
    name = "python"

    def __init__(self, work, models, workers, batch, solver):
        self.work, self.models, self.workers, self.batch = work, models, workers, batch
        self.solver = solver

    def start(self):
        d = tempfile.mkdtemp(prefix="py-", dir=self.work)
        self.log = open(os.path.join(d, "stack.log"), "w")
        rport, self.port = free_port(), free_port()
        env = dict(os.environ, PYSTACK_REDIS="redis://127.0.0.1:%d/0" % rport,
                   PYSTACK_ONNX=self.models["opencv_onnx"], PYSTACK_META=self.models["meta"],
                   PYSTACK_BATCH=str(self.batch), PYSTACK_SOLVER=self.solver, PYTHONPATH=PYSTACK, PYTHONDONTWRITEBYTECODE="1")
        kw = dict(cwd=PYSTACK, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                  start_new_session=True)
        self.procs = [subprocess.Popen(
            ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", d], **kw)]
        wait_for("redis", lambda: socket.create_connection(("127.0.0.1", rport), 1).close() or True)
        for i in range(self.workers):
            self.procs.append(subprocess.Popen(
                [PY, "-m", "rq.cli", "worker", "-c", "worker_settings", "--url", env["PYSTACK_REDIS"],
                 "--name", "w%d-%d" % (i, rport), "--logging_level", "WARNING"], **kw))
        self.procs.append(subprocess.Popen(
            [PY, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "warning"], **kw))
        import redis
        from rq import Worker
        conn = redis.Redis.from_url(env["PYSTACK_REDIS"])
        wait_for("rq workers", lambda: len(Worker.all(connection=conn)) == self.workers)
        wait_for("uvicorn", lambda: http("GET", self.url("/healthz"), timeout=2)[0] == 200)
        return [p.pid for p in self.procs]

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stop(self):
        stop_procs(self.procs)
        self.log.close()


class VisiondStack:
    name = "visiond"

    def __init__(self, work, models, workers, visiond, concurrency, media):
        self.work, self.models, self.workers = work, models, workers
        self.visiond, self.concurrency, self.media = visiond, concurrency, media

    def start(self):
        d = tempfile.mkdtemp(prefix="vd-", dir=self.work)
        self.log = open(os.path.join(d, "stack.log"), "w")
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("VISIOND_")}
        self.procs = [subprocess.Popen(
            [self.visiond, "up", "--data", os.path.join(d, "data"), "--models", self.models["dir"],
             "--listen", "127.0.0.1:%d" % self.port, "--media-root", self.media,
             "--workers", str(self.workers), "--concurrency", str(self.concurrency),
             "--preload", "mobilenet_v2", "--log-level", "warn"],
            cwd=d, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)]

        def ready():
            st, h = http("GET", self.url("/healthz"), timeout=2)
            ms = (h or {}).get("model_server", {}).get("health", {})
            return st == 200 and ms.get("loaded", 0) >= 1

        wait_for("visiond up", ready)
        # the workers: one supervisor process each under `up`
        wait_for("visiond workers", lambda: sum(
            1 for p in _tree([self.procs[0].pid]) if (_mem(p) or ("",))[0] == "worker") >= self.workers)
        return [self.procs[0].pid]

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stop(self):
        stop_procs(self.procs, grace=40)
        self.log.close()


def run_session(stack, folder, n_images):
    roots = stack.start()
    time.sleep(1.0)  # let start-up settle before the clock starts
    sampler = Sampler(roots)
    sampler.start()
    try:
        t0 = time.time()
        st, r = http("POST", stack.url("/training/sessions"), {"name": "race", "folder": folder})
        if st != 202:
            raise RuntimeError("%s: POST /training/sessions answered %d %s" % (stack.name, st, r))
        sid, last = r["id"], None
        while True:
            st, s = http("GET", stack.url("/training/sessions/" + sid))
            if st == 200 and s["state"] in ("succeeded", "failed", "canceled"):
                break
            if st == 200 and s.get("progress") != last:
                last = s.get("progress")
            time.sleep(0.1)
        wall = time.time() - t0
    finally:
        sampler.stop()
    m = s.get("metrics") or {}
    res = {"stack": stack.name, "workers": stack.workers, "state": s["state"],
           "message": s.get("message"), "wall_s": wall, "images": n_images,
           "images_per_s": n_images / wall, "peak_rss_mb": sampler.peak_rss / 1024,
           "peak_pss_mb": sampler.peak_pss / 1024, "max_procs": sampler.max_procs,
           "samples": sampler.samples,
           "peak_parts": {k: {"procs": v[0], "rss_mb": v[1] / 1024, "pss_mb": v[2] / 1024}
                          for k, v in sampler.peak_parts.items()},
           "cv_accuracy": m.get("cv_accuracy"), "C": m.get("C"), "macro_f1": m.get("macro_f1"),
           "errors": len(s.get("errors") or []), "runtime": s.get("runtime"), "session_id": sid}
    return res


def check_embeddings(stack, models, paths):
    """Cosine similarity between visiond's vectors (POST /embeddings, ONNX Runtime on
    mobilenet_v2.onnx) and the peer's (OpenCV DNN on its rewritten copy)."""
    sys.path.insert(0, PYSTACK)
    import numpy as np
    import embedder
    e = embedder.Embedder(models["opencv_onnx"], models["meta"])
    st, r = http("POST", stack.url("/embeddings"), {"model": "mobilenet_v2", "paths": paths}, 120)
    if st != 200:
        raise RuntimeError("POST /embeddings answered %d %s" % (st, r))
    ours = e.embed([e.preprocess(p) for p in paths])
    cos = []
    for i, item in enumerate(r["embeddings"]):
        v = np.array(item["vector"], np.float32)
        v /= np.linalg.norm(v) or 1
        cos.append(float(np.dot(v, ours[i])))
    return cos


def prepare(args, work):
    images = os.path.join(work, "images")
    out = subprocess.run([args.visiond, "dataset", "fashion-mnist", "--out", images,
                          "--per-label", str(args.per_label)], check=True, capture_output=True,
                         text=True).stdout
    n = json.loads(out.strip().splitlines()[-1])["files"]
    mdir = args.models or os.path.join(work, "models")
    if not args.models:
        subprocess.run([os.path.join(ROOT, "scripts", "models.sh"), "--visiond", args.visiond,
                        "--out", mdir], check=True, capture_output=True)
    if args.max_batch:
        if args.models:
            raise SystemExit("--max-batch rewrites the models it makes: not with --models")
        meta = os.path.join(mdir, "mobilenet_v2.json")
        with open(meta) as f:
            m = json.load(f)
        m["max_batch"] = args.max_batch
        with open(meta, "w") as f:
            json.dump(m, f, indent=2)
    cvdir = os.path.join(work, "opencv-model")
    os.makedirs(cvdir, exist_ok=True)
    cv = os.path.join(cvdir, "mobilenet_v2_opencv.onnx")
    subprocess.run([PY, os.path.join(PYSTACK, "opencv_onnx.py"),
                    os.path.join(mdir, "mobilenet_v2.onnx"), cv], check=True, capture_output=True)
    return images, n, {"dir": mdir, "meta": os.path.join(mdir, "mobilenet_v2.json"),
                       "opencv_onnx": cv}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--visiond", default=os.environ.get("VISIOND", os.path.join(ROOT, "build", "visiond")))
    ap.add_argument("--models", help="models dir from scripts/models.sh (default: made in the temp dir)")
    ap.add_argument("--per-label", type=int, default=30, help="Fashion-MNIST images per label (10 labels)")
    ap.add_argument("--workers", default="1,4", help="worker counts to run, comma-separated")
    ap.add_argument("--concurrency", type=int, default=2, help="visiond work-horses per worker")
    ap.add_argument("--max-batch", type=int, help="visiond: the model server's max_batch for mobilenet_v2 (default: the shipped metadata's)")
    ap.add_argument("--py-solver", default="lbfgs", choices=("lbfgs", "liblinear"),
                    help="the peer's LogisticRegression solver (default: scikit-learn's default)")
    ap.add_argument("--py-batch", type=int, default=1, help="images per OpenCV forward() in the peer")
    ap.add_argument("--stacks", default="python,visiond", help="which stacks to run")
    ap.add_argument("--quick", action="store_true", help="smoke run: 5 per label, 1 worker")
    ap.add_argument("--no-check", action="store_true", help="skip the embedding agreement check")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = ap.parse_args()
    if args.quick:
        args.per_label, args.workers = 5, "1"
    missing = need_packages()
    if missing:
        say("skipped: missing", " ".join(missing), "(scripts/setup.sh installs them)")
        return 77
    if not os.access(args.visiond, os.X_OK):
        say("no visiond binary at", args.visiond)
        return 1
    work = tempfile.mkdtemp(prefix="vdrace.")
    results, checks = [], None
    try:
        t0 = time.time()
        images, n, models = prepare(args, work)
        say("%d images (Fashion-MNIST, %d per label), models in %s" % (n, args.per_label, models["dir"]))
        rounds = [int(w) for w in args.workers.split(",")]
        for i, w in enumerate(rounds):
            order = ["python", "visiond"] if i % 2 == 0 else ["visiond", "python"]
            for name in order:
                if name not in args.stacks.split(","):
                    continue
                if name == "python":
                    stack = PyStack(work, models, w, args.py_batch, args.py_solver)
                else:
                    stack = VisiondStack(work, models, w, args.visiond, args.concurrency, images)
                try:
                    r = run_session(stack, images, n)
                    if name == "visiond" and checks is None and not args.no_check:
                        paths = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(images) for f in fs)[::max(1, n // 8)]
                        checks = check_embeddings(stack, models, paths)
                finally:
                    stack.stop()
                results.append(r)
                say("%-7s workers=%d %s in %.1f s, %.2f images/s, peak RSS %.0f MB (PSS %.0f), cv_accuracy %s" % (
                    name, w, r["state"], r["wall_s"], r["images_per_s"], r["peak_rss_mb"],
                    r["peak_pss_mb"], r["cv_accuracy"]))
                if r.get("runtime"):
                    say("        runtime:", json.dumps(r["runtime"]))
        report(results, checks, n, time.time() - t0)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"images": n, "per_label": args.per_label, "py_batch": args.py_batch, "py_solver": args.py_solver,
                           "max_batch": args.max_batch,
                           "concurrency": args.concurrency, "embedding_cosine": checks,
                           "results": results}, f, indent=2)
        return 0 if all(r["state"] == "succeeded" for r in results) else 1
    finally:
        if args.keep:
            say("kept", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


def report(results, checks, n, total_s):
    print()
    print("| stack | workers | wall s | images/s | peak RSS MB (sum) | peak PSS MB | cv_accuracy | C |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        acc = "%.3f" % r["cv_accuracy"] if r["cv_accuracy"] is not None else "-"
        print("| %s | %d | %.1f | %.2f | %.0f | %.0f | %s | %s |" % (
            r["stack"], r["workers"], r["wall_s"], r["images_per_s"], r["peak_rss_mb"],
            r["peak_pss_mb"], acc, r["C"]))
    print()
    for r in results:
        parts = ", ".join("%s %d×%.0f" % (k, v["procs"], v["rss_mb"] / max(1, v["procs"]))
                          for k, v in sorted(r["peak_parts"].items()))
        print("%s workers=%d at its RSS peak: %s MB each" % (r["stack"], r["workers"], parts))
    print()
    by = {(r["stack"], r["workers"]): r for r in results}
    for w in sorted({r["workers"] for r in results}):
        py, vd = by.get(("python", w)), by.get(("visiond", w))
        if not py or not vd:
            continue
        speed = py["wall_s"] / vd["wall_s"]
        mem = vd["peak_rss_mb"] / py["peak_rss_mb"]
        pss = vd["peak_pss_mb"] / py["peak_pss_mb"]
        print("workers=%d: visiond is %.2fx faster end to end (target >= 2x: %s); "
              "memory visiond/python = %.2f RSS, %.2f PSS%s" % (
                  w, speed, "met" if speed >= 2 else "NOT met", mem, pss,
                  " (target <= 0.5: %s)" % ("met" if mem <= 0.5 else "NOT met") if w >= 4 else ""))
    if checks:
        print("embedding agreement (visiond ORT vs OpenCV DNN, %d images): cosine min %.4f, mean %.4f" % (
            len(checks), min(checks), sum(checks) / len(checks)))
    print("%d images per session; whole bench %.0f s" % (n, total_s))


if __name__ == "__main__":
    sys.exit(main())
