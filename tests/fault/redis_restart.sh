#!/usr/bin/env bash
# redis_restart.sh: the Redis queue backend under faults.
#
# Phase 1: 10,000 `count` jobs (each run inserts its job id into a side table),
# drained by 3 `visiond worker` processes (4 horses each) from a redis-server
# started here (appendonly yes, appendfsync always, loopback port, private
# dir). When about a third of the jobs ran, redis-server is killed with
# SIGKILL and restarted on the same port and dir. Every job must finish, and
# none may run twice: no acknowledged write was lost, and calls whose reply was
# lost were repeated safely.
# Phase 2: a worker is killed with SIGKILL while its horses run; its jobs come
# back when their 1 s lease lapses, and a second worker finishes them (attempt 2).
#
# Skipped (77) without redis-server / redis-cli. Under a sanitizer build
# (VISIOND_TEST_SANITIZED=1) phase 1 uses 1,000 jobs; REDIS_RESTART_JOBS=N overrides.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
command -v redis-server >/dev/null || skip "redis-server is not installed"
command -v redis-cli >/dev/null || skip "redis-cli is not installed"
. "$VISIOND_SOURCE_DIR/tests/lib/worker.sh"
N=${REDIS_RESTART_JOBS:-10000}
[ -z "${VISIOND_TEST_SANITIZED:-}" ] || N=${REDIS_RESTART_JOBS:-1000}
LOG=$T/workers.log
export VISIOND_LOG_LEVEL=warn # 2 lines per job x 10k is noise; reconnects are warnings

RDIR=$T/redis
mkdir -p "$RDIR"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RPID=""
redis_up() {
  redis-server --port "$PORT" --bind 127.0.0.1 --dir "$RDIR" --appendonly yes --appendfsync always \
    --save '' --daemonize no --logfile "$RDIR/redis.log" </dev/null >/dev/null 2>&1 &
  RPID=$!
  track "$RPID"
  wait_for 60 redis_ready || fail "redis-server did not come up on port $PORT: $(tail -n 5 "$RDIR/redis.log")"
}
redis_ready() { [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ]; }
rcli() { redis-cli -p "$PORT" "$@"; }
redis_up

# ---- phase 1: kill -9 redis-server mid-run -------------------------------------------------
Q="redis://127.0.0.1:$PORT/0?prefix=restart"
CDB=$T/count.db
sqlite3 "$CDB" "PRAGMA journal_mode=WAL; CREATE TABLE runs(job_id TEXT NOT NULL, attempt INT, pid INT);" >/dev/null
t0=$(date +%s.%N)
# 4 enqueuers at once: with appendfsync always, Redis fsyncs once per event-loop
# round for every client's writes, so parallel clients share the fsyncs
per=$(( (N + 3) / 4 ))
left=$N
epids=()
for e in 1 2 3 4; do
  n=$(( left < per ? left : per ))
  left=$(( left - n ))
  enqueue count "{\"db\": \"$CDB\"}" "$n" >"$T/ids.$e" &
  epids+=("$!")
done
for p in "${epids[@]}"; do wait "$p" || fail "enqueue failed"; done
cat "$T"/ids.[1-4] >"$T/ids"
t1=$(date +%s.%N)
[ "$(wc -l <"$T/ids")" = "$N" ] || fail "enqueued $(wc -l <"$T/ids") of $N"

pids=()
for w in 1 2 3; do
  start_worker "$LOG" --concurrency 4 --burst --name "rr-$w"
  pids+=("$WPID")
done
ran() { sqlite3 "$CDB" "SELECT count(*) FROM runs" 2>/dev/null || echo 0; }
third_done() { [ "$(ran)" -ge $(( N / 3 )) ]; }
wait_for "$WAIT_S" third_done || fail "the workers did not get a third of the way"
kill -KILL "$RPID"
wait "$RPID" 2>/dev/null || true
at_kill=$(ran)
t_kill=$(date +%s.%N)
sleep 1
redis_up
t_up=$(date +%s.%N)
echo "redis-server killed after $at_kill runs; back after $(awk -v a="$t_kill" -v b="$t_up" 'BEGIN{printf "%.1f", b-a}') s"

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
retried=$(sqlite3 "$CDB" "SELECT count(*) FROM runs WHERE attempt > 1")
echo "side table: $runs runs, $missing missing, $dups run twice, $retried second attempts"
[ "$missing" = 0 ] && [ "$stray" = 0 ] || fail "jobs missing from the side table"
[ "$dups" = 0 ] && [ "$runs" = "$N" ] || fail "some jobs ran more than once"
integrity_ok "$CDB"
echo "the restarted redis-server accepted $(rcli info stats | tr -d '\r' | sed -n 's/^total_connections_received://p') connections"
awk -v n="$N" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
  printf "redis_restart: enqueue %d in %.1f s (fsync always, 4 clients); drain by 3 workers x 4 horses, with the restart, in %.1f s (%.0f jobs/s)\n",
         n, b - a, c - b, n / (c - b) }'

# ---- phase 2: kill -9 a worker mid-job ------------------------------------------------------
Q="redis://127.0.0.1:$PORT/0?prefix=victim"
LOG=$T/victim.log
CDB2=$T/count2.db
sqlite3 "$CDB2" "PRAGMA journal_mode=WAL; CREATE TABLE runs(job_id TEXT NOT NULL, attempt INT, pid INT);" >/dev/null
# each progress job: 3 s of steps; count jobs leave a row
enqueue progress '{"steps": 30, "ms": 100}' 6 0 2 >"$T/ids2"
enqueue count "{\"db\": \"$CDB2\"}" 4 0 2 >>"$T/ids2"
start_worker "$LOG" --name victim --concurrency 3 --lease 1 --heartbeat 0.2
A=$WPID
three_started() { case "$("$VDQ" counts "$Q")" in *"started 3 "*) return 0 ;; esac; return 1; }
wait_for "$WAIT_S" three_started || fail "the victim did not take 3 jobs"
kill -STOP "$A" # freeze it (no reserves, no records) while its jobs are looked up
victim_jobs=""
for id in $(cat "$T/ids2"); do
  [ "$(jget "$id" state)" = started ] && [ "$(jget "$id" worker)" = victim ] && victim_jobs="$victim_jobs $id"
done
[ "$(echo $victim_jobs | wc -w)" = 3 ] || fail "victim holds: $victim_jobs"
kill -KILL "$A"
wait "$A" 2>/dev/null || true
echo "victim killed holding$victim_jobs"
"$VISIOND" worker --queue "$Q" --name survivor --concurrency 2 --lease 5 --burst >>"$LOG" 2>&1 &
B=$!
track "$B"
for id in $(cat "$T/ids2"); do await "$id" finished; done
for id in $victim_jobs; do
  [ "$(jget "$id" worker)" = survivor ] || fail "job $id finished by $(jget "$id" worker)"
  [ "$(jget "$id" attempts)" = 2 ] || fail "job $id attempts $(jget "$id" attempts)"
done
wait "$B" || fail "survivor exit status $?"
counts=$("$VDQ" counts "$Q")
[ "$counts" = "queued 0 scheduled 0 started 0 finished 10 failed 0 canceled 0" ] || fail "counts: $counts"
[ "$(sqlite3 "$CDB2" "SELECT count(DISTINCT job_id) FROM runs")" = 4 ] || fail "count jobs missing from the side table"
echo "redis_restart: ok"
