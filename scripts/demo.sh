#!/usr/bin/env bash
# demo.sh: visiond's main job, end to end, on one machine (run scripts/setup.sh first).
#
#   1. builds visiond (build/) and the models it ships (scripts/models.sh)
#   2. writes labelled photos: Fashion-MNIST from Debian (20 per label, 10 labels) and
#      held-out test images; copies the face-api sample photos
#   3. starts `visiond up` (model server, workers, api) on the embedded SQLite store
#   4. POST /training/sessions on the photos, shows its progress, prints the metrics
#   5. predicts the held-out images, finds faces in the sample photos
#   6. stops everything cleanly
#
#   VISIOND_DEMO_DIR  where the demo's data go (default ./demo)
#   VISIOND           use this visiond binary instead of building build/visiond
#   DEMO_PER_LABEL    training examples per label (default 20)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
demo=$(mkdir -p "${VISIOND_DEMO_DIR:-./demo}" && cd "${VISIOND_DEMO_DIR:-./demo}" && pwd)
per_label=${DEMO_PER_LABEL:-20}
PY=/usr/bin/python3
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ -n "${VISIOND:-}" ]; then
  V=$VISIOND   # a visiond built elsewhere (the tests pass theirs)
else
  say "building visiond"
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j "$(nproc)" 2>&1 | grep -E 'error|warning' || true
  V=$here/build/visiond
fi

say "models (converted once, then reused)"
scripts/models.sh --visiond "$V" --out "$demo/data/models"

say "photos: Fashion-MNIST from Debian's dataset-fashion-mnist, face-api sample photos from npm"
photos=$demo/photos
if [ ! -d "$photos/train" ]; then
  "$V" dataset fashion-mnist --out "$photos/train" --per-label "$per_label" --split train
  "$V" dataset fashion-mnist --out "$photos/test" --per-label 2 --split test
fi
mkdir -p "$photos/faces"
cp -u "${VISIOND_PREFIX:-/opt/visiond}"/deps/npm/@vladmandic+face-api@1.7.15/demo/sample*.jpg "$photos/faces/"
echo "$(find "$photos/train" -type f | wc -l) training images in $(ls "$photos/train" | wc -l) labels," \
     "$(find "$photos/test" -type f | wc -l) held-out images, $(ls "$photos/faces" | wc -l) face photos"

port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
API=http://127.0.0.1:$port
say "visiond up (api on $API, log in $demo/up.log)"
"$V" up --data "$demo/data" --listen "127.0.0.1:$port" --media-root "$photos" \
  --workers 1 --concurrency 2 >"$demo/up.log" 2>&1 &
up=$!
stop_up() { kill -TERM "$up" 2>/dev/null && wait "$up" 2>/dev/null || true; }
trap stop_up EXIT
for _ in $(seq 1 100); do curl -sf "$API/healthz" >/dev/null && break; sleep 0.2; done
curl -sf "$API/healthz" >/dev/null || { tail -20 "$demo/up.log"; echo "demo: the api did not start"; exit 1; }

say "POST /training/sessions"
body=$($PY -c 'import json,sys; print(json.dumps({"name": "fashion", "kind": "image", "model": "mobilenet_v2", "folder": sys.argv[1]}))' "$photos/train")
echo "$body"
created=$(curl -sS -H 'Content-Type: application/json' -d "$body" "$API/training/sessions")
echo "$created"
sid=$(echo "$created" | $PY "$here/scripts/lib/demo_report.py" field id)

say "progress"
while :; do
  s=$(curl -sS "$API/training/sessions/$sid")
  read -r state done total < <(echo "$s" | $PY "$here/scripts/lib/demo_report.py" progress)
  width=40; filled=$(( total > 0 ? done * width / total : 0 ))
  line=$(printf '  %-9s [%-*s] %d/%d' "$state" "$width" "$(printf '%*s' "$filled" '' | tr ' ' '#')" "$done" "$total")
  if [ -t 1 ]; then printf '\r%s' "$line"; elif [ "$line" != "${last:-}" ]; then echo "$line"; fi
  last=$line
  case $state in succeeded|failed|canceled) echo; break;; esac
  sleep 0.5
done
[ "$state" = succeeded ] || { echo "$s"; echo "demo: the session ended $state"; exit 1; }

say "metrics (5-fold cross-validation)"
echo "$s" | $PY "$here/scripts/lib/demo_report.py" metrics

say "predictions on held-out images"
paths=$(find "$photos/test" -type f | sort | $PY -c 'import json,sys; print(json.dumps({"paths": [l.strip() for l in sys.stdin]}))')
curl -sS -H 'Content-Type: application/json' -d "$paths" "$API/training/sessions/$sid/predict" | $PY "$here/scripts/lib/demo_report.py" predictions

say "faces in the sample photos (POST /faces)"
for f in "$photos"/faces/*.jpg; do
  curl -sS -H 'Content-Type: application/json' -d "{\"path\": \"$f\"}" "$API/faces" | $PY "$here/scripts/lib/demo_report.py" faces "$(basename "$f")"
done

say "stopping visiond up"
stop_up
trap - EXIT
tail -3 "$demo/up.log"
echo
echo "demo: done. The data stay in $demo (visiond up --data $demo/data --media-root $photos to run again)."
