#!/usr/bin/env bash
# bench/people/run.sh: how well faces/cluster.h groups faceres vectors into people, for a grid
# of max_distance x min_faces, full re-cluster and incremental (bench_people.c, the real core).
#
# THE DATA IS A SUBSTITUTE, read docs/people.md; the calibration on real labelled photos (several
# photos of each of 9 people, from Debian's dlib source) is bench/people/labelled.sh. Here each
# face of the face-api sample photos (22 people, one photo each) is cut out and copied under
# transformations (mirror, rotation, downscale, JPEG, light, blur, shifted crop). Copies of one
# face are one "identity": the numbers measure invariance to those transformations and the
# separation of 22 different people, NOT the spread of one person over years, poses and cameras,
# which is larger.
#
#   bench/people/run.sh [MAX_DISTANCE...]     (needs build/ and data/models with faceres)
#   SAMPLES=DIR   photos to cut faces from (default: @vladmandic/face-api's demo photos)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build=${BUILD:-$root/build}
VISIOND=$build/visiond
MODELS=${MODELS:-$root/data/models}
SAMPLES=${SAMPLES:-/opt/visiond/deps/npm/@vladmandic+face-api@1.7.15/demo}
PY=/usr/bin/python3
[ -x "$VISIOND" ] || { echo "bench: build first (cmake --build $build)" >&2; exit 1; }
[ -f "$MODELS/faceres.onnx" ] || { echo "bench: no faceres in $MODELS (scripts/models.sh)" >&2; exit 1; }
cc -O2 -std=gnu17 -D_GNU_SOURCE -Wall -Wextra -Werror -Isrc bench/people/bench_people.c \
  src/faces/cluster.c src/core/err.c -lm -o "$build/bench_people"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdpeople.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export VISIOND_LOG_LEVEL=warn

# 1. Faces of the sample photos, each cut out as a square 2.2 times its box.
"$VISIOND" faces --models "$MODELS" "$SAMPLES"/sample*.jpg >"$tmp/det.jsonl"
$PY - "$tmp/det.jsonl" "$tmp" >"$tmp/crops.txt" <<'PYEOF'
import json, sys
out = sys.argv[2]
for line in open(sys.argv[1]):
    d = json.loads(line)
    stem = d["path"].rsplit("/", 1)[-1].rsplit(".", 1)[0]
    for k, f in enumerate(d.get("faces", [])):
        x, y, w, h = f["box"]
        side = 2.2 * max(w, h)
        x0 = max(0, int(x + w / 2 - side / 2)); y0 = max(0, int(y + h / 2 - side / 2))
        x1 = min(d["width"], int(x + w / 2 + side / 2)); y1 = min(d["height"], int(y + h / 2 + side / 2))
        print(d["path"], "%s_%d" % (stem, k), x0, y0, x1 - x0, y1 - y0)
PYEOF
echo "bench/people: $(wc -l <"$tmp/crops.txt") faces cut from $(ls "$SAMPLES"/sample*.jpg | wc -l) photos in $SAMPLES"

# 2. Transformed copies of every face (vips): each copy's label is the face it came from.
mkdir -p "$tmp/img"
while read -r src id x y w h; do
  b="$tmp/img/$id"
  vips extract_area "$src" "$b.orig.png" "$x" "$y" "$w" "$h"
  vips flip "$b.orig.png" "$b.mirror.png" horizontal
  vips rotate "$b.orig.png" "$b.rot12.png" 12
  vips rotate "$b.orig.png" "$b.rot-12.png" 348
  vips resize "$b.orig.png" "$b.small.png" 0.35
  vips jpegsave "$b.orig.png" "$b.q15.jpg" --Q 15
  vips linear "$b.orig.png" "$b.dark.png" 0.55 0
  vips linear "$b.orig.png" "$b.bright.png" 1.3 20
  vips gaussblur "$b.orig.png" "$b.blur.png" 2
  vips extract_area "$b.orig.png" "$b.shift.png" $((w / 10)) $((h / 12)) $((w * 85 / 100)) $((h * 85 / 100))
done <"$tmp/crops.txt"

# 3. Embed every copy; keep the face nearest the centre of each (the one it was cut around).
"$VISIOND" faces --embed --models "$MODELS" "$tmp"/img/* >"$tmp/emb.jsonl" || true
$PY - "$tmp/emb.jsonl" >"$tmp/vectors.txt" <<'PYEOF'
import json, sys
lost = 0
for line in open(sys.argv[1]):
    d = json.loads(line)
    faces = d.get("faces") or []
    if not faces:
        lost += 1
        continue
    cx, cy = d["width"] / 2, d["height"] / 2
    f = min(faces, key=lambda f: (f["box"][0] + f["box"][2] / 2 - cx) ** 2 + (f["box"][1] + f["box"][3] / 2 - cy) ** 2)
    label = d["path"].rsplit("/", 1)[-1].split(".")[0]
    print(label, " ".join("%.6f" % v for v in f["vector"]))
print("copies where no face was found: %d" % lost, file=sys.stderr)
PYEOF

# 4. Cluster them.
"$build/bench_people" "$tmp/vectors.txt" "$@"
