"""The original stack's API: FastAPI, sessions in Redis, jobs on RQ.

POST /training/sessions and GET /training/sessions/{id} with visiond's request
and response shapes (docs/api.md), for image sessions with `examples` or
`folder`; uvicorn serves it.
"""
import os
import uuid

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from rq import Queue

import store

app = FastAPI()
conn = store.connect()
queue = Queue("default", connection=conn)
PUBLIC = ("id", "name", "kind", "model", "state", "progress", "errors", "metrics", "message", "runtime")


def _error(status, code, message):
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


def _folder_examples(folder):
    examples = []
    for label in sorted(os.listdir(folder)):
        d = os.path.join(folder, label)
        if label.startswith(".") or not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            p = os.path.join(d, f)
            if not f.startswith(".") and os.path.isfile(p):
                examples.append({"path": p, "label": label})
    return examples


@app.get("/healthz")
def healthz():
    conn.ping()
    return {"status": "ok"}


@app.post("/training/sessions", status_code=202)
async def create_session(request: Request):
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "invalid_json", "the body is not JSON")
    if not isinstance(body, dict) or not body.get("name"):
        return _error(422, "missing_field", "name is required")
    kind = body.get("kind", "image")
    if kind != "image":
        return _error(422, "unknown_kind", "this peer only trains image sessions")
    if "examples" in body and "folder" in body:
        return _error(422, "examples_and_folder", "give examples or folder, not both")
    if "folder" in body:
        if not os.path.isdir(body["folder"]):
            return _error(422, "folder_not_found", "no such folder")
        examples = _folder_examples(body["folder"])
    else:
        examples = body.get("examples")
        if not isinstance(examples, list):
            return _error(422, "missing_field", "examples or folder is required")
        for ex in examples:
            if not isinstance(ex, dict) or "path" not in ex or "label" not in ex:
                return _error(422, "missing_field", "an example needs path and label")
    if not examples:
        return _error(422, "no_examples", "no examples")
    sid = uuid.uuid4().hex
    session = {"id": sid, "name": body["name"], "kind": kind,
               "model": body.get("model", "mobilenet_v2"), "state": "queued",
               "progress": {"done": 0, "total": len(examples)}, "errors": [],
               "metrics": None, "examples": examples}
    store.put(conn, session)
    job = queue.enqueue("jobs.train_session", sid, job_timeout=3600, result_ttl=3600)
    return {"id": sid, "job_id": job.id, "state": "queued", "examples": len(examples)}


@app.get("/training/sessions/{sid}")
def get_session(sid: str):
    s = store.get(conn, sid)
    if s is None:
        raise HTTPException(status_code=404, detail="session_not_found")
    return {k: s[k] for k in PUBLIC if k in s}
