#!/usr/bin/env bash
# chaos.sh: `visiond up` (3 workers, SQLite queue) runs count, embed and training jobs
# while work-horses, worker supervisors and the model server are SIGKILLed at seeded
# random moments; no job is lost or finished twice, the training session gets the same
# metrics as an undisturbed run, every SQLite file passes integrity_check, no orphan is
# left, even though `up` itself is stopped with SIGKILL at the end. The drill itself is
# tests/lib/chaos.py; bench/chaos/run.sh is the full size.
# CHAOS_SEED=N replays a run; tests/fault/chaos_redis.sh is the Redis variant.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/chaos.sh"
chaos_run "${CHAOS_BACKEND:-sqlite}" --stop kill
