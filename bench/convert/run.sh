#!/usr/bin/env bash
# bench/convert/run.sh: the shipped TFJS models, converted by `visiond convert` and
# run in ONNX Runtime, against the originals run by TensorFlow.js (its pure-JS cpu
# backend, the oracle of tests/oracle/) on the same batch, in the same run. Prints
# ms per image for each and the ratio (TFJS time / ORT time).
#
#   bench/convert/run.sh [VISIOND_BINARY]      (default: build/visiond)
#   BENCH_BATCH=N     images per run (default 8)
#   BENCH_REPEATS=N   timed runs after one warm-up (default 3)
#   BENCH_THREADS=N   ORT intra-op threads (default 1; TFJS's cpu backend uses one)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VISIOND=${1:-$root/build/visiond}
B=${BENCH_BATCH:-8} R=${BENCH_REPEATS:-3} THREADS=${BENCH_THREADS:-1}
NPM=${VISIOND_PREFIX:-/opt/visiond}/deps/npm
[ -x "$VISIOND" ] || { echo "bench: no visiond binary at $VISIOND (build first)" >&2; exit 1; }
command -v node >/dev/null || { echo "bench: node missing (scripts/setup.sh)" >&2; exit 1; }
build_dir=$(dirname "$VISIOND")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdbench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

ORT_ROOT=${ONNXRUNTIME_ROOT:-${VISIOND_PREFIX:-/opt/visiond}/deps/onnxruntime}
cc -O2 -std=gnu17 -I"$root/src" -I"$ORT_ROOT/include" "$here/ort_time.c" "$build_dir/libvisiond.a" \
  -L"$ORT_ROOT/lib" -lonnxruntime -Wl,-rpath,"$ORT_ROOT/lib" \
  $(pkg-config --libs jansson libcrypto) -lpthread -lm -o "$tmp/ort_time"

# A seeded input batch in 0..255, scaled per model below.
python3 - "$tmp/in255.f32" "$B" <<'PY'
import random, struct, sys
random.seed(7)
n = int(sys.argv[2]) * 224 * 224 * 3
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<%df" % n, *(random.random() * 255 for _ in range(n))))
PY
python3 - "$tmp/in255.f32" "$tmp/in01.f32" <<'PY'
import array, sys
a = array.array("f"); a.frombytes(open(sys.argv[1], "rb").read())
array.array("f", (v / 255 for v in a)).tofile(open(sys.argv[2], "wb"))
PY

printf '%-14s %14s %14s %8s\n' model "ORT ms/image" "TFJS ms/image" ratio
bench_model() {
  local name=$1 src=$2 node=$3 input=$4
  "$VISIOND" convert --tfjs "$src" --output "$node" -o "$tmp/$name.onnx" >/dev/null
  local ort tfjs
  ort=$("$tmp/ort_time" "$tmp/$name.onnx" "$input" "$B,224,224,3" "$R" "$THREADS" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["ms_per_run"])')
  tfjs=$(node "$root/tests/oracle/tfjs_oracle.js" --model "$src" --input "$input" \
           --shape "$B,224,224,3" --output "$node" --out "$tmp/ref.f32" --time "$R" 2>/dev/null |
         python3 -c 'import json,sys; print(json.load(sys.stdin)["ms_per_run"])')
  awk -v n="$name" -v o="$ort" -v t="$tfjs" -v b="$B" \
    'BEGIN { printf "%-14s %14.1f %14.1f %7.1fx\n", n, o / b, t / b, (o > 0 ? t / o : 0) }'
}
bench_model faceres "$NPM/@vladmandic+human@3.3.6/models/faceres.json" global_pooling/Mean "$tmp/in255.f32"
bench_model mobilenet_v2 "$NPM/nsfwjs@4.3.0/dist/models/mobilenet_v2_mid/model.min.js" \
  feature_vector/SpatialSqueeze "$tmp/in01.f32"
echo "(batch $B, $R timed runs after a warm-up, ORT intra-op threads $THREADS)"
