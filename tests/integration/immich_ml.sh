#!/usr/bin/env bash
# immich_ml.sh: Immich's machine-learning interface (GET /ping, POST /predict) driven by a
# client written from Immich's server's request shapes (tests/lib/immich_client.py: the
# multipart body as Node's fetch builds it, no token), on the shipped models mapped to
# Immich's names (docs/immich.md): BlazeFace + faceres as "buffalo_l", mobilenet_v2 as the
# CLIP visual model "ViT-B-16__openai" (aliases), and the torch-built CLIP model of
# tests/oracle/clip_torch.py (random weights, Immich's export layout) as the folder
# "ViT-B-32__openai" (its own name; skipped without python3-torch).
#   - /ping answers "pong"; with --immich-ml both routes need no token while the rest does;
#     without it they need the token like every route;
#   - facial-recognition on a real photo: Immich's answer shape, the same faces and vectors
#     as `visiond faces --embed` in-process (boxes within a pixel, cosine > 0.999);
#   - clip visual: the same vector as POST /embeddings with mobilenet_v2; with the torch-built
#     CLIP folder, torch's image and text vectors (1e-4);
#   - bad input: Immich's status codes and {"detail"} shapes.
# Every answer is checked against api/openapi.json.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
command -v jq >/dev/null || skip "jq not installed"
DEMO=/opt/visiond/deps/npm/@vladmandic+face-api@1.7.15/demo
[ -f "$DEMO/sample1.jpg" ] || skip "face-api demo photos not unpacked (scripts/setup.sh)"
for m in faceres mobilenet_v2 blazeface_back; do
  [ -f "$VISIOND_SOURCE_DIR/data/models/$m.onnx" ] || skip "shipped models not built (scripts/models.sh)"
done
PY=/usr/bin/python3
CLIENT="$VISIOND_SOURCE_DIR/tests/lib/immich_client.py"
export VD_OPENAPI_DIR="$T/openapi" # the client records its responses for the OpenAPI check
mkdir -p "$T/data/models"
for m in faceres mobilenet_v2 blazeface_back; do
  cp "$VISIOND_SOURCE_DIR/data/models/$m.json" "$VISIOND_SOURCE_DIR/data/models/$m.onnx" "$T/data/models/"
done
CLIP=0
if $PY -c 'import torch, onnx' 2>/dev/null; then
  $PY "$VISIOND_SOURCE_DIR/tests/oracle/clip_torch.py" build "$T/gen" tinyclip > "$T/torch.log" 2>&1 ||
    { cat "$T/torch.log" >&2; fail "clip_torch.py failed"; }
  cp -r "$T/gen/tinyclip" "$T/data/models/ViT-B-32__openai"
  CLIP=1
else
  echo "python3-torch missing: no torch-built CLIP model (the mobilenet_v2 alias only)"
fi
"$VISIOND" model-server --data "$T/data" --threads 1 > "$T/server.out" 2> "$T/server.err" &
track $!
wait_for 30 test -s "$T/server.out" || { cat "$T/server.err" >&2; fail "model server did not start"; }
SOCK="unix:$T/data/model.sock"

# Without --immich-ml: behind the token like the rest.
api_start --data "$T/data" --model-server "$SOCK" --token s3cret
req GET /ping
[ "$STATUS" = 401 ] || fail "GET /ping without --immich-ml and no token: $STATUS"
req GET /ping -H "Authorization: Bearer s3cret"
[ "$STATUS" = 200 ] && [ "$BODY" = pong ] || fail "GET /ping with the token: $STATUS $BODY"
api_stop

api_start --data "$T/data" --model-server "$SOCK" --token s3cret --immich-ml \
  --immich-model buffalo_l:detection=blazeface_back,buffalo_l:recognition=faceres \
  --immich-model ViT-B-16__openai:visual=mobilenet_v2
[ "$($PY "$CLIENT" "$API" ping)" = pong ] || fail "GET /ping with --immich-ml, no token"
req GET /jobs
[ "$STATUS" = 401 ] || fail "--immich-ml must not open the other routes: GET /jobs $STATUS"

# Facial recognition, as Immich's server asks for it (its default minScore is 0.7; 0.5 here
# to compare with visiond faces's default).
$PY "$CLIENT" "$API" predict-faces immich-app/buffalo_l 0.5 "$DEMO/sample1.jpg" > "$T/faces.json" ||
  fail "predict facial-recognition: $(cat "$T/faces.json")"
VISIOND_MODELS="$T/data/models" "$VISIOND" faces --embed "$DEMO/sample1.jpg" > "$T/local.json"
$PY - "$T" <<'PY' || fail "facial-recognition differs from visiond faces"
import json, sys
import numpy as np
T = sys.argv[1]
pr, lo = json.load(open(f"{T}/faces.json")), json.load(open(f"{T}/local.json"))
faces = pr["facial-recognition"]
assert (pr["imageWidth"], pr["imageHeight"]) == (lo["width"], lo["height"]), pr.keys()
assert len(faces) == len(lo["faces"]) >= 3, (len(faces), len(lo["faces"]))
worst_box, worst_cos = 0, 1
for f, l in zip(faces, lo["faces"]):
    b = f["boundingBox"]
    x, y, w, h = l["box"]
    want = np.array([x, y, x + w, y + h]) - 0.5
    worst_box = max(worst_box, np.abs(np.array([b["x1"], b["y1"], b["x2"], b["y2"]]) - want).max())
    v = np.array(json.loads(f["embedding"]))
    worst_cos = min(worst_cos, float(v @ np.array(l["vector"])))
    assert abs(np.linalg.norm(v) - 1) < 1e-5 and abs(f["score"] - l["score"]) < 1e-4
print(f"facial-recognition: {len(faces)} faces, boxes within {worst_box:.2f} px of visiond faces, "
      f"min cosine {worst_cos:.6f}, {len(json.loads(faces[0]['embedding']))}-d")
assert worst_box <= 0.5 + 1e-3 and worst_cos > 0.999
PY

# CLIP visual: the mapped model's vector, as POST /embeddings gives it.
$PY "$CLIENT" "$API" predict-clip ViT-B-16__openai "$DEMO/sample2.jpg" > "$T/clip.json" ||
  fail "predict clip visual: $(cat "$T/clip.json")"
req POST /embeddings -H "Authorization: Bearer s3cret" -F model=mobilenet_v2 -F "f=@$DEMO/sample2.jpg"
[ "$STATUS" = 200 ] || fail "POST /embeddings: $STATUS $BODY"
printf '%s' "$BODY" > "$T/emb.json"
$PY - "$T" <<'PY' || fail "clip visual differs from /embeddings"
import json, sys
import numpy as np
T = sys.argv[1]
c, e = json.load(open(f"{T}/clip.json")), json.load(open(f"{T}/emb.json"))
v, w = np.array(json.loads(c["clip"])), np.array(e["embeddings"][0]["vector"])
d = np.abs(v - w).max()
print(f"clip visual: {len(v)}-d, max abs diff vs POST /embeddings {d:.2e}, image {c['imageWidth']}x{c['imageHeight']}")
assert d < 1e-5 and set(c) == {"clip", "imageHeight", "imageWidth"}
PY

bad() { # WANT_STATUS WANT_DETAIL_SUBSTRING ENTRIES [FIELD=VALUE...]
  local want=$1 what=$2 out; shift 2
  out=$($PY "$CLIENT" "$API" raw "$@")
  [ "${out%% *}" = "$want" ] || fail "$*: got $out, want $want"
  grep -q -- "$what" <<<"$out" || fail "$*: got $out, want detail '$what'"
  echo "  $want ${out#* }"
}
# The torch-built CLIP folder under Immich's own name: image and text vectors equal torch's.
if [ "$CLIP" = 1 ]; then
  $PY "$CLIENT" "$API" predict-clip immich-app/ViT-B-32__openai "$T/gen/images/img2_64.png" > "$T/tclip.json" ||
    fail "predict clip visual (torch-built): $(cat "$T/tclip.json")"
  $PY "$CLIENT" "$API" predict-text ViT-B-32__openai "A PHOTO OF THE BEACH at night!" > "$T/ttext.json" ||
    fail "predict clip textual: $(cat "$T/ttext.json")"
  $PY - "$T" <<'PY' || fail "torch-built CLIP through /predict differs from torch"
import json, sys
import numpy as np
T = sys.argv[1]
ref = json.load(open(f"{T}/gen/ref.json"))
img, txt = json.load(open(f"{T}/tclip.json")), json.load(open(f"{T}/ttext.json"))
vi = np.array(json.loads(img["clip"]))
vt = np.array(json.loads(txt["clip"]))
di = np.abs(vi - np.array(ref["images"]["img2_64.png"])).max()
dt = np.abs(vt - np.array(ref["texts"]["A PHOTO OF THE BEACH at night!"])).max()
print(f"torch-built CLIP via /predict: visual {len(vi)}-d max abs diff {di:.2e}, textual max abs diff {dt:.2e}")
assert di < 1e-4 and dt < 1e-4
assert set(txt) == {"clip"} and (img["imageWidth"], img["imageHeight"]) == (64, 64)
PY
  bad 400 "take a text, not an image" '{"clip":{"textual":{"modelName":"ViT-B-32__openai","options":{}}}}' "image=$DEMO/sample1.jpg"
fi

# Bad input, answered as Immich's service answers.
FACES='{"facial-recognition":{"detection":{"modelName":"buffalo_l","options":{"minScore":0.7}},"recognition":{"modelName":"buffalo_l"}}}'
bad 400 "Either image or text must be provided" "$FACES"
bad 422 "Unknown model combination: ocr, detection" '{"ocr":{"detection":{"modelName":"PP-OCRv5_mobile"}}}' "image=$DEMO/sample1.jpg"
bad 422 "Unknown model 'antelopev2' for detection" '{"facial-recognition":{"detection":{"modelName":"antelopev2"},"recognition":{"modelName":"antelopev2"}}}' "image=$DEMO/sample1.jpg"
bad 422 "Invalid request format" '{"clip":' "image=$DEMO/sample1.jpg"
bad 422 "Invalid request format" '{"clip":{"visual":{"name":"ViT-B-16__openai"}}}' "image=$DEMO/sample1.jpg"
bad 400 "depends on output of detection" '{"facial-recognition":{"recognition":{"modelName":"buffalo_l"}}}' "image=$DEMO/sample1.jpg"
bad 422 "Unknown model 'ViT-B-16__openai' for textual" '{"clip":{"textual":{"modelName":"ViT-B-16__openai","options":{}}}}' "text=a photo of a dog"
bad 400 "take an image, not a text" '{"clip":{"visual":{"modelName":"ViT-B-16__openai"}}}' "text=a dog"
head -c 1000 /dev/urandom > "$T/noise.bin"
bad 422 "" '{"clip":{"visual":{"modelName":"ViT-B-16__openai"}}}' "image=$T/noise.bin"
# No entries field at all: FastAPI's validation answer.
req POST /predict -F "image=@$DEMO/sample1.jpg"
[ "$STATUS" = 422 ] && [ "$(jget detail.0.loc.1)" = entries ] || fail "no entries: $STATUS $BODY"
api_stop
echo "immich_ml: ok"
