#!/usr/bin/env bash
# bench/index/ab.sh REPS FACE_MODEL BIN...: A/B of `visiond index` (the library's index job) on
# photo-sized JPEGs: face-api's six demo photos scaled to ~4000 px wide, six copies each (1-6 %
# larger, so 36 different files, ~52 MB). For each rep, each binary in turn gets a fresh data
# directory, its own model server (mobilenet_v2 preloaded; with a face model, it and
# blazeface_back too) and worker, and indexes the folder; prints the wall time of the
# `visiond index` command (registration, the job, the wait) and the index job's counts, then the
# median per binary and each binary's median against the first's.
#   FACE_MODEL "" indexes without faces (`--library-face-model ""`), e.g. faceres with them.
# Needs the converted models (scripts/models.sh) and the demo photos (scripts/setup.sh). Give
# each build its own binary path (copy build/visiond away before rebuilding).
set -euo pipefail
REPS=$1; FM=$2; shift 2
root=$(cd "$(dirname "$0")/../.." && pwd)
DEMO=${VISIOND_PREFIX:-/opt/visiond}/deps/npm/@vladmandic+face-api@1.7.15/demo
[ -f "$DEMO/sample1.jpg" ] || { echo "bench: face-api demo photos missing (scripts/setup.sh)" >&2; exit 1; }
for m in mobilenet_v2 faceres blazeface_back; do
  [ -f "$root/data/models/$m.onnx" ] || { echo "bench: $m not converted (scripts/models.sh)" >&2; exit 1; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/indexab.XXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/photos"
for s in 1 2 3 4 5 6; do
  w=$(vipsheader -f width "$DEMO/sample$s.jpg")
  for k in 1 2 3 4 5 6; do
    vips resize "$DEMO/sample$s.jpg" "$tmp/t.v" "$(awk -v w="$w" -v k="$k" 'BEGIN{print 4000/w*(1+k/100)}')"
    vips copy "$tmp/t.v" "$tmp/photos/s${s}_$k.jpg[Q=90]"
  done
done
rm -f "$tmp/t.v"
echo "bench/index: 36 photos ($(du -sh "$tmp/photos" | cut -f1)), $(vipsheader "$tmp/photos/s1_1.jpg" | cut -d' ' -f2) ...;" \
  "faces: ${FM:-none}; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
one() { # BIN: prints the wall seconds of one index run on a fresh data directory
  local bin=$1 d ms w t0 t1
  d=$(mktemp -d "$tmp/data.XXXX")
  mkdir -p "$d/models"
  cp "$root"/data/models/{mobilenet_v2,faceres,blazeface_back}.{json,onnx} "$d/models/"
  "$bin" model-server --data "$d" --models "$d/models" --threads 2 \
    --preload "mobilenet_v2${FM:+,$FM,blazeface_back}" >"$d/ms.out" 2>"$d/ms.log" &
  ms=$!
  for _ in $(seq 600); do grep -q '"ready"' "$d/ms.out" && break; sleep 0.1; done
  "$bin" worker --data "$d" --media-root "$tmp/photos" >"$d/w.log" 2>&1 &
  w=$!
  t0=$(date +%s.%N)
  "$bin" index --data "$d" --media-root "$tmp/photos" --library-face-model "$FM" "$tmp/photos" \
    >"$d/idx.json" 2>/dev/null || { echo "bench: $bin index failed" >&2; tail "$d/w.log" >&2; kill "$w" "$ms"; exit 1; }
  t1=$(date +%s.%N)
  kill "$w" "$ms"
  wait "$w" "$ms" 2>/dev/null || true
  /usr/bin/python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["index"]
print("%.3f %d %d %d" % (float(sys.argv[3]) - float(sys.argv[2]), s["indexed"], s["failed"], s["faces"]))
' "$d/idx.json" "$t0" "$t1"
  rm -rf "$d"
}
for _ in $(seq "$REPS"); do
  for bin in "$@"; do
    read -r secs indexed failed faces < <(one "$bin")
    printf '%-32s wall %6.2f s  %5.1f photos/s  indexed %d, failed %d, faces %d\n' "$bin" "$secs" \
      "$(awk -v s="$secs" 'BEGIN{print 36/s}')" "$indexed" "$failed" "$faces"
    echo "$bin $secs" >>"$tmp/times"
  done
done
/usr/bin/python3 "$root/bench/lib/ab_medians.py" "$tmp/times" "$@"
