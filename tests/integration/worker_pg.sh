#!/usr/bin/env bash
# worker_pg.sh: worker_basic.sh again, on the PostgreSQL queue backend (a fresh database of
# $VISIOND_TEST_PG's cluster, tests/lib/pg.sh), then the LISTEN/NOTIFY wake-up: an idle
# worker (its reserve backoff grown to 1 s) takes a job enqueued later at once, without
# waiting for its next periodic reserve. Needs $VISIOND_TEST_PG and $VISIOND_TEST_PG_ADMIN
# (scripts/test.sh provides them); skipped otherwise.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
[ -n "${VISIOND_TEST_PG:-}" ] && [ -n "${VISIOND_TEST_PG_ADMIN:-}" ] ||
  skip "VISIOND_TEST_PG / VISIOND_TEST_PG_ADMIN are not set"
command -v psql >/dev/null || skip "psql missing"
. "$VISIOND_SOURCE_DIR/tests/lib/pg.sh"
url=$(pg_newdb worker_pg) || fail "cannot create a test database"
"$VISIOND" jobs list --queue "$url" >"$T/probe" 2>&1 || fail "postgres queue unusable: $(cat "$T/probe")"
WORKER_TEST_QUEUE=$url bash "$VISIOND_SOURCE_DIR/tests/integration/worker_basic.sh" ||
  fail "worker_basic.sh on postgres"

# ---- wake-up -----------------------------------------------------------------------------------
url=$(pg_newdb worker_pg_wake) || fail "cannot create a test database"
WORKER_TEST_QUEUE=$url
. "$VISIOND_SOURCE_DIR/tests/lib/worker.sh"
LOG=$T/wake.log
start_worker "$LOG" --concurrency 1
# three times: idle long enough for the reserve backoff to reach its cap (1 s with a wake
# descriptor), then one job. Its enqueue-to-start time is the wake-up's, not the backoff's
# (printed, not asserted: the machine may be slow).
lat=""
for round in 1 2 3; do
  sleep 2
  id=$(enqueue noop '{}') || fail "enqueue"
  await "$id" finished
  lat="$lat $(psql "$url" -qAt -c "SELECT started_ms - created_ms FROM vd_queue_jobs WHERE id = '$id'") ms"
done
echo "wake-up: enqueue to start of a job for an idle worker:$lat"
grep -q "queue postgres" "$LOG" || fail "the worker did not say it runs on postgres"
# ---- a light horse on a PostgreSQL store (docs/worker.md, "Light horses"): no visiond binary
# links libpq (core/pq.h); the light fork server loads it for a postgres store, and the
# recluster_people horse it clones opens the store with it
surl=$(pg_newdb worker_pg_store) || fail "cannot create a test database"
"$VISIOND" jobs enqueue recluster_people --queue "sqlite:$T/light.db" >/dev/null || fail "enqueue"
VISIOND_LOG_LEVEL=debug "$VISIOND" worker --queue "sqlite:$T/light.db" --store "$surl" --burst \
  >"$T/light.log" 2>&1 || fail "worker on a postgres store: $(tail -5 "$T/light.log")"
grep -q "light work-horses from .* for .*recluster_people" "$T/light.log" ||
  fail "no light fork server for recluster_people: $(cat "$T/light.log")"
grep -q "(recluster_people) finished" "$T/light.log" ||
  fail "recluster_people on a postgres store: $(cat "$T/light.log")"
echo "worker_pg: ok"
