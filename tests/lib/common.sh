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
  local rc=$? bad=0
  for p in "${_vd_pids[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
  # Only a passing test is checked (and may fail here); a failing one keeps its own status.
  if [ "$rc" = 0 ] && ! vd_openapi_check; then bad=1; fi
  [ -n "${VDTEST_KEEP:-}" ] || rm -rf "$T"
  [ "$bad" = 0 ] || { echo "FAIL: responses that do not match api/openapi.json (above)" >&2; exit 1; }
}
# The API's contract (api/openapi.json) is checked against every response a test received
# through tests/lib/api.sh's `req` (or any request recorded with vd_openapi_record):
#   rec=$(vd_openapi_record METHOD PATH)   prints the prefix to write REC.hdr (curl -D) and
#                                          REC.body (curl -o) to
#   vd_openapi_check                       validates them (tests/lib/openapi_check.py); run at
#                                          exit when the test passed, which then fails on an
#                                          undocumented status, header or field
# The count of responses validated goes to stderr and is added to
# $VISIOND_BUILD_DIR/openapi-validated.log (scripts/test.sh prints the suite's total).
vd_openapi_record() {
  local dir="$T/openapi" name
  [ -d "$dir" ] || mkdir -p "$dir"
  name="$dir/${EPOCHREALTIME/./}-$BASHPID-$RANDOM"
  printf '%s %s\n' "$1" "$2" >"$name.req"
  printf '%s' "$name"
}
vd_openapi_check() {
  [ -d "$T/openapi" ] || return 0
  local out rc=0
  out=$(/usr/bin/python3 "$VISIOND_SOURCE_DIR/tests/lib/openapi_check.py" \
    "$VISIOND_SOURCE_DIR/api/openapi.json" "$T/openapi" 2>&1) || rc=$?
  printf '%s\n' "$out" >&2
  local n; n=$(sed -nE 's/^openapi: ([0-9]+) responses validated.*/\1/p' <<<"$out" | tail -1)
  if [ -n "${VISIOND_BUILD_DIR:-}" ] && [ -n "$n" ]; then
    printf '%s %s %s\n' "$(basename "$0" .sh)" "$n" "$([ "$rc" = 0 ] && echo ok || echo failed)" \
      >>"$VISIOND_BUILD_DIR/openapi-validated.log" 2>/dev/null || true
  fi
  rm -rf "$T/openapi"
  return "$rc"
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
