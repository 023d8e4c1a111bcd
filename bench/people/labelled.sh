#!/usr/bin/env bash
# bench/people/labelled.sh: people clustering (faces/cluster.h, bench_people.c) on REAL labelled
# photos: several different photos of each person, as a library holds them (docs/people.md).
#
# Data: bench/people/fetch_johns.sh (dlib's examples, from Debian's dlib source package):
#   DATA/johns/PERSON/*.jpg    5 people x 11 photos, 150x150 face chips; label = folder name
#   DATA/faces/bald_guys.jpg   a collage of 24 photos: Vin Diesel, The Rock, Jason Statham and
#                              Bruce Willis, 6 each; labels: bench/people/bald_guys.labels
#   DATA/faces/*.jpg (others)  photos of other people: every face found there is a distractor,
#                              an identity of its own that should stay unassigned
# plus, as more distractors, the face-api demo photos (22 people, once each), when installed.
#
# A chip is the face alone, so each is first set in a 300x300 canvas (its edge pixels
# repeated, `vips embed --extend copy`) so that the detector and the aligned crop see a face
# with surroundings, as in a photo (PAD=0 feeds the chips as they are). Of each chip the face
# with the highest detection score is taken (a tight chip also yields a few weak spurious boxes).
# For each embedder present it prints the similarity summary and the grid of bench_people for
# the labelled faces alone and with the distractors.
#
#   bench/people/labelled.sh [MAX_DISTANCE...]   (needs build/visiond, data/models)
#   DATA=DIR  EMBEDDERS="faceres mobilefacenet faceres-deep"  PAD=1  DISTRACTORS=1
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build=${BUILD:-$root/build}
VISIOND=$build/visiond
MODELS=${MODELS:-$root/data/models}
DATA=${DATA:-$root/data/people}
EMBEDDERS=${EMBEDDERS:-faceres mobilefacenet faceres-deep}
DEMO=${DEMO:-/opt/visiond/deps/npm/@vladmandic+face-api@1.7.15/demo}
PY=/usr/bin/python3
[ -x "$VISIOND" ] || { echo "bench: build first (cmake --build $build)" >&2; exit 1; }
[ -d "$DATA/johns" ] || { echo "bench: no $DATA/johns: run bench/people/fetch_johns.sh" >&2; exit 1; }
cc -O2 -std=gnu17 -D_GNU_SOURCE -Wall -Wextra -Werror -Isrc bench/people/bench_people.c \
  src/faces/cluster.c src/core/err.c -lm -o "$build/bench_people"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdlabelled.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export VISIOND_LOG_LEVEL=warn

# 1. The labelled photos, named PERSON.PHOTO.png (the label is the name up to the first '.').
mkdir -p "$tmp/img"
for f in "$DATA"/johns/*/*.jpg; do
  id=$(basename "$(dirname "$f")")
  out="$tmp/img/$id.$(basename "$f" .jpg).png"
  if [ "${PAD:-1}" = 1 ]; then
    vips embed "$f" "$out" 75 75 300 300 --extend copy
  else
    vips copy "$f" "$out"
  fi
done
distract=()
if [ "${DISTRACTORS:-1}" = 1 ]; then
  for f in "$DATA"/faces/*.jpg; do
    [ "$(basename "$f")" = bald_guys.jpg ] || distract+=("$f")
  done
  [ -d "$DEMO" ] && distract+=("$DEMO"/sample*.jpg)
fi
echo "bench/people/labelled: $(ls "$tmp"/img | wc -l) photos of $(ls "$DATA"/johns | wc -l)" \
  "people from $DATA/johns; ${#distract[@]} distractor photos; pad ${PAD:-1}"

for emb in $EMBEDDERS; do
  [ -f "$MODELS/$emb.onnx" ] || { echo "(no $emb in $MODELS: skipped)"; continue; }
  # 2. Embed: the best face of each labelled photo, every face of the distractor photos.
  "$VISIOND" faces --embed --embedder "$emb" --models "$MODELS" "$tmp"/img/* >"$tmp/emb.jsonl" || true
  $PY - "$tmp/emb.jsonl" >"$tmp/johns.txt" <<'PYEOF'
import json, sys
lost = 0
for line in open(sys.argv[1]):
    d = json.loads(line)
    faces = d.get("faces") or []
    if not faces:
        lost += 1
        continue
    f = max(faces, key=lambda f: f["score"])
    print(d["path"].rsplit("/", 1)[-1].split(".")[0], " ".join("%.6f" % v for v in f["vector"]))
print("labelled photos where no face was found: %d" % lost, file=sys.stderr)
PYEOF
  # The photos of DATA/faces: faces of bald_guys.jpg are labelled by bald_guys.labels (the
  # label whose centre lies within half a box of the face's centre); every other face is a
  # distractor of its own.
  more=("${distract[@]}")
  [ -f "$DATA/faces/bald_guys.jpg" ] && more=("$DATA/faces/bald_guys.jpg" "${more[@]}")
  : >"$tmp/demb.jsonl"
  [ ${#more[@]} -eq 0 ] ||
    "$VISIOND" faces --embed --embedder "$emb" --models "$MODELS" "${more[@]}" >"$tmp/demb.jsonl" || true
  $PY - "$tmp/demb.jsonl" bench/people/bald_guys.labels "$tmp/johns.txt" >"$tmp/distract.txt" <<'PYEOF'
import json, sys
marks = [l.split() for l in open(sys.argv[2]) if l.strip() and not l.startswith("#")]
found = 0
with open(sys.argv[3], "a") as labelled:
    for line in open(sys.argv[1]):
        d = json.loads(line)
        stem = d["path"].rsplit("/", 1)[-1].rsplit(".", 1)[0]
        for k, f in enumerate(d.get("faces") or []):
            vec = " ".join("%.6f" % v for v in f["vector"])
            x, y, w, h = f["box"]
            who = [m[0] for m in marks if stem == "bald_guys" and
                   abs(float(m[1]) - x - w / 2) < w / 2 and abs(float(m[2]) - y - h / 2) < h / 2]
            if who:
                found += 1
                labelled.write("bald-%s %s\n" % (who[0], vec))
            else:
                print("x-%s-%d" % (stem, k), vec)
if found:
    print("bald_guys.jpg: %d of %d labelled faces found" % (found, len(marks)), file=sys.stderr)
PYEOF
  # 3. Cluster.
  echo
  echo "=== $emb: the labelled faces alone"
  "$build/bench_people" "$tmp/johns.txt" "$@"
  if [ -s "$tmp/distract.txt" ]; then
    echo
    echo "=== $emb: the labelled faces with $(wc -l <"$tmp/distract.txt") distractor faces"
    cat "$tmp/johns.txt" "$tmp/distract.txt" >"$tmp/all.txt"
    "$build/bench_people" "$tmp/all.txt" "$@"
  fi
done
