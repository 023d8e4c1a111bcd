"""Sessions of the original stack, kept as JSON documents in Redis (the same
throwaway redis-server that RQ uses)."""
import json
import os

import redis

KEY = "pystack:session:"


def connect():
    return redis.Redis.from_url(os.environ.get("PYSTACK_REDIS", "redis://127.0.0.1:6379/0"))


def put(conn, session):
    conn.set(KEY + session["id"], json.dumps(session))


def get(conn, session_id):
    raw = conn.get(KEY + session_id)
    return json.loads(raw) if raw is not None else None


def update(conn, session_id, **fields):
    s = get(conn, session_id)
    s.update(fields)
    put(conn, s)
    return s
