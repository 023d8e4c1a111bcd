#!/usr/bin/env bash
# embed_model_task.sh (issue 18 items 6 and 7), with the shipped models and real photos:
# - the model's task decides what may embed (one rule, pipeline/embed.h vd_embed_check_model):
#   POST /embeddings with a face detector is 422 model_task_mismatch (nothing computed, nothing
#   cached), `visiond embed` and an embed job refuse it too (the job without retries);
#   "mode": "face" without a model embeds with faceres (1024-d), in the API, the CLI and a job;
# - half-decoded and corrupt JPEGs (cut to a third + an end marker, flipped scan bytes, a header
#   claiming 10000x10000 over 1920x1280 data) are per-image "corrupt JPEG" errors through
#   POST /embeddings, next to real photos and Fashion-MNIST PNGs that still embed.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pipeline.sh"
PY=/usr/bin/python3
DEMO=${VISIOND_PREFIX:-/opt/visiond}/deps/npm/@vladmandic+face-api@1.7.15/demo
[ -f "$DEMO/sample1.jpg" ] || skip "face-api demo photos not unpacked (scripts/setup.sh)"
pl_models
pl_dataset "$T/media/fm" 2 test bag sneaker
mkdir -p "$T/media/photos"
cp "$DEMO"/sample1.jpg "$DEMO"/sample2.jpg "$T/media/photos/"
ms_start
worker_start
api_start --data "$DATA" --media-root "$T/media"
one="$T/media/photos/sample1.jpg"
two="$T/media/photos/sample2.jpg"

# ---- a face detector is not an embedding model -----------------------------------------
items0=$(ms_items blazeface_front)
expect_error 422 model_task_mismatch POST /embeddings -H 'Content-Type: application/json' \
  --data-binary "{\"model\": \"blazeface_front\", \"paths\": [\"$one\"]}"
echo "POST /embeddings blazeface_front: $(jget error.message)"
expect_error 422 model_task_mismatch POST /embeddings -H 'Content-Type: application/json' \
  --data-binary "{\"model\": \"mobilenet_v2\", \"mode\": \"face\", \"paths\": [\"$one\"]}"
[ "$(ms_items blazeface_front)" = "$items0" ] || fail "blazeface_front ran for /embeddings"
rc=0
"$VISIOND" embed --data "$DATA" --model blazeface_front "$one" >"$T/cli.out" 2>"$T/cli.err" || rc=$?
[ "$rc" = 1 ] && grep -q "face_detection model" "$T/cli.err" && ! grep -q vector "$T/cli.out" ||
  fail "visiond embed --model blazeface_front: rc $rc, $(cat "$T/cli.err" "$T/cli.out")"
req POST /jobs -H 'Content-Type: application/json' --data-binary "{\"type\": \"embed\", \"payload\": {\"model\": \"blazeface_front\", \"paths\": [\"$one\"]}}"
[ "$STATUS" = 201 ] || fail "enqueue: $STATUS $BODY"
j1=$(jget id)
_job_over() { req GET "/jobs/$1"; [ "$(jget state)" = finished ] || [ "$(jget state)" = failed ]; }
wait_for 120 _job_over "$j1" || fail "embed job with blazeface_front: $BODY"
[ "$(jget state)/$(jget attempts)" = failed/1 ] || fail "embed job with blazeface_front: $BODY"
case "$(jget error)" in *face_detection*) ;; *) fail "embed job error: $BODY" ;; esac
[ "$(ms_items blazeface_front)" = "$items0" ] || fail "blazeface_front ran for an embed job"

# ---- "mode": "face" without a model: faceres -------------------------------------------
post_json /embeddings "{\"mode\": \"face\", \"paths\": [\"$one\"]}"
[ "$STATUS" = 200 ] && [ "$(jget model)/$(jget dim)" = faceres/1024 ] || fail "mode face: $STATUS $(printf '%s' "$BODY" | head -c 300)"
"$VISIOND" embed --data "$DATA" --face "$two" >"$T/face.out" || fail "visiond embed --face"
$PY -c 'import json,sys; v=json.load(open(sys.argv[1]))["vector"]; sys.exit(0 if len(v)==1024 else 1)' "$T/face.out" ||
  fail "visiond embed --face: $(head -c 300 "$T/face.out")"
req POST /jobs -H 'Content-Type: application/json' --data-binary "{\"type\": \"embed\", \"payload\": {\"mode\": \"face\", \"paths\": [\"$one\", \"$two\"]}}"
j2=$(jget id)
wait_for 300 _job_over "$j2" || fail "embed job mode face: $BODY"
[ "$(jget state)/$(jget result.model)/$(jget result.dim)/$(jget result.failed)" = finished/faceres/1024/0 ] ||
  fail "embed job mode face: $BODY"
echo "mode face without a model: faceres, 1024-d (API, CLI, job)"

# ---- corrupt JPEGs are refused, real photos and PNGs are not -----------------------------
$PY - "$one" "$T/media/photos" <<'PY'
import struct, sys
src = open(sys.argv[1], "rb").read()
d = sys.argv[2]
sos = src.find(b"\xff\xda")
open(d + "/cut.jpg", "wb").write(src[:len(src) // 3] + b"\xff\xd9")
b = bytearray(src)
for k in range(20):
    at = sos + 200 + k * (len(b) - sos - 300) // 20
    if b[at] != 0xFF and b[at] ^ 0x5A != 0xFF:
        b[at] ^= 0x5A
open(d + "/flipped.jpg", "wb").write(bytes(b))
b = bytearray(src)
sof = next(i for i in range(2, len(b) - 1) if b[i] == 0xFF and b[i + 1] in (0xC0, 0xC1, 0xC2))
b[sof + 5:sof + 9] = struct.pack(">HH", 10000, 10000)
open(d + "/big_header.jpg", "wb").write(bytes(b))
PY
pngs=$(find "$T/media/fm" -name '*.png' | sort | $PY -c 'import json,sys; print(",".join(json.dumps(l.strip()) for l in sys.stdin))')
post_json /embeddings "{\"paths\": [\"$T/media/photos/cut.jpg\", \"$T/media/photos/flipped.jpg\", \"$T/media/photos/big_header.jpg\", \"$one\", \"$two\", $pngs], \"vectors\": false}"
[ "$STATUS" = 200 ] || fail "corrupt JPEGs: $STATUS $BODY"
for k in 0 1 2; do
  [ "$(jget embeddings.$k.code)" = bad_image ] || fail "corrupt JPEG $k accepted: $(jget embeddings.$k)"
  case "$(jget embeddings.$k.error)" in "corrupt JPEG: "*) ;; *) fail "corrupt JPEG $k: $(jget embeddings.$k)" ;; esac
  echo "$(basename "$(jget embeddings.$k.path)"): $(jget embeddings.$k.error)"
done
[ "$(jget failed)" = 3 ] || fail "the real photos and PNGs must embed: $BODY"
api_stop
