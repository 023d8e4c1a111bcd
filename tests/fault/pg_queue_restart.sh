#!/usr/bin/env bash
# pg_queue_restart.sh: the PostgreSQL queue backend while PostgreSQL crashes.
#
# N `count` jobs (each run inserts its job id into a side table) are drained by 3 `visiond
# worker` processes (4 horses each) from a PostgreSQL 15 cluster started here (tests/lib/pg.sh,
# loopback, a port of its own). When about a third of the jobs ran, the postmaster and every
# backend are SIGKILLed (pg_cluster_kill: a crash; the restart replays the WAL) and the
# cluster is started again on the same port. Every job must finish, and none may run twice:
# no acknowledged write was lost, and the calls that the crash interrupted were repeated
# safely. The lease (30 s, the default) outlasts the outage: a shorter one lapses while the
# workers wait to reconnect, and its job runs again (at-least-once; see docs/queue.md).
# Counts are printed.
#
# Skipped (77) without PostgreSQL 15's binaries. Under a sanitizer build
# (VISIOND_TEST_SANITIZED=1) N is 600; PG_QUEUE_RESTART_JOBS=N overrides (default 3000).
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pg.sh"
[ -x "$PG_BIN/postgres" ] || skip "PostgreSQL 15 is not installed ($PG_BIN)"
command -v psql >/dev/null || skip "psql missing"
. "$VISIOND_SOURCE_DIR/tests/lib/worker.sh"
N=${PG_QUEUE_RESTART_JOBS:-3000}
[ -z "${VISIOND_TEST_SANITIZED:-}" ] || N=${PG_QUEUE_RESTART_JOBS:-600}
LOG=$T/workers.log
export VISIOND_LOG_LEVEL=warn # reconnects are warnings

PGD=$T/pg
chmod 755 "$T" # the server runs as user postgres (tests/lib/pg.sh)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pg_cluster_start "$PGD" 127.0.0.1 "$PORT" || fail "cannot start PostgreSQL"
trap 'pg_cluster_kill "$PGD"; _vd_cleanup' EXIT
Q=$(pg_cluster_url "$PGD")

CDB=$T/count.db
sqlite3 "$CDB" "PRAGMA journal_mode=WAL; CREATE TABLE runs(job_id TEXT NOT NULL, attempt INT, pid INT);" >/dev/null
t0=$(date +%s.%N)
per=$(( (N + 3) / 4 ))
left=$N
epids=()
for e in 1 2 3 4; do
  n=$(( left < per ? left : per ))
  left=$(( left - n ))
  enqueue count "{\"db\": \"$CDB\"}" "$n" 0 3 100 >"$T/ids.$e" &
  epids+=("$!")
done
for p in "${epids[@]}"; do wait "$p" || fail "enqueue failed"; done
cat "$T"/ids.[1-4] >"$T/ids"
t1=$(date +%s.%N)
[ "$(wc -l <"$T/ids")" = "$N" ] || fail "enqueued $(wc -l <"$T/ids") of $N"

pids=()
for w in 1 2 3; do
  start_worker "$LOG" --concurrency 4 --burst --name "pg-$w" # lease 30 s: longer than the outage
  pids+=("$WPID")
done
ran() { sqlite3 "$CDB" "SELECT count(*) FROM runs" 2>/dev/null || echo 0; }
third_done() { [ "$(ran)" -ge $(( N / 3 )) ]; }
wait_for "$WAIT_S" third_done || fail "the workers did not get a third of the way"
pg_cluster_kill "$PGD"
at_kill=$(ran)
t_kill=$(date +%s.%N)
sleep 1
pg_cluster_restart "$PGD" || fail "PostgreSQL did not restart"
t_up=$(date +%s.%N)
echo "PostgreSQL killed after $at_kill runs; back after $(awk -v a="$t_kill" -v b="$t_up" 'BEGIN{printf "%.1f", b-a}') s"

for p in "${pids[@]}"; do
  wait "$p" || fail "worker $p exited with $?"
done
t2=$(date +%s.%N)

counts=$("$VDQ" counts "$Q")
echo "queue: $counts"
[ "$counts" = "queued 0 scheduled 0 started 0 finished $N failed 0 canceled 0" ] ||
  fail "not every job finished exactly: $counts"
sqlite3 "$CDB" "CREATE TABLE ids(id TEXT PRIMARY KEY);" ".import $T/ids ids"
runs=$(sqlite3 "$CDB" "SELECT count(*) FROM runs")
missing=$(sqlite3 "$CDB" "SELECT count(*) FROM ids WHERE id NOT IN (SELECT job_id FROM runs)")
stray=$(sqlite3 "$CDB" "SELECT count(*) FROM runs WHERE job_id NOT IN (SELECT id FROM ids)")
dups=$(sqlite3 "$CDB" "SELECT count(*) FROM (SELECT job_id FROM runs GROUP BY job_id HAVING count(*) > 1)")
retried=$(psql "$Q" -qAt -c "SELECT count(*) FROM vd_queue_jobs WHERE attempts > 1")
echo "side table: $runs runs, $missing missing, $dups run twice; $retried jobs took a second attempt"
reconnects=$(grep -c "connection lost; reconnecting" "$LOG" || true)
echo "reconnects logged: $reconnects"
# every worker's connection broke: each says so, whether a call failed or its idle LISTEN
# socket hung up first (that one was silent before)
[ "$reconnects" -ge 3 ] || fail "the crash was not logged by every worker ($reconnects reconnects)"
[ "$missing" = 0 ] && [ "$stray" = 0 ] || fail "jobs missing from the side table"
[ "$dups" = 0 ] && [ "$runs" = "$N" ] || fail "some jobs ran more than once"
awk -v n="$N" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
  printf "pg_queue_restart: enqueue %d in %.1f s (4 clients); drain by 3 workers x 4 horses, with the crash, in %.1f s (%.0f jobs/s)\n",
         n, b - a, c - b, n / (c - b) }'
echo "pg_queue_restart: ok"
