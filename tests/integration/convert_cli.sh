#!/usr/bin/env bash
# convert_cli.sh: `visiond convert` from the command line (help, usage errors,
# an unsupported op, --meta) and scripts/models.sh filling a models directory
# from the shipped npm packages, twice (the second run redoes nothing).
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"

"$VISIOND" convert --help | grep -q -- '--output NODE' || fail "convert --help"
set +e
"$VISIOND" convert --tfjs x.json -o "$T/x.onnx" 2>"$T/err"; rc=$?
set -e
[ "$rc" = 2 ] || fail "missing --output: exit $rc, want 2"
grep -q '^visiond: ' "$T/err" || fail "usage error message: $(cat "$T/err")"

# A tiny model: x -> Erf (unsupported) and x -> Relu (supported).
mkdir -p "$T/tiny"
printf '\0\0\0\0' >"$T/tiny/w.bin"
cat >"$T/tiny/model.json" <<'JSON'
{"format": "graph-model",
 "modelTopology": {"node": [
   {"name": "x", "op": "Placeholder", "attr": {"shape": {"shape": {"dim": [{"size": "-1"}, {"size": "8"}, {"size": "8"}, {"size": "3"}]}}}},
   {"name": "k", "op": "Const"},
   {"name": "bad/erf", "op": "Erf", "input": ["x"]},
   {"name": "good/relu", "op": "Relu", "input": ["x"]},
   {"name": "good/add", "op": "AddV2", "input": ["good/relu", "k"]}]},
 "weightsManifest": [{"paths": ["w.bin"], "weights": [{"name": "k", "shape": [], "dtype": "float32"}]}]}
JSON
set +e
"$VISIOND" convert --tfjs "$T/tiny/model.json" --output bad/erf -o "$T/tiny/bad.onnx" 2>"$T/err"; rc=$?
set -e
[ "$rc" = 1 ] || fail "unsupported op: exit $rc, want 1"
grep -q "unsupported op Erf (node 'bad/erf')" "$T/err" || fail "unsupported op message: $(cat "$T/err")"
[ ! -e "$T/tiny/bad.onnx" ] || fail "an ONNX file was left behind"

"$VISIOND" convert --tfjs "$T/tiny/model.json" --output add=feat -o "$T/tiny/tiny.onnx" \
  --meta "$T/tiny/tiny.json" --task image_embedding --scale 0.5 --l2-normalize --check >"$T/out.json"
python3 - "$T/out.json" "$T/tiny/tiny.json" <<'PY' || fail "convert summary or metadata"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["inputs"] == [{"name": "x", "shape": [-1, 8, 8, 3]}], s
assert s["outputs"] == [{"name": "feat", "shape": [-1, 8, 8, 3]}], s
assert s["check"] == {"batch": 2, "outputs": [{"name": "feat", "shape": [2, 8, 8, 3], "finite": True}]}, s
m = json.load(open(sys.argv[2]))
assert m["onnx"] == "tiny.onnx" and m["name"] == "tiny" and m["task"] == "image_embedding", m
assert m["input"]["name"] == "x" and m["input"]["height"] == 8 and m["input"]["scale"] == 0.5, m
assert m["outputs"] == ["feat"] and m["l2_normalize"] is True, m
PY
[ -s "$T/tiny/tiny.onnx" ] || fail "no ONNX written"

# The shipped models.
NPM=${VISIOND_PREFIX:-/opt/visiond}/deps/npm
[ -f "$NPM/nsfwjs@4.3.0/dist/models/mobilenet_v2_mid/model.min.js" ] || skip "npm packages missing (run scripts/setup.sh)"
"$VISIOND_SOURCE_DIR/scripts/models.sh" --visiond "$VISIOND" --out "$T/models" >"$T/m1.log"
for n in mobilenet_v2 faceres faceres-deep mobilefacenet blazeface_back blazeface_front; do
  [ -s "$T/models/$n.onnx" ] || fail "models.sh: no $n.onnx"
  python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); assert m["name"]==sys.argv[2] and m["onnx"]==sys.argv[2]+".onnx", m' \
    "$T/models/$n.json" "$n" || fail "models.sh: bad $n.json"
done
"$VISIOND_SOURCE_DIR/scripts/models.sh" --visiond "$VISIOND" --out "$T/models" >"$T/m2.log"
[ "$(grep -c 'up to date' "$T/m2.log")" = 6 ] || fail "models.sh is not idempotent: $(cat "$T/m2.log")"
echo "convert_cli: ok"
