#!/usr/bin/env bash
# bench/search: the vector index (src/vindex) against NumPy and FAISS on synthetic clustered
# vectors of the shipped models' dimensions (mobilenet_v2: 1792, faceres: 1024), one size after
# another: for each, vindex exact and approximate (HNSW, hnswlib) build time, memory (RSS delta),
# p50/p99 latency of one query at a time (k 10) and recall@10 vs exact, for several efSearch;
# then, on the same vectors in the same run, exact search with NumPy (matrix @ q + argpartition)
# and FAISS's IndexFlatIP as ratios, and with --faiss-hnsw FAISS's IndexHNSWFlat (same M and
# efConstruction) as ratios. Peers run single-threaded (OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=1,
# like vindex) unless PEER_THREADS is set. Numbers: docs/benchmarks.md; the choice: docs/vindex.md.
#
#   bench/search/run.sh                          10k at 1792 (~1.5 min on 2 busy cores: the HNSW build)
#   bench/search/run.sh --dims 1792,1024,192     the shipped dims (mobilenet_v2; faceres, faceres-deep;
#                                                mobilefacenet)
#   bench/search/run.sh --sizes 10000,100000     more sizes (HNSW build CPU per vector: ~1.1-1.4 ms at
#                                                192, ~4.4 ms at 1024, ~8.5 ms at 1792, over all cores)
#   bench/search/run.sh --sizes 1000000 --dims 192,1024
#                                                1M face vectors (1024: 4 GB of floats, ~9 GB peak; the
#                                                HNSW build is ~30 min of CPU at 192, hours at 1024:
#                                                for a bigger machine; 1M x 1792 is 7 GB per copy)
#   --faiss-hnsw      also build FAISS's HNSW (single-threaded: ~4x vindex's build time)
#   --no-approx       exact only (fast: the exact scaling)
#   --ef LIST         efSearch values (default 50,100,200,400)
#   --queries N       queries per size (default 200)
#   --threads T       threads of vindex's HNSW build (default 0: one per core; 1: serial)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
build=${BUILD:-build}
sizes=10000 dims=1792 ef=50,100,200,400 queries=200 peers=1 fhnsw=0 approx=() threads=0
while [ $# -gt 0 ]; do
  case $1 in
    --sizes) sizes=$2; shift 2 ;;
    --dims) dims=$2; shift 2 ;;
    --ef) ef=$2; shift 2 ;;
    --queries) queries=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --no-peers) peers=0; shift ;;
    --faiss-hnsw) fhnsw=1; shift ;;
    --no-approx) approx=(--no-approx); shift ;;
    *) echo "bench/search: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -f "$build/libvisiond.a" ] || { echo "bench: build first (cmake --build $build)" >&2; exit 1; }
cc -O2 -std=gnu17 -D_GNU_SOURCE -Wall -Wextra -Werror -Isrc bench/search/bench_search.c \
  "$build/libvisiond.a" -lstdc++ -lm -pthread -o "$build/bench_search"
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-search.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "bench/search: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); sizes $sizes; dims $dims"
export OMP_NUM_THREADS=${PEER_THREADS:-1} OPENBLAS_NUM_THREADS=${PEER_THREADS:-1}
for d in ${dims//,/ }; do
  for n in ${sizes//,/ }; do
    echo "== n $n dim $d ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))"
    "$build/bench_search" --n "$n" --dim "$d" --queries "$queries" --ef "$ef" --threads "$threads" \
      "${approx[@]}" --dump "$work"
    if [ "$peers" = 1 ]; then
      hn=(--no-hnsw); [ "$fhnsw" = 1 ] && hn=()
      /usr/bin/python3 bench/search/peer.py "$work" --ef "$ef" "${hn[@]}"
    fi
    rm -f "$work"/*
  done
done
