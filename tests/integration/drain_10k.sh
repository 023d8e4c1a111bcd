#!/usr/bin/env bash
# drain_10k.sh: 10,000 jobs drained by 3 concurrent `visiond worker` processes
# (fork per job, 4 horses each), each job run and finished exactly once. Every
# run of the `count` handler inserts (job id, attempt, pid) into a separate
# SQLite file; afterwards the queue says every job is finished and the side
# table holds each id exactly once. Under a sanitizer build
# (VISIOND_TEST_SANITIZED=1) 1,000 jobs.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/worker.sh"
N=${DRAIN_JOBS:-10000}
[ -z "${VISIOND_TEST_SANITIZED:-}" ] || N=${DRAIN_JOBS:-1000}
Q="sqlite:$QDB?sync=normal" # survives kill -9; not fsync'd per commit
LOG=$T/workers.log
CDB=$T/count.db
export VISIOND_LOG_LEVEL=warn # 2 lines per job x 10k is noise here

sqlite3 "$CDB" "PRAGMA journal_mode=WAL; CREATE TABLE runs(job_id TEXT NOT NULL, attempt INT, pid INT);" >/dev/null
t0=$(date +%s.%N)
enqueue count "{\"db\": \"$CDB\"}" "$N" >"$T/ids"
t1=$(date +%s.%N)
[ "$(wc -l <"$T/ids")" = "$N" ] || fail "enqueued $(wc -l <"$T/ids") of $N"

pids=()
for w in 1 2 3; do
  start_worker "$LOG" --concurrency 4 --burst --name "drain-$w"
  pids+=("$WPID")
done
for p in "${pids[@]}"; do
  wait "$p" || fail "worker $p exited with $?"
done
t2=$(date +%s.%N)

counts=$("$VDQ" counts "$Q")
echo "queue: $counts"
case "$counts" in *"finished $N failed 0 canceled 0"*) ;; *) fail "not all finished: $counts" ;; esac
case "$counts" in "queued 0 scheduled 0 started 0 "*) ;; *) fail "jobs left over: $counts" ;; esac

sqlite3 "$CDB" "CREATE TABLE ids(id TEXT PRIMARY KEY);" ".import $T/ids ids"
runs=$(sqlite3 "$CDB" "SELECT count(*) FROM runs")
distinct=$(sqlite3 "$CDB" "SELECT count(DISTINCT job_id) FROM runs")
missing=$(sqlite3 "$CDB" "SELECT count(*) FROM ids WHERE id NOT IN (SELECT job_id FROM runs)")
stray=$(sqlite3 "$CDB" "SELECT count(*) FROM runs WHERE job_id NOT IN (SELECT id FROM ids)")
dups=$(sqlite3 "$CDB" "SELECT count(*) FROM (SELECT job_id FROM runs GROUP BY job_id HAVING count(*) > 1)")
horses=$(sqlite3 "$CDB" "SELECT count(DISTINCT pid) FROM runs")
echo "side table: $runs runs, $distinct distinct jobs, $missing missing, $dups duplicated, $horses distinct horse pids"
[ "$runs" = "$N" ] && [ "$distinct" = "$N" ] && [ "$missing" = 0 ] && [ "$dups" = 0 ] && [ "$stray" = 0 ] ||
  fail "each job must run exactly once"
workers=$(sqlite3 "$QDB" "SELECT count(DISTINCT worker) FROM jobs")
echo "jobs were taken by $workers workers"
integrity_ok "$QDB"
integrity_ok "$CDB"
awk -v n="$N" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
  printf "drain_10k: enqueue %d in %.2f s; drain by 3 workers x 4 horses in %.2f s (%.0f jobs/s)\n",
         n, b - a, c - b, n / (c - b) }'
