#!/usr/bin/env bash
# insightface_parity.sh: torch-built InsightFace models (an SCRFD detector with the nine
# outputs of det_10g.onnx and an ArcFace recogniser shaped like w600k_r50.onnx, random weights:
# tests/oracle/insightface_torch.py), laid out as Immich's buffalo_l folder, through visiond:
#   1. detection: visiond's faces (boxes, scores, five landmarks) equal InsightFace's decoding
#      (written in Python from its algorithm) of torch's outputs on the same input;
#   2. alignment: visiond's ArcFace crops equal the crops of a numpy Umeyama fit of the same
#      landmarks onto arcface_dst, warped bilinearly as cv2.warpAffine does;
#   3. recognition: visiond's face vectors equal torch's on those crops (1e-4), in-process,
#      and through the model server and the HTTP API (POST /embeddings of the crops, and
#      Immich's POST /predict facial-recognition on the picture).
# Prints the max abs differences.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
command -v jq >/dev/null || skip "jq not installed"
PY=/usr/bin/python3
$PY -c 'import torch, onnx' 2>/dev/null || skip "python3-torch / python3-onnx not installed"
ORACLE="$VISIOND_SOURCE_DIR/tests/oracle/insightface_torch.py"
export VD_OPENAPI_DIR="$T/openapi" # immich_client.py records its responses for the OpenAPI check
M="$T/data/models"; mkdir -p "$M" "$T/crops" "$T/ref"
$PY "$ORACLE" build "$M"
$PY "$ORACLE" image "$T/face.png"
# The folder is two models by itself (docs/models.md, "Model folders"): buffalo_l.detection and
# buffalo_l (the face embedder). Hand-written metadata for the same files must keep working: the
# in-process run uses it, the model server and the API the folder's.
cat > "$M/hand_scrfd.json" <<'EOF'
{"name": "hand_scrfd", "onnx": "buffalo_l/detection/model.onnx", "task": "face_detection",
 "detector": "scrfd",
 "input": {"name": "input.1", "layout": "NCHW", "height": 640, "width": 640, "channels": 3,
           "resize": "letterbox", "mean": [127.5, 127.5, 127.5], "std": [128, 128, 128]}}
EOF
cat > "$M/hand_arcface.json" <<'EOF'
{"name": "hand_arcface", "onnx": "buffalo_l/recognition/model.onnx",
 "task": "face_embedding", "alignment": "arcface", "l2_normalize": true,
 "input": {"name": "input.1", "layout": "NCHW", "height": 112, "width": 112, "channels": 3,
           "mean": [127.5, 127.5, 127.5], "std": [127.5, 127.5, 127.5]}}
EOF

# 1-3 in-process.
"$VISIOND" faces --models "$M" --detector hand_scrfd --embed \
  --embedder hand_arcface --threshold 0.5 --crops "$T/crops" "$T/face.png" > "$T/vd.json" ||
  fail "visiond faces: $(cat "$T/vd.json")"
$PY "$ORACLE" detect "$M/insightface_torch.pt" "$T/face.png" 0.5 > "$T/ref.json"
n=$(jq '.faces | length' "$T/vd.json")
[ "$n" = "$(jq '.boxes | length' "$T/ref.json")" ] ||
  fail "visiond found $n faces, the reference $(jq '.boxes | length' "$T/ref.json")"
[ "$n" -ge 5 ] && [ "$n" -lt 64 ] || fail "want 5..63 faces to compare, got $n"
jq -c '[.faces[].landmarks | map(map(. - 0.5))]' "$T/vd.json" > "$T/ref/lms.json"
$PY "$ORACLE" align "$T/face.png" "$T/ref/lms.json" "$T/ref/" > /dev/null
$PY "$ORACLE" embed "$M/insightface_torch.pt" $(for k in $(seq 0 $((n - 1))); do echo "$T/crops/0_$k.ppm"; done) \
  > "$T/torch_vecs.json"
$PY - "$T" "$n" <<'PY' || fail "in-process parity"
import json, os, sys
import numpy as np
sys.path.insert(0, os.environ["VISIOND_SOURCE_DIR"] + "/tests/oracle")
from insightface_torch import read_ppm, write_png
T, n = sys.argv[1], int(sys.argv[2])
vd = json.load(open(f"{T}/vd.json"))["faces"]
ref = json.load(open(f"{T}/ref.json"))
# visiond: continuous coordinates (pixel index + 0.5), box [x, y, w, h]; the reference: index ones
vb = np.array([[f["box"][0], f["box"][1], f["box"][0] + f["box"][2], f["box"][1] + f["box"][3], f["score"]]
               for f in vd]) - [0.5, 0.5, 0.5, 0.5, 0]
rb = np.array(ref["boxes"])
vk = np.array([f["landmarks"] for f in vd]) - 0.5
rk = np.array(ref["kps"])
db, ds, dk = np.abs(vb[:, :4] - rb[:, :4]).max(), np.abs(vb[:, 4] - rb[:, 4]).max(), np.abs(vk - rk).max()
print(f"detection: {n} faces in the same order; max abs diff: boxes {db:.2e} px, scores {ds:.2e}, landmarks {dk:.2e} px")
assert db < 2e-3 and dk < 2e-3 and ds < 1e-5, "detections differ"
px = max(np.abs(read_ppm(f"{T}/crops/0_{k}.ppm").astype(int) - read_ppm(f"{T}/ref/{k}.ppm").astype(int)).max()
         for k in range(n))
mean = np.mean([np.abs(read_ppm(f"{T}/crops/0_{k}.ppm").astype(int) - read_ppm(f"{T}/ref/{k}.ppm").astype(int)).mean()
                for k in range(n)])
print(f"alignment: ArcFace crops vs numpy Umeyama + bilinear warp: max abs diff {px} levels (mean {mean:.3f})")
assert px <= 2, "aligned crops differ"
tv = np.array(json.load(open(f"{T}/torch_vecs.json")))
vv = np.array([f["vector"] for f in vd])
dv = np.abs(tv - vv).max()
print(f"recognition (in-process): {vv.shape[1]}-d vectors, max abs diff vs torch {dv:.2e}")
assert vv.shape[1] == 512 and dv < 1e-4, "vectors differ"
for k in range(n):
    write_png(f"{T}/crops/0_{k}.png", read_ppm(f"{T}/crops/0_{k}.ppm"))
PY

# Through the model server and the HTTP API.
"$VISIOND" model-server --data "$T/data" --threads 1 > "$T/server.out" 2> "$T/server.err" &
track $!
wait_for 30 test -s "$T/server.out" || { cat "$T/server.err" >&2; fail "model server did not start"; }
api_start --data "$T/data" --model-server "unix:$T/data/model.sock" --immich-ml
files=(); for k in $(seq 0 $((n - 1))); do files+=(-F "f$k=@$T/crops/0_$k.png"); done
req GET /models
for m in buffalo_l.detection buffalo_l hand_scrfd hand_arcface; do
  printf '%s' "$BODY" | jq -e --arg m "$m" '.models | map(.name) | index($m)' >/dev/null ||
    fail "GET /models lacks $m: $BODY"
done
req POST /embeddings -F model=buffalo_l "${files[@]}"
[ "$STATUS" = 200 ] || fail "POST /embeddings: $STATUS $BODY"
printf '%s' "$BODY" > "$T/http_embed.json"
$PY "$VISIOND_SOURCE_DIR/tests/lib/immich_client.py" "$API" predict-faces buffalo_l 0.5 "$T/face.png" \
  > "$T/predict.json" || fail "POST /predict: $(cat "$T/predict.json")"
$PY - "$T" <<'PY' || fail "HTTP parity"
import json, sys
import numpy as np
T = sys.argv[1]
tv = np.array(json.load(open(f"{T}/torch_vecs.json")))
he = json.load(open(f"{T}/http_embed.json"))
hv = np.array([e["vector"] for e in he["embeddings"]])
d1 = np.abs(tv - hv).max()
print(f"recognition (model server, POST /embeddings of the crops): max abs diff vs torch {d1:.2e}")
assert d1 < 1e-4
pr = json.load(open(f"{T}/predict.json"))
faces = pr["facial-recognition"]
ref = json.load(open(f"{T}/ref.json"))
rb = np.round(np.array(ref["boxes"])[:, :4])
pb = np.array([[f["boundingBox"][k] for k in ("x1", "y1", "x2", "y2")] for f in faces])
pv = np.array([json.loads(f["embedding"]) for f in faces])
d2 = np.abs(pv - tv).max()
print(f"Immich /predict: {len(faces)} faces, boxes equal InsightFace's rounded ones: {bool((pb == rb).all())}, "
      f"embeddings max abs diff vs torch {d2:.2e}; imageWidth x imageHeight {pr['imageWidth']}x{pr['imageHeight']}")
assert len(faces) == len(rb) and (pb == rb).all() and d2 < 1e-4
assert (pr["imageWidth"], pr["imageHeight"]) == (640, 640)
PY
api_stop
echo "insightface_parity: ok"
