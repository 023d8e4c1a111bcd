#!/usr/bin/env bash
# kill_horse.sh: SIGKILL work-horses in the middle of their jobs, then the fork servers. Each killed
# attempt is recorded as "work-horse killed by SIGKILL" and retried; in the
# end every job is finished, the worker never stopped, the attempts add up
# (jobs + recorded kills), and the queue database is intact after every kill.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/worker.sh"
LOG=$T/worker.log
N=15
KILLS=8
"$VDQ" counts "$Q" >/dev/null
enqueue sleep '{"ms": 1500}' "$N" 0 20 50 >"$T/ids" # 20 retries, 50 ms backoff base
start_worker "$LOG" --concurrency 3 --lease 5 --heartbeat 0.5
W=$WPID

killed=()
was_killed() { local p; for p in "${killed[@]:-}"; do [ "$p" = "$1" ] && return 0; done; return 1; }
fresh_horse() {
  local p
  for p in $(horses "$W"); do was_killed "$p" || { echo "$p"; return 0; }; done
  return 1
}
for i in $(seq "$KILLS"); do
  wait_for "$WAIT_S" fresh_horse || fail "no running horse to kill (kill $i)"
  h=$(fresh_horse) || continue
  sleep 0.$((RANDOM % 3 + 1)) # somewhere in the middle of the job
  kill -KILL "$h" 2>/dev/null || true
  killed+=("$h")
  integrity_ok "$QDB"
done
echo "killed ${#killed[@]} horses: ${killed[*]}"
# the light fork server, whose clones ran these sleep jobs (docs/worker.md, "Light horses"):
# the rest run in full horses
lsrv=$(lightfork_of "$W")
[ -n "$lsrv" ] || fail "the worker has no light fork server"
kill -KILL "$lsrv"
wait_for "$WAIT_S" grep -q "light fork server ($lsrv) exited; every job type runs in a full" "$LOG" ||
  fail "the worker did not notice its light fork server's death"
# the fork server too (src/worker/forkserver.h): the worker forks the rest itself
fsrv=$(forkserver_of "$W")
[ -n "$fsrv" ] || fail "the worker has no fork server"
kill -KILL "$fsrv"
wait_for "$WAIT_S" grep -q "fork server ($fsrv) exited; forking work-horses from the supervisor" "$LOG" ||
  fail "the worker did not notice its fork server's death"

for id in $(cat "$T/ids"); do await "$id" finished; done
kill -0 "$W" || fail "the worker died"
recorded=$(grep -c "failed, attempt .*: work-horse killed by SIGKILL; retry scheduled" "$LOG" || true)
attempts=$(sqlite3 "$QDB" "SELECT sum(attempts) FROM jobs")
echo "recorded kills: $recorded; attempts: $attempts for $N jobs"
[ "$recorded" -ge 1 ] || fail "no kill was recorded as a failed attempt"
[ "$attempts" -eq $((N + recorded)) ] || fail "attempts $attempts != jobs $N + recorded kills $recorded"
# a horse killed after it had sent its result is a finished job, not a failure
[ "$recorded" -le "$KILLS" ] || fail "more failures than kills"
kill -TERM "$W"
wait "$W" || fail "worker exit status $?"
integrity_ok "$QDB"
echo "kill_horse: ok"
