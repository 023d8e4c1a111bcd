#!/usr/bin/env bash
# bench/faces/run.sh: the face embedders side by side (faceres, faceres-deep,
# mobilefacenet) on the labelled face data this machine has, and their speed.
#
# No package reachable here (Debian, npm) ships a set with several photos per
# identity, so this is the substitute, and says so: the faces BlazeFace finds in
# face-api's six sample photos, each cut out with a margin, and six altered copies
# of each cut-out (mirror, 12 degree rotation, half size, darker + lower contrast,
# JPEG quality 20, Gaussian blur 1.5). Same identity = a face and its copies;
# different identity = any two different faces. It measures invariance of a
# face's vector under those changes against its distance to other people, not
# recognition of one person across different photos.
#
#   bench/faces/run.sh [VISIOND_BINARY]     (default: build/visiond)
#   BENCH_MODELS=DIR   converted models (default: data/models; scripts/models.sh)
#   BENCH_EMBEDDERS="faceres faceres-deep mobilefacenet mobilefacenet@0.0039..."
#                      NAME@SCALE: NAME with its metadata's input scale replaced (the
#                      last default: mobilefacenet fed 0..1, as Human's code feeds it)
#   BENCH_BATCH=N      batch for the speed column (default 16), one ORT thread
# Prints a markdown table (docs/faces.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VISIOND=${1:-$root/build/visiond}
MODELS=${BENCH_MODELS:-$root/data/models}
EMBEDDERS=${BENCH_EMBEDDERS:-faceres faceres-deep mobilefacenet mobilefacenet@0.00392156862745098}
B=${BENCH_BATCH:-16}
PHOTOS=${VISIOND_PREFIX:-/opt/visiond}/deps/npm/@vladmandic+face-api@1.7.15/demo
[ -x "$VISIOND" ] || { echo "bench: no visiond binary at $VISIOND (build first)" >&2; exit 1; }
for m in $EMBEDDERS; do
  m=${m%@*}
  [ -f "$MODELS/$m.onnx" ] || { echo "bench: $MODELS/$m.onnx missing (scripts/models.sh)" >&2; exit 1; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdfaces.XXXXXX")
[ -n "${BENCH_KEEP:-}" ] && echo "bench: keeping $tmp" >&2 || trap 'rm -rf "$tmp"' EXIT

# 1. the faces of the sample photos, cut out with a margin, and their altered copies
"$VISIOND" faces --models "$MODELS" "$PHOTOS"/sample[1-6].jpg >"$tmp/detect.jsonl"
/usr/bin/python3 "$here/make_set.py" "$tmp/detect.jsonl" "$tmp/set" >"$tmp/set.json"

# 2. embeddings, per model, every image of the set (NAME@SCALE: a models directory of
# its own, with links to the detector and NAME's graph and a metadata file with that scale)
for m in $EMBEDDERS; do
  dir=$MODELS
  if [ "$m" != "${m%@*}" ]; then
    dir=$tmp/models-$m
    mkdir -p "$dir"
    ln -s "$MODELS"/blazeface_back.* "$MODELS/${m%@*}.onnx" "$dir/"
    /usr/bin/python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); m["input"]["scale"]=float(sys.argv[2]); json.dump(m,open(sys.argv[3],"w"))' \
      "$MODELS/${m%@*}.json" "${m#*@}" "$dir/${m%@*}.json"
  fi
  "$VISIOND" faces --embed --embedder "${m%@*}" --models "$dir" --threads 1 "$tmp"/set/*.png \
    >"$tmp/emb-$m.jsonl"
done

# 3. speed: CPU ms per face crop in ONNX Runtime, one thread, batch B (bench/convert/ort_time.c):
# the user CPU time of 6 timed runs minus that of 1 (so loading and the warm-up cancel out),
# which a loaded machine disturbs less than wall time
ORT_ROOT=${ONNXRUNTIME_ROOT:-${VISIOND_PREFIX:-/opt/visiond}/deps/onnxruntime}
cc -O2 -std=gnu17 -I"$root/src" -I"$ORT_ROOT/include" "$root/bench/convert/ort_time.c" \
  "$(dirname "$VISIOND")/libvisiond.a" -L"$ORT_ROOT/lib" -lonnxruntime \
  -Wl,-rpath,"$ORT_ROOT/lib" $(pkg-config --libs jansson libcrypto) -lpthread -lm -o "$tmp/ort_time"
: >"$tmp/speed.txt"
for m in $(printf '%s\n' $EMBEDDERS | sed 's/@.*//' | sort -u); do
  s=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["input"]["height"])' \
    "$MODELS/$m.json")
  head -c $((B * s * s * 3 * 4)) /dev/zero >"$tmp/in.f32"
  cpu() { /usr/bin/time -f %U "$tmp/ort_time" "$MODELS/$m.onnx" "$tmp/in.f32" "$B,$s,$s,3" "$1" 1 \
    2>&1 >/dev/null | tail -1; }
  t1=$(cpu 1) t6=$(cpu 6)
  echo "$m $(/usr/bin/python3 -c "print(($t6 - $t1) * 1000 / 5)")" >>"$tmp/speed.txt"
done

# 4. the table
/usr/bin/python3 "$here/score.py" "$tmp/set.json" "$tmp/speed.txt" "$B" \
  $(for m in $EMBEDDERS; do echo "$m=$tmp/emb-$m.jsonl"; done)
