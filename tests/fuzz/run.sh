#!/usr/bin/env bash
# run.sh: builds the libFuzzer harnesses (tests/fuzz/fuzz_*.c) with clang in a separate build
# dir and runs each for a bounded time, starting from its seed corpus (tests/fuzz/corpus/NAME).
# Prints the executions per harness. Exits 1 when a harness found a crash (the input is kept
# under BUILD/fuzz-artifacts/ and named in the output: fix the bug, then copy the input into
# tests/fuzz/corpus/NAME/ so that the fuzz/NAME ctest replays it in every build).
#
#   tests/fuzz/run.sh                     every harness, FUZZ_TIME seconds each
#   tests/fuzz/run.sh proto api           only these
#   FUZZ_TIME=30                          seconds per harness (default 15: 8 harnesses + the
#                                         clang build stay near 3 minutes of CI time)
#   FUZZ_BUILD_DIR=build-fuzz             where to build (default: build-fuzz)
#   SKIP_FUZZ=1                           do nothing (scripts/test.sh honours it too)
#   FUZZ_JOBS=2                           build parallelism (default: nproc)
# Inputs found along the way go to BUILD/fuzz-corpus/NAME (kept between runs, never committed).
# Without clang the script says so and exits 0 (the replay ctests still run the corpus).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"

if [ -n "${SKIP_FUZZ:-}" ]; then echo "fuzz: skipped (SKIP_FUZZ is set)"; exit 0; fi
if ! command -v clang >/dev/null; then echo "fuzz: skipped: clang is not installed"; exit 0; fi

time_each=${FUZZ_TIME:-15}
build=${FUZZ_BUILD_DIR:-build-fuzz}
jobs=${FUZZ_JOBS:-$(nproc)}
if [ $# -gt 0 ]; then
  names=("$@")
else
  names=()
  for f in tests/fuzz/fuzz_*.c; do n=${f##*/fuzz_}; names+=("${n%.c}"); done
fi

t0=$(date +%s)
CC=clang CXX=clang++ cmake -S . -B "$build" -DVISIOND_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=()
for n in "${names[@]}"; do targets+=(--target "fuzz_$n"); done
cmake --build "$build" -j "$jobs" "${targets[@]}" >"$build/fuzz-build.log" 2>&1 ||
  { tail -30 "$build/fuzz-build.log"; echo "fuzz: build failed"; exit 1; }
echo "fuzz: built ${#names[@]} harnesses in $(($(date +%s) - t0)) s"

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$here/tests/lsan.supp}
status=0
summary=()
for n in "${names[@]}"; do
  work="$build/fuzz-corpus/$n" art="$build/fuzz-artifacts"
  mkdir -p "$work" "$art"
  log="$build/fuzz-$n.log"
  rc=0
  "$build/tests/fuzz/fuzz_$n" -max_total_time="$time_each" -timeout=30 -rss_limit_mb=2560 \
    -print_final_stats=1 -artifact_prefix="$art/$n-" "$work" "tests/fuzz/corpus/$n" \
    >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  if [ "$rc" != 0 ]; then
    status=1
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    grep -E "ERROR: |runtime error|SUMMARY" "$log" | head -5 || true
    summary+=("$n: FAILED (rc $rc) after ${execs:-?} executions; input: ${crash:-see $log}")
  else
    rate=$(( ${execs:-0} / ( ${secs:-1} > 0 ? ${secs:-1} : 1 ) ))
    summary+=("$n: ${execs:-?} executions in ${secs:-?} s (${rate}/s), corpus $(ls "$work" | wc -l) inputs")
  fi
done
for line in "${summary[@]}"; do echo "fuzz: $line"; done
echo "fuzz: total $(($(date +%s) - t0)) s"
exit $status
