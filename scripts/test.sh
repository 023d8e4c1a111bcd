#!/usr/bin/env bash
# test.sh: sets up (scripts/setup.sh), builds, and runs the whole test suite twice:
# once in a normal build (build/) and once under ASan+UBSan (build-asan/).
#
#   scripts/test.sh               everything
#   SKIP_SETUP=1 scripts/test.sh  skip the setup step
#   SKIP_ASAN=1 scripts/test.sh   only the normal build
#   CTEST_ARGS='-L unit'          passed to ctest (e.g. a label or -R regex)
#   SKIP_FUZZ=1                   skip the bounded fuzzing run (tests/fuzz/run.sh)
#   SKIP_TSAN=1                   skip the ThreadSanitizer run (tests/tsan/run.sh)
#
# It ends with one line adding up both suites, the fuzz run and the TSan run:
#   visiond: N passed, N failed, N skipped
#   SKIP_FUZZ=1 scripts/test.sh   skip the bounded fuzzing run at the end (tests/fuzz/run.sh:
#                                 clang build in build-fuzz/, FUZZ_TIME seconds per harness)
#
# Tests that need Redis use $VISIOND_TEST_REDIS (redis://127.0.0.1:PORT/0); when it
# is unset this script starts a throwaway redis-server on a free loopback port.
# Tests that need PostgreSQL use $VISIOND_TEST_PG (postgres://visiond:visiond@127.0.0.1:PORT/visiond)
# and $VISIOND_TEST_PG_ADMIN (the superuser over a Unix socket); when unset, this script starts a
# throwaway PostgreSQL 15 cluster (tests/lib/pg.sh: initdb in a temporary directory, loopback only).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

[ -n "${SKIP_SETUP:-}" ] || scripts/setup.sh

redis_pid="" pg_dir=""
. tests/lib/pg.sh
cleanup() {
  [ -z "$redis_pid" ] || kill "$redis_pid" 2>/dev/null || true; [ -z "${redis_dir:-}" ] || rm -rf "$redis_dir"
  [ -z "$pg_dir" ] || { pg_cluster_stop "$pg_dir"; rm -rf "$pg_dir"; }
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
if [ -z "${VISIOND_TEST_REDIS:-}" ]; then
  redis_dir=$(mktemp -d)
  port=$(free_port)
  redis-server --bind 127.0.0.1 --port "$port" --dir "$redis_dir" --save '' --appendonly no --daemonize no \
    --logfile "$redis_dir/redis.log" &
  redis_pid=$!
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  export VISIOND_TEST_REDIS="redis://127.0.0.1:$port/0"
  echo "test: redis-server on 127.0.0.1:$port (pid $redis_pid)"
fi
if [ -z "${VISIOND_TEST_PG:-}" ]; then
  pg_dir=$(mktemp -d /tmp/vdpg.XXXXXX); port=$(free_port)
  pg_cluster_start "$pg_dir" 127.0.0.1 "$port"
  export VISIOND_TEST_PG=$(pg_cluster_url "$pg_dir") VISIOND_TEST_PG_ADMIN=$(pg_cluster_admin "$pg_dir")
  echo "test: PostgreSQL 15 on 127.0.0.1:$port ($pg_dir)"
fi

jobs=$(nproc)
status=0
run_suite() {
  local dir=$1; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  # The shipped models, converted by this build, for the tests that run them (data/models).
  [ "$dir" != build ] || scripts/models.sh --visiond "$dir/visiond" --out "$here/data/models" || status=1
  local rc=0
  rm -f "$dir/openapi-validated.log" # each test that got API responses adds a line (common.sh)
  (cd "$dir" && ctest --output-on-failure ${CTEST_ARGS:-}) 2>&1 | tee "$dir/ctest.log" || rc=1
  if [ -f "$dir/openapi-validated.log" ]; then
    echo "test: $(awk '{n += $2; t++} END {print n " API responses validated against api/openapi.json by " t " tests"}' \
      "$dir/openapi-validated.log") ($dir)"
  fi
  [ "$rc" = 0 ] || status=1
  # Totals for the closing line: ctest counts a skipped test as not failed.
  local line total failed skipped
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$dir/ctest.log" | tail -1 || true)
  total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line"); failed=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
  skipped=$(grep -c '\*\*\*Skipped' "$dir/ctest.log" || true)
  if [ -z "$line" ]; then total=1 failed=1 skipped=0; fi
  sum_passed=$((sum_passed + total - failed - skipped)); sum_failed=$((sum_failed + failed))
  sum_skipped=$((sum_skipped + skipped))
}
sum_passed=0 sum_failed=0 sum_skipped=0
echo "test: normal build"
run_suite build
if [ -z "${SKIP_ASAN:-}" ]; then
  echo "test: ASan+UBSan build"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export LSAN_OPTIONS=suppressions=$here/tests/lsan.supp
  export VISIOND_TEST_SANITIZED=1
  run_suite build-asan -DVISIOND_SANITIZE=ON
fi
# Runs one stage outside CTest (its own build, no ASan environment), counted as one test.
run_stage() {
  echo "test: $1"
  shift
  if (unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; "$@"); then
    sum_passed=$((sum_passed + 1))
  else
    status=1 sum_failed=$((sum_failed + 1))
  fi
}
if [ -z "${SKIP_FUZZ:-}" ]; then
  run_stage "fuzzing (tests/fuzz/run.sh, ${FUZZ_TIME:-15} s per harness)" tests/fuzz/run.sh
fi
if [ -z "${SKIP_TSAN:-}" ]; then
  run_stage "ThreadSanitizer (tests/tsan/run.sh: the parallel HNSW build)" tests/tsan/run.sh
fi
[ "$status" = 0 ] || [ "$sum_failed" -gt 0 ] || sum_failed=1
echo "visiond: $sum_passed passed, $sum_failed failed, $sum_skipped skipped"
exit $status
