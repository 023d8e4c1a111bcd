#!/usr/bin/env bash
# e2e_bench_smoke.sh: the end-to-end race (bench/e2e/race.py) in its quick mode: one small
# training session through visiond (`visiond up`) and through the original Python stack
# (FastAPI + RQ + OpenCV DNN + scikit-learn). Asserts outcomes only: both sessions succeed
# on every image, both beat chance clearly, and OpenCV's copy of mobilenet_v2 computes the
# same embeddings as visiond's ONNX Runtime (cosine > 0.999). Timings are printed, never
# asserted. Skips (77) without Debian's python3-opencv, python3-sklearn, python3-onnx,
# python3-fastapi, python3-uvicorn, python3-rq or redis-server, or without Fashion-MNIST.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || skip "no $PY"
[ -e /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] ||
  [ -e /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte ] ||
  skip "no Fashion-MNIST (Debian package dataset-fashion-mnist)"
[ -f "${VISIOND_PREFIX:-/opt/visiond}/deps/npm/nsfwjs@4.3.0/dist/models/mobilenet_v2_mid/model.min.js" ] ||
  skip "npm packages missing (run scripts/setup.sh)"

set +e
TMPDIR=$T "$PY" "$VISIOND_SOURCE_DIR/bench/e2e/race.py" --quick --visiond "$VISIOND" \
  --json "$T/race.json" 2>&1 | tee "$T/out"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 77 ] && skip "$(grep 'skipped' "$T/out" | head -1)"
[ "$rc" = 0 ] || fail "race.py exited $rc"

"$PY" - "$T/race.json" <<'PY' || fail "race results"
import json, sys
r = json.load(open(sys.argv[1]))
res = {x["stack"]: x for x in r["results"]}
assert set(res) == {"python", "visiond"}, res.keys()
for name, x in res.items():
    assert x["state"] == "succeeded", (name, x["state"], x.get("message"))
    assert x["errors"] == 0, (name, x["errors"])
    # 10 labels, chance is 0.1
    assert x["cv_accuracy"] is not None and x["cv_accuracy"] > 0.3, (name, x["cv_accuracy"])
    assert x["peak_rss_mb"] > 0 and x["samples"] > 0, (name, x)
# the peer's model ran in a forked work-horse on the network its worker preloaded
rt = res["python"]["runtime"]
assert rt["model_inherited_by_fork"] and rt["model_loaded_by_pid"] == rt["worker_pid"], rt
cos = r["embedding_cosine"]
assert cos and min(cos) > 0.999, cos
print("ok: both stacks trained; embeddings agree (cosine min %.5f)" % min(cos))
PY
echo PASS
