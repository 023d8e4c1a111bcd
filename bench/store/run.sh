#!/usr/bin/env bash
# bench/store/run.sh: the store on PostgreSQL against SQLite, in the same run on the same
# machine: store operations (bench_store.c: insert examples, cache put/get of 1280-float
# vectors in batches of 32, read a session with its examples, progress updates) and a
# training session end to end (`visiond train` on Fashion-MNIST PNGs through one model
# server and one worker with --store). Prints rates and the ratios pg/sqlite.
#
#   bench/store/run.sh                     (needs build/; models in data/models or $MODELS)
#   BENCH_PG=URL       an empty PostgreSQL database to use (default: a throwaway cluster
#                      started here with tests/lib/pg.sh on a free loopback port)
#   BENCH_N=N          examples/vectors per store operation (default 1000)
#   BENCH_PER_LABEL=N  images per label of the training session (default 12, 4 labels)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build=${BUILD:-build}
VISIOND=$root/$build/visiond
ORT=${ONNXRUNTIME_ROOT:-/opt/visiond/deps/onnxruntime}
MODELS=${MODELS:-$root/data/models}
[ -f "$build/libvisiond.a" ] || { echo "bench: build first (cmake --build $build)" >&2; exit 1; }
[ -f "$MODELS/mobilenet_v2.onnx" ] || { echo "bench: no models in $MODELS (scripts/models.sh)" >&2; exit 1; }
cc -O2 -std=gnu17 -D_GNU_SOURCE -Isrc bench/store/bench_store.c "$build/libvisiond.a" \
  $(pkg-config --libs jansson vips sqlite3 libmicrohttpd hiredis libpq libcrypto gmodule-2.0) -L"$ORT/lib" \
  -lonnxruntime -Wl,-rpath,"$ORT/lib" -lpthread -lm -o "$build/bench_store"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdbench.XXXXXX")
[ "$(id -u)" != 0 ] || chmod 755 "$tmp"
pids=()
. "$root/tests/lib/pg.sh"
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${BENCH_PG:-}" ] || pg_cluster_stop "$tmp/pg"
  rm -rf "$tmp"
}
trap cleanup EXIT
export VISIOND_LOG_LEVEL=warn
PY=/usr/bin/python3
if [ -z "${BENCH_PG:-}" ]; then
  port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  pg_cluster_start "$tmp/pg" 127.0.0.1 "$port" >/dev/null
  BENCH_PG=$(pg_cluster_url "$tmp/pg")
  newdb() { psql "$(pg_cluster_admin "$tmp/pg")" -qAt -c "CREATE DATABASE $1 OWNER visiond" >/dev/null; pg_cluster_url "$tmp/pg" "$1"; }
  pg_where="a throwaway PostgreSQL 15 cluster (fsync off, as the tests run it)"
else
  newdb() { echo "$BENCH_PG"; }
  pg_where="$BENCH_PG"
fi
echo "bench/store: $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg); PostgreSQL: $pg_where"

# ---- store operations -----------------------------------------------------------------
mkdir -p "$tmp/ops"
"$build/bench_store" "sqlite:$tmp/ops/store.db" "$(newdb ops)" | tee "$tmp/ops.txt"
echo "ratios pg/sqlite (rate; below 1 = PostgreSQL slower):"
$PY - "$tmp/ops.txt" <<'PYEOF'
import sys, re
rates = {}
for line in open(sys.argv[1]):
    m = re.match(r'(\w+)\s+(.+?)\s+(\d+) /s', line)
    if m: rates.setdefault(m.group(2), {})[m.group(1)] = float(m.group(3))
for op, r in rates.items():
    if 'pg' in r and 'sqlite' in r:
        print("  %-30s %.2f" % (op, r['pg'] / r['sqlite']))
PYEOF

# ---- a training session on each ---------------------------------------------------------
per=${BENCH_PER_LABEL:-12}
"$VISIOND" dataset fashion-mnist --out "$tmp/fm" --per-label "$per" --split test >/dev/null
for l in "$tmp/fm"/*; do case $(basename "$l") in trouser|bag|sneaker|dress) ;; *) rm -rf "$l" ;; esac; done
n=$(find "$tmp/fm" -type f | wc -l)
mkdir -p "$tmp/ms"
"$VISIOND" model-server --data "$tmp/ms" --models "$MODELS" --threads 2 >"$tmp/ms.out" 2>"$tmp/ms.log" &
pids+=($!)
for _ in $(seq 600); do grep -q '"ready"' "$tmp/ms.out" && break; sleep 0.1; done
MS="unix:$tmp/ms/model.sock"
session() { # NAME STORE -> seconds of `visiond train` (create, embed, train, wait)
  local d="$tmp/$1"
  mkdir -p "$d"
  "$VISIOND" worker --data "$d" --store "$2" --model-server "$MS" --concurrency 2 >"$d/worker.log" 2>&1 &
  local w=$!
  pids+=("$w")
  local t0 t1
  t0=$(date +%s.%N)
  "$VISIOND" train --data "$d" --store "$2" --model-server "$MS" --name bench "$tmp/fm" >"$d/train.out" ||
    { cat "$d/train.out" "$d/worker.log" >&2; exit 1; }
  t1=$(date +%s.%N)
  kill "$w"; wait "$w" 2>/dev/null || true
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}
session warm "sqlite:$tmp/warm/store.db" >/dev/null # the model server loads its model once
s_sqlite=$(session sqlite "sqlite:$tmp/sqlite/store.db")
s_pg=$(session pg "$(newdb sess)")
echo "training session ($n images, 4 labels, embed + train, wall time of visiond train):"
printf "  sqlite %8s s\n  pg     %8s s\n" "$s_sqlite" "$s_pg"
awk -v a="$s_sqlite" -v b="$s_pg" 'BEGIN { printf "ratio pg/sqlite (time; above 1 = PostgreSQL slower): %.2f\n", b / a }'
