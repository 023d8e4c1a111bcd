#!/usr/bin/env bash
# faces_scrfd.sh: an SCRFD-shaped detector ("detector": "scrfd" in its metadata) through
# `visiond faces`: a graph whose nine outputs are crafted to place one face at a known
# anchor gives that face's box in the original image's pixels, and its five landmarks
# drive an ArcFace-aligned embedder ("alignment": "arcface"). The decoding rules
# themselves are tested in tests/unit/test_scrfd.c.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
command -v jq >/dev/null || skip "jq not installed"
/usr/bin/python3 -c 'import onnx' 2>/dev/null || skip "python3-onnx not installed"
[ -f "$VISIOND_SOURCE_DIR/data/models/faceres.onnx" ] || skip "shipped models not built (scripts/models.sh)"
M="$T/models"; mkdir -p "$M"
/usr/bin/python3 - "$M/scrfd_fake.onnx" <<'PY'
import sys
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
W = H = 64
outs, nodes = [], []
for kind, c in (("score", 1), ("bbox", 4), ("kps", 10)):
    for s in (8, 16, 32):
        n = (W // s) * (H // s) * 2
        v = np.zeros((n, c), np.float32)
        if s == 8:  # one face: grid location (3, 2), anchor 0 -> index (2*8+3)*2
            i = (2 * 8 + 3) * 2
            v[i] = {"score": [0.93], "bbox": [1, 1, 1, 1],
                    "kps": [-0.5, -0.25, 0.5, -0.25, 0, 0.25, -0.25, 0.6, 0.25, 0.6]}[kind]
        name = f"{kind}_{s}"
        nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(v, name + "_v")))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, c]))
inp = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, H, W])
g = helper.make_graph(nodes, "scrfd_fake", [inp], outs)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
m.ir_version = 8
onnx.save(m, sys.argv[1])
PY
cat > "$M/scrfd_fake.json" <<'EOF2'
{"name": "scrfd_fake", "task": "face_detection", "detector": "scrfd",
 "input": {"name": "input.1", "layout": "NCHW", "height": 64, "width": 64, "channels": 3,
           "resize": "letterbox", "mean": [127.5, 127.5, 127.5], "std": [128, 128, 128]}}
EOF2
cp "$VISIOND_SOURCE_DIR/data/models/faceres.onnx" "$M/faceres_arc.onnx"
jq '.name = "faceres_arc" | .onnx = "faceres_arc.onnx" | .alignment = "arcface"' \
  "$VISIOND_SOURCE_DIR/data/models/faceres.json" > "$M/faceres_arc.json"
# A 128 x 128 photo-like image: letterboxed into 64 x 64 at half scale, no padding.
/usr/bin/python3 - "$T/img.png" <<'PY'
import struct, sys, zlib
w = h = 128
rows = b"".join(b"\0" + bytes(v for x in range(w) for v in (x * 2 % 256, y * 2 % 256, (x + y) % 256))
               for y in range(h))
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
PY
"$VISIOND" faces --models "$M" --detector scrfd_fake --embed --embedder faceres_arc "$T/img.png" > "$T/out.json" ||
  fail "faces exited $?: $(cat "$T/out.json")"
jq -c '.faces[] | {score, box, keypoints, dim: (.vector | length)}' "$T/out.json"
[ "$(jq '.faces | length' "$T/out.json")" = 1 ] || fail "want one face"
# anchor (24.5, 16.5) in the input, distances 8 px: (16.5, 8.5)-(32.5, 24.5); x2 in the image
jq -e '.faces[0].box | (.[0] - 33 | fabs) < 0.01 and (.[1] - 17 | fabs) < 0.01 and
       (.[2] - 32 | fabs) < 0.01 and (.[3] - 32 | fabs) < 0.01' "$T/out.json" >/dev/null ||
  fail "box: $(jq -c '.faces[0].box' "$T/out.json"), want [33,17,32,32]"
jq -e '(.faces[0].score - 0.93 | fabs) < 1e-5' "$T/out.json" >/dev/null || fail "score"
# nose tip: anchor + (0, 0.25*8) -> (24.5, 18.5) -> (49, 37)
jq -e '.faces[0].keypoints[2] | (.[0] - 49 | fabs) < 0.01 and (.[1] - 37 | fabs) < 0.01' "$T/out.json" \
  >/dev/null || fail "nose: $(jq -c '.faces[0].keypoints[2]' "$T/out.json")"
[ "$(jq '.faces[0].vector | length' "$T/out.json")" -gt 0 ] || fail "no embedding"
# An ArcFace embedder with a BlazeFace detector has no mouth corners: a clear per-file error.
set +e
"$VISIOND" faces --models "$M:$VISIOND_SOURCE_DIR/data/models:$VISIOND_SOURCE_DIR/models" --embed \
  --embedder faceres_arc "/opt/visiond/deps/npm/@vladmandic+face-api@1.7.15/demo/sample1.jpg" > "$T/bf.json"
set -e
jq -r '.error.message // "no error"' "$T/bf.json"
grep -q "five landmarks" "$T/bf.json" || fail "BlazeFace + ArcFace alignment: want a clear error"
echo "faces_scrfd: ok"
