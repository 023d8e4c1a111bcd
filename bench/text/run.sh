#!/usr/bin/env bash
# run.sh: text embeddings per second through the model server vs in-process ONNX Runtime
# (bench/text/bench_text.c) on a CLIP text tower in an Immich-layout folder.
#   bench/text/run.sh [--models DIR --model NAME.textual] [--seconds S] [--clients N]...
# Without --models: builds one with tests/oracle/clip_torch.py (random weights), with the
# text tower of OpenAI's ViT-B/32 in size (width 512, 12 layers, 8 heads, context 77; a
# small vocabulary), in build/bench_text_models.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
build=${BUILD:-build}
ORT=${ONNXRUNTIME_ROOT:-/opt/visiond/deps/onnxruntime}
[ -f "$build/libvisiond.a" ] && [ -x "$build/visiond" ] || { echo "bench: build first (cmake --build $build)" >&2; exit 1; }
cc -O2 -std=gnu17 -D_GNU_SOURCE -Isrc -I"$ORT/include" bench/text/bench_text.c "$build/libvisiond.a" \
  $(pkg-config --libs jansson vips sqlite3 libmicrohttpd hiredis libutf8proc libpq libcrypto gmodule-2.0) -L"$ORT/lib" -lonnxruntime \
  -Wl,-rpath,"$ORT/lib" -lpthread -lm -o "$build/bench_text"
args=("$@")
case " $* " in
  *" --models "*) ;;
  *)
    out="$build/bench_text_models"
    if [ ! -f "$out/clipb32/textual/model.onnx" ]; then
      mkdir -p "$out"
      CLIP_TORCH_TEXT=b32 /usr/bin/python3 tests/oracle/clip_torch.py build "$out" clipb32 >/dev/null 2>&1
      rm -rf "$out/images" "$out/ref.json"
    fi
    args+=(--models "$out" --model clipb32.textual) ;;
esac
exec "$build/bench_text" --visiond "$build/visiond" "${args[@]}"
