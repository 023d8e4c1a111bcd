# common.sh: helpers for shell tests. Source it: . "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
# Gives: $T (a private temp dir removed at exit), fail MSG, skip MSG, pass, wait_for CMD...
set -euo pipefail
: "${VISIOND:?VISIOND must point at the visiond binary}"
# The test job types (noop, sleep, fail, crash, progress, count, alloc) exist only with this
# (jobspec.h); a test that shows they are refused without it runs with `env -u VISIOND_TEST_JOBS`.
export VISIOND_TEST_JOBS=1
T=$(mktemp -d "${TMPDIR:-/tmp}/vdsh.XXXXXX")
_vd_pids=()
_vd_cleanup() {
  for p in "${_vd_pids[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
  [ -n "${VDTEST_KEEP:-}" ] || rm -rf "$T"
}
trap _vd_cleanup EXIT
# track PID: kill it (SIGKILL) at exit if it still runs
track() { _vd_pids+=("$1"); }
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }
# wait_for SECONDS CMD...: retries CMD every 0.1 s until it succeeds or SECONDS pass
wait_for() {
  local secs=$1; shift
  local end=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.1
  done
}
