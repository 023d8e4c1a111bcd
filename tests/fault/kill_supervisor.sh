#!/usr/bin/env bash
# kill_supervisor.sh: SIGKILL a worker supervisor while its horses run. Its
# horses die with it (PR_SET_PDEATHSIG); its jobs stay started until their
# lease lapses; a second worker then reclaims and finishes them (attempt 2).
# Nothing is lost, nothing is left started, and the queue database is intact.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/worker.sh"
LOG=$T/worker.log
CDB=$T/count.db
sqlite3 "$CDB" "PRAGMA journal_mode=WAL; CREATE TABLE runs(job_id TEXT NOT NULL, attempt INT, pid INT);" >/dev/null
"$VDQ" counts "$Q" >/dev/null
# each job: 3 s of progress steps, then a row in the side table
enqueue progress '{"steps": 30, "ms": 100}' 6 0 2 >"$T/ids"
enqueue count "{\"db\": \"$CDB\"}" 4 0 2 >>"$T/ids"

start_worker "$LOG" --name victim --concurrency 3 --lease 1 --heartbeat 0.2
A=$WPID
held_by_victim() { [ "$(sqlite3 "$QDB" "SELECT count(*) FROM jobs WHERE state='started' AND worker='victim'")" = 3 ]; }
wait_for "$WAIT_S" held_by_victim || fail "the victim did not take 3 jobs"
horse_pids=$(pgrep -P "$A" | tr '\n' ' ')
[ -n "$horse_pids" ] || fail "no horses"
victim_jobs=$(sqlite3 "$QDB" "SELECT id FROM jobs WHERE state='started' AND worker='victim'")
kill -KILL "$A"
wait "$A" 2>/dev/null || true
integrity_ok "$QDB"
horses_gone() { local p; for p in $horse_pids; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
wait_for "$WAIT_S" horses_gone || fail "horses $horse_pids outlived their supervisor"
echo "victim killed; its horses ($horse_pids) died with it"

# the survivor drains everything, including the victim's jobs once their lease lapses
"$VISIOND" worker --queue "$Q" --name survivor --concurrency 2 --lease 5 --burst >>"$LOG" 2>&1 &
B=$!
track "$B"
for id in $(cat "$T/ids"); do await "$id" finished; done
for id in $victim_jobs; do
  [ "$(jget "$id" worker)" = survivor ] || fail "job $id finished by $(jget "$id" worker)"
  [ "$(jget "$id" attempts)" = 2 ] || fail "job $id attempts $(jget "$id" attempts)"
done
wait "$B" || fail "survivor exit status $?"
counts=$("$VDQ" counts "$Q")
case "$counts" in "queued 0 scheduled 0 started 0 finished 10 failed 0 canceled 0") ;; *) fail "counts: $counts" ;; esac
# every count job left at least one row (a victim's count job may have run before the kill)
[ "$(sqlite3 "$CDB" "SELECT count(DISTINCT job_id) FROM runs")" = 4 ] || fail "count jobs missing from the side table"
integrity_ok "$QDB"
integrity_ok "$CDB"
echo "kill_supervisor: ok"
