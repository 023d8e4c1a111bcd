#!/usr/bin/env bash
# run.sh: ThreadSanitizer over the one multi-threaded module that shares data
# between threads, the vector index's parallel HNSW build (src/vindex,
# tests/unit/test_vindex_parallel.c: 4 threads inserting into one hnswlib
# graph). Built with clang (GCC 12's TSan runtime does not start on this
# kernel's 28-bit mmap randomisation) in build-tsan/, from the module's own
# sources and the three core files it uses. Exits 1 on any report.
#
#   tests/tsan/run.sh       build and run (about 2 minutes on 2 cores)
#   SKIP_TSAN=1             do nothing (scripts/test.sh honours it too)
#
# Lock-order reports are off (detect_deadlocks=0), for one documented false
# positive of hnswlib (docs/vindex.md, "ThreadSanitizer"): an insert takes its
# new node's lock, then the graph's global lock, while another insert that
# holds the global lock takes the locks of the nodes its search visits; the
# new node is linked nowhere yet, so no search can visit it, but TSan only
# sees the two orders. Data races are all reported.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
if [ -n "${SKIP_TSAN:-}" ]; then echo "tsan: skipped (SKIP_TSAN is set)"; exit 0; fi
if ! command -v clang >/dev/null; then echo "tsan: skipped: clang is not installed"; exit 0; fi
out=${TSAN_BUILD_DIR:-build-tsan}
mkdir -p "$out"
flags=(-fsanitize=thread -g -O1 -D_GNU_SOURCE -Isrc -Itests/lib)
t0=$(date +%s)
objs=()
for f in src/vindex/*.c src/core/err.c src/core/util.c src/core/log.c tests/lib/vdtest.c \
  tests/unit/test_vindex_parallel.c; do
  o="$out/$(basename "${f%.c}").o"
  clang "${flags[@]}" -std=gnu17 -c "$f" -o "$o" & objs+=("$o")
done
for f in src/vindex/*.cpp; do
  o="$out/$(basename "${f%.cpp}").o"
  clang++ "${flags[@]}" -std=c++17 -c "$f" -o "$o" & objs+=("$o")
done
wait
clang++ -fsanitize=thread "${objs[@]}" -lm -pthread -o "$out/test_vindex_parallel_tsan"
echo "tsan: built in $(($(date +%s) - t0)) s"
log="$out/tsan.log"
if TSAN_OPTIONS="halt_on_error=1 detect_deadlocks=0 exitcode=66" \
  "$out/test_vindex_parallel_tsan" >"$log" 2>&1; then
  echo "tsan: test_vindex_parallel: no data race ($(tail -1 "$log"); $(($(date +%s) - t0)) s)"
else
  rc=$?
  grep -A30 'WARNING: ThreadSanitizer' "$log" | head -60 || tail -30 "$log"
  echo "tsan: test_vindex_parallel failed (exit $rc; whole log: $log)"
  exit 1
fi
