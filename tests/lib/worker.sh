# worker.sh: helpers for the worker's shell tests. Source after common.sh.
# Gives: $VDQ (the queue driver), $Q (a fresh queue URL in $T), $QDB (its file),
#   enqueue TYPE PAYLOAD [COUNT [TIMEOUT_MS [MAX_RETRIES [RETRY_BASE_MS]]]]  (prints ids)
#   jget ID FIELD        state|attempts|error|result|progress|worker
#   job_is ID STATE      succeeds when the job is in STATE
#   await ID STATE...    waits (up to $WAIT_S) until the job is in one of STATEs, else fails
#   start_worker LOG ARGS...   starts `visiond worker --queue $Q ARGS` in the background,
#                              tracked (killed at exit); sets $WPID
#   horses PID           prints the pids of PID's children (its work-horses)
#   integrity_ok DBFILE  fails unless PRAGMA integrity_check says ok (no-op for "")
# WORKER_TEST_QUEUE=URL runs the test on that queue instead of a fresh SQLite file.
VDQ="$VISIOND_BUILD_DIR/tests/test_worker"
[ -x "$VDQ" ] || fail "the queue driver $VDQ is not built"
command -v sqlite3 >/dev/null || skip "sqlite3 CLI missing"
QDB="$T/queue.db"
Q="sqlite:$QDB"
if [ -n "${WORKER_TEST_QUEUE:-}" ]; then # another backend (tests/integration/worker_redis.sh)
  Q=$WORKER_TEST_QUEUE
  QDB=""
fi
WAIT_S=${WAIT_S:-180}

# on failure, also show the end of the worker log ($LOG) when there is one
fail() {
  if [ -n "${LOG:-}" ] && [ -f "$LOG" ]; then echo "--- last lines of $LOG:" >&2; tail -n 25 "$LOG" >&2; fi
  echo "FAIL: $*" >&2
  exit 1
}
# count_is N PATTERN FILE: succeeds when grep -c PATTERN FILE is N
count_is() { [ "$(grep -c -- "$2" "$3")" = "$1" ]; }
# horses PID: the worker's children but its fork server (src/worker/forkserver.h)
horses() {
  local p
  for p in $(pgrep -P "$1"); do
    case "$(cat "/proc/$p/comm" 2>/dev/null)" in vd-forkserver | vd-lightfork) ;; *) echo "$p" ;; esac
  done
}
forkserver_of() { pgrep -P "$1" -x vd-forkserver || true; }
lightfork_of() { pgrep -P "$1" -x vd-lightfork || true; } # the light one (docs/worker.md)
has_horses() { [ -n "$(horses "$1")" ]; }
no_horses() { [ -z "$(horses "$1")" ]; }
enqueue() { "$VDQ" enqueue "$Q" "$@"; }
jget() { "$VDQ" get "$Q" "$1" "$2"; }
job_is() { [ "$("$VDQ" get "$Q" "$1" state)" = "$2" ]; }
_job_in() {
  local id=$1 s; shift
  s=$("$VDQ" get "$Q" "$id" state) || return 1
  for want in "$@"; do [ "$s" = "$want" ] && return 0; done
  return 1
}
await() {
  local id=$1; shift
  wait_for "$WAIT_S" _job_in "$id" "$@" ||
    fail "job $id: state $(jget "$id" state) (error: $(jget "$id" error)), wanted $*"
}
start_worker() {
  local log=$1; shift
  "$VISIOND" worker --queue "$Q" "$@" >>"$log" 2>&1 &
  WPID=$!
  track "$WPID"
}
integrity_ok() {
  local r
  [ -n "$1" ] || return 0 # not an SQLite queue
  r=$(sqlite3 "$1" "PRAGMA integrity_check") || fail "integrity_check of $1 could not run"
  [ "$r" = "ok" ] || fail "integrity_check of $1: $r"
}
