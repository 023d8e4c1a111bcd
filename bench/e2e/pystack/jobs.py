"""The RQ job of the original stack: embed a session's examples and train.

The model is loaded HERE, at module level, as the original system did: the
`rq worker` process imports this module before it takes any job (through
worker_settings.py, its -c config module), so the network is in the worker's
memory before RQ forks a work-horse for each job. On Linux the horse is an
os.fork() of the worker: it inherits the loaded network copy-on-write and does
not read the file again (each job records the pid that loaded the model and
the pid that ran, see "runtime" in the session). What the horse does NOT get
for free is anything lazily set up on first use: OpenCV DNN allocates its
layers' buffers on the first forward(), and since every horse is a fresh fork
of a worker that never ran one, every job pays that set-up again and its
buffers die with the horse. (With a GPU the inherited context is unusable
after fork: that is where the original crashed.)
"""
import os
import time
import traceback

import numpy as np

import embedder
import store
import train

_T0 = time.time()
MODEL = embedder.Embedder(os.environ["PYSTACK_ONNX"], os.environ["PYSTACK_META"])
MODEL_LOADED_BY = os.getpid()
MODEL_LOAD_S = time.time() - _T0
BATCH = int(os.environ.get("PYSTACK_BATCH", "1"))
SOLVER = os.environ.get("PYSTACK_SOLVER", "lbfgs")


def train_session(session_id):
    conn = store.connect()
    s = store.get(conn, session_id)
    if s is None or s["state"] not in ("queued", "running"):
        return {"skipped": True}
    examples = s["examples"]
    total = len(examples)
    t0 = time.time()
    store.update(conn, session_id, state="running", progress={"done": 0, "total": total})
    try:
        vectors, labels, errors = [], [], []
        done = 0
        for i in range(0, total, BATCH):
            chunk = examples[i:i + BATCH]
            tensors, kept = [], []
            for ex in chunk:
                try:
                    tensors.append(MODEL.preprocess(ex["path"]))
                    kept.append(ex)
                except ValueError as e:
                    errors.append({"path": ex["path"], "error": str(e)})
            if tensors:
                out = MODEL.embed(tensors)
                vectors.extend(out)
                labels.extend(ex["label"] for ex in kept)
            done += len(chunk)
            store.update(conn, session_id, progress={"done": done, "total": total}, errors=errors)
        t_embed = time.time() - t0
        _, metrics = train.train(np.array(vectors), labels, solver=SOLVER)
        runtime = {
            "model_loaded_by_pid": MODEL_LOADED_BY, "model_load_s": round(MODEL_LOAD_S, 3),
            "horse_pid": os.getpid(), "worker_pid": os.getppid(),
            "model_inherited_by_fork": MODEL_LOADED_BY != os.getpid(),
            "embed_s": round(t_embed, 3), "train_s": round(time.time() - t0 - t_embed, 3),
            "batch": BATCH, "solver": SOLVER,
        }
        store.update(conn, session_id, state="succeeded", metrics=metrics, runtime=runtime)
        return runtime
    except Exception as e:  # the session says why; RQ records the traceback
        store.update(conn, session_id, state="failed", message="%s: %s" % (type(e).__name__, e),
                     traceback=traceback.format_exc())
        raise
