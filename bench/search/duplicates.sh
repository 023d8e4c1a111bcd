#!/usr/bin/env bash
# duplicates.sh: calibrates the default max_distance of GET /duplicates (docs/search.md).
#
# Builds transformed copies of real photos with libvips (resize 50%, JPEG q=60, crop 5% and
# 10% a side, and the harder horizontal flip and 3-degree rotation), adds Fashion-MNIST
# images as many distinct non-duplicates (look-alikes of one class: the hard negatives),
# embeds everything with the shipped mobilenet_v2 through a real model server and
# `visiond embed`, then duplicates.py groups them as GET /duplicates does (pairs among the
# 64 nearest within the distance, connected components) at several thresholds and prints
# recall per transform and pair precision as a Markdown table.
#
#   bench/search/duplicates.sh [--visiond BIN] [--models DIR] [--fm N] [--keep DIR]
# --fm N: Fashion-MNIST images per label (default 100, 10 labels).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VISIOND=$root/build/visiond
MODELS=$root/data/models
FM=100
KEEP=
while [ $# -gt 0 ]; do
  case $1 in
    --visiond) VISIOND=$2; shift 2 ;;
    --models) MODELS=$2; shift 2 ;;
    --fm) FM=$2; shift 2 ;;
    --keep) KEEP=$2; shift 2 ;;
    *) echo "usage: $0 [--visiond BIN] [--models DIR] [--fm N] [--keep DIR]" >&2; exit 2 ;;
  esac
done
PY=/usr/bin/python3
W=${KEEP:-$(mktemp -d)}
mkdir -p "$W/orig" "$W/copies" "$W/data"
ms=
cleanup() { [ -n "$ms" ] && kill "$ms" 2>/dev/null; [ -n "$KEEP" ] || rm -rf "$W"; }
trap cleanup EXIT

npm=${VISIOND_PREFIX:-/opt/visiond}/deps/npm
faces=$npm/@vladmandic+face-api@1.7.15/demo
human=$npm/@vladmandic+human@3.3.6/assets

# ---- originals: distinct photos ----
n=0
add() { n=$((n + 1)); vips copy "$1" "$W/orig/o$(printf %03d $n).png"; }
for f in "$faces"/sample[1-6].jpg; do
  add "$f"
  # its four quadrants: other photos of the same scene (hard negatives for each other)
  w=$(vipsheader -f width "$f"); h=$(vipsheader -f height "$f")
  for q in "0 0" "1 0" "0 1" "1 1"; do
    set -- $q
    vips crop "$f" "$W/q.png" $(($1 * w / 2)) $(($2 * h / 2)) $((w / 2)) $((h / 2))
    add "$W/q.png"
  done
done
for f in /usr/lib/python3/dist-packages/sklearn/datasets/images/china.jpg \
         /usr/lib/python3/dist-packages/sklearn/datasets/images/flower.jpg \
         "$human"/screenshot-faceid.jpg "$human"/screenshot-facedetect.jpg \
         "$human"/screenshot-facematch.jpg "$human"/screenshot-vrm.jpg; do
  [ -f "$f" ] && add "$f"
done
if [ -f "$human/samples.jpg" ]; then # a strip of 8 photos above one large photo
  vips crop "$human/samples.jpg" "$W/q.png" 0 200 1280 958 && add "$W/q.png"
  for x in "0 156" "164 152" "324 212" "544 88" "640 148" "796 108" "912 208" "1128 152"; do
    set -- $x
    vips crop "$human/samples.jpg" "$W/q.png" "$1" 0 "$2" 156 && add "$W/q.png"
  done
fi
$PY - "$W" <<'PYEOF' && for f in "$W"/scipy_*.ppm; do add "$f"; done
import sys
from scipy import misc
w = sys.argv[1]
def ppm(path, a):
    import numpy as np
    a = np.asarray(a, dtype=np.uint8)
    if a.ndim == 2: a = np.stack([a] * 3, axis=-1)
    with open(path, "wb") as f:
        f.write(b"P6 %d %d 255\n" % (a.shape[1], a.shape[0])); f.write(a.tobytes())
ppm(w + "/scipy_face.ppm", misc.face())
ppm(w + "/scipy_ascent.ppm", misc.ascent().clip(0, 255))
PYEOF
echo "originals: $n" >&2

# ---- transformed copies: libvips ----
for o in "$W"/orig/*.png; do
  b=$(basename "$o" .png)
  w=$(vipsheader -f width "$o"); h=$(vipsheader -f height "$o")
  vips resize "$o" "$W/copies/$b.half.png" 0.5
  vips copy "$o" "$W/copies/$b.q60.jpg[Q=60]"
  vips crop "$o" "$W/copies/$b.crop5.png" $((w / 20)) $((h / 20)) $((w - w / 10)) $((h - h / 10))
  vips crop "$o" "$W/copies/$b.crop10.png" $((w / 10)) $((h / 10)) $((w - w / 5)) $((h - h / 5))
  vips flip "$o" "$W/copies/$b.flip.png" horizontal
  vips rotate "$o" "$W/r.png" 3
  rw=$(vipsheader -f width "$W/r.png"); rh=$(vipsheader -f height "$W/r.png")
  vips crop "$W/r.png" "$W/copies/$b.rot3.png" $((rw / 12)) $((rh / 12)) $((rw - rw / 6)) $((rh - rh / 6))
done

# ---- distinct non-duplicates: Fashion-MNIST ----
"$VISIOND" dataset fashion-mnist --out "$W/fm" --per-label "$FM" >/dev/null

# ---- embed ----
"$VISIOND" model-server --data "$W/data" --models "$MODELS" --threads 2 >"$W/ms.out" 2>"$W/ms.log" &
ms=$!
for _ in $(seq 600); do grep -q '"ready"' "$W/ms.out" && break; sleep 0.2; done
find "$W/orig" "$W/copies" "$W/fm" -type f | sort >"$W/files"
xargs -a "$W/files" "$VISIOND" embed --data "$W/data" --model mobilenet_v2 >"$W/vectors.jsonl"
$PY "$here/duplicates.py" "$W/vectors.jsonl"
