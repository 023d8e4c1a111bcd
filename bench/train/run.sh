#!/usr/bin/env bash
# bench/train/run.sh: session classifiers with few examples per label, and test-time
# flips, on Fashion-MNIST embedded by MODEL (default mobilenet_v2), in-process ONNX
# Runtime. A training pool of POOL images per label from the train split; the test set is
# TEST images per label of the test split. Prints the table of docs/training.md.
#   bench/train/run.sh [MODEL]   BENCH_N=2,5,10,20 BENCH_SEEDS=5 BENCH_POOL=40 BENCH_TEST=50
#   BENCH_MODELS=data/models
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
build=${BUILD:-build}
ORT=${ONNXRUNTIME_ROOT:-/opt/visiond/deps/onnxruntime}
MODEL=${1:-mobilenet_v2}
[ -f "$build/libvisiond.a" ] || { echo "bench: build first (cmake --build $build)" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdfew.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cc -O2 -std=gnu17 -D_GNU_SOURCE -Isrc -I"$ORT/include" $(pkg-config --cflags vips) \
  bench/train/fewshot.c "$build/libvisiond.a" \
  $(pkg-config --libs jansson vips sqlite3 libmicrohttpd hiredis libcrypto gmodule-2.0) -L"$ORT/lib" \
  -lonnxruntime -Wl,-rpath,"$ORT/lib" -lpthread -lm -o "$tmp/fewshot"
"$build/visiond" dataset fashion-mnist --out "$tmp/train" --split train \
  --per-label "${BENCH_POOL:-40}" >/dev/null
"$build/visiond" dataset fashion-mnist --out "$tmp/test" --split test \
  --per-label "${BENCH_TEST:-50}" >/dev/null
for s in train test; do
  for d in "$tmp/$s"/*/; do
    for f in "$d"*.png; do echo "$(basename "$d") $f"; done
  done >"$tmp/$s.txt"
done
"$tmp/fewshot" "${BENCH_MODELS:-data/models}" "$MODEL" "$tmp/train.txt" "$tmp/test.txt" \
  "${BENCH_N:-2,5,10,20}" "${BENCH_SEEDS:-5}"
