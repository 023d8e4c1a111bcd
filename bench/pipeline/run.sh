#!/usr/bin/env bash
# run.sh: builds bench/pipeline/bench_embed.c against build/libvisiond.a and runs it.
#   bench/pipeline/run.sh [N_IMAGES] [MODEL] [ORT_THREADS]
# Needs the converted models in data/models (scripts/models.sh) or $MODELS.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
build=${BUILD:-build}
ORT=${ONNXRUNTIME_ROOT:-/opt/visiond/deps/onnxruntime}
[ -f "$build/libvisiond.a" ] || { echo "bench: build first (cmake --build $build)" >&2; exit 1; }
cc -O2 -std=gnu17 -D_GNU_SOURCE -Isrc -I"$ORT/include" $(pkg-config --cflags vips) \
  bench/pipeline/bench_embed.c "$build/libvisiond.a" \
  $(pkg-config --libs jansson vips sqlite3 libmicrohttpd hiredis libpq libcrypto gmodule-2.0) -L"$ORT/lib" -lonnxruntime \
  -Wl,-rpath,"$ORT/lib" -lpthread -lm -o "$build/bench_embed"
exec "$build/bench_embed" "$@"
