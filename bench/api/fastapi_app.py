"""fastapi_app.py: the peer for bench/api/run.sh: GET /jobs/{id} in FastAPI,
reading the job from visiond's SQLite queue database (the same file and row
that `visiond serve` reads) and answering the same JSON shape.

Run: VISIOND_BENCH_DB=PATH /usr/bin/python3 -m uvicorn --app-dir bench/api fastapi_app:app
One SQLite connection per worker process; the handler is `async def` so that
the short blocking read runs on the event loop without a thread-pool hop (the
faster of FastAPI's two styles for this).
"""
import json
import os
import sqlite3

from fastapi import FastAPI
from fastapi.responses import JSONResponse

STATES = ("queued", "scheduled", "started", "finished", "failed", "canceled")
COLS = ("id, type, payload, priority, state, attempts, max_retries, timeout_ms, retry_base_ms,"
        " retry_max_ms, result_ttl_ms, created_ms, run_at_ms, started_ms, ended_ms,"
        " lease_until_ms, worker, progress_done, progress_total, result, error, cancel_requested")

app = FastAPI()
_db = sqlite3.connect(os.environ["VISIOND_BENCH_DB"], check_same_thread=False)
_db.execute("PRAGMA query_only = 1")


def _json_or_text(text):
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


@app.get("/jobs/{job_id}")
async def get_job(job_id: str):
    row = _db.execute(f"SELECT {COLS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        return JSONResponse(status_code=404,
                            content={"error": {"code": "job_not_found", "message": f"no job {job_id}"}})
    (jid, jtype, payload, priority, state, attempts, max_retries, timeout_ms, retry_base_ms,
     retry_max_ms, result_ttl_ms, created_ms, run_at_ms, started_ms, ended_ms, lease_until_ms,
     worker, done, total, result, error, cancel_requested) = row
    return {
        "id": jid, "type": jtype, "state": state, "priority": priority, "attempts": attempts,
        "max_retries": max_retries, "timeout_ms": timeout_ms, "retry_base_ms": retry_base_ms,
        "retry_max_ms": retry_max_ms, "result_ttl_ms": result_ttl_ms, "created_ms": created_ms,
        "run_at_ms": run_at_ms, "started_ms": started_ms or None, "ended_ms": ended_ms or None,
        "lease_until_ms": lease_until_ms or None, "worker": worker or None,
        "progress": {"done": done, "total": total}, "payload": _json_or_text(payload),
        "result": _json_or_text(result), "error": error,
        "cancel_requested": bool(cancel_requested),
    }
