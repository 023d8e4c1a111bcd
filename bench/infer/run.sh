#!/usr/bin/env bash
# run.sh: builds bench/infer/bench_infer.c against build/libvisiond.a and runs it.
#   bench/infer/run.sh [--models DIR] [--seconds S] [--threads N] [bench_infer options] [MODEL...]
# Default models: the shipped ones, faceres mobilenet_v2 blazeface_back mobilefacenet
# faceres-deep, keeping those whose NAME.json
# and ONNX file exist in DIR (default data/models, filled by scripts/models.sh;
# when that does not exist, the BlazeFace templates in models/).
# --cheap runs cheap_224 instead (bench/infer/cheap_model.c, written to BUILD/bench-cheap): a
# [N,224,224,3] model that computes only a mean, so what it measures is the server's own cost
# per request (wire, copies, hand-offs), what a fast accelerator leaves over.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
build=${BUILD:-build}
ORT=${ONNXRUNTIME_ROOT:-/opt/visiond/deps/onnxruntime}
[ -f "$build/libvisiond.a" ] && [ -x "$build/visiond" ] || { echo "bench: build first (cmake --build $build)" >&2; exit 1; }
cc -O2 -std=gnu17 -D_GNU_SOURCE -Isrc -I"$ORT/include" bench/infer/bench_infer.c "$build/libvisiond.a" \
  $(pkg-config --libs jansson vips sqlite3 libmicrohttpd hiredis libcrypto gmodule-2.0) -L"$ORT/lib" -lonnxruntime \
  -Wl,-rpath,"$ORT/lib" -lpthread -lm -o "$build/bench_infer"
cc -O2 -std=gnu17 -D_GNU_SOURCE -Isrc bench/infer/cheap_model.c "$build/libvisiond.a" \
  $(pkg-config --libs jansson) -lm -o "$build/cheap_model"
models=data/models
args=()
names=()
while [ $# -gt 0 ]; do
  case $1 in
    --models) models=$2; shift 2 ;;
    --seconds|--threads|--batch|--clients|--server-arg|--settle|--pairs) args+=("$1" "$2"); shift 2 ;;
    --inprocess-only|--server-only) args+=("$1"); shift ;;
    --cheap) # the server's own cost per request: a model that computes next to nothing
      models=$build/bench-cheap; mkdir -p "$models"; "$build/cheap_model" "$models"
      names+=(cheap_224); shift ;;
    *) names+=("$1"); shift ;;
  esac
done
[ -d "$models" ] || models=models
if [ ${#names[@]} -eq 0 ]; then
  for n in faceres mobilenet_v2 blazeface_back mobilefacenet faceres-deep; do
    [ -f "$models/$n.json" ] && names+=("$n")
  done
fi
echo "bench: models dir $models: ${names[*]}"
exec "$build/bench_infer" --visiond "$build/visiond" --models "$models" "${args[@]}" "${names[@]}"
