# security_http.sh: the HTTP front's defects of issue 18 (items 4, 5, 8, 9, 10, 12), each
# reproduced against real processes (docs/security.md, "HTTP framing, ports and slots"):
#   - a second `serve` or `up` on a port in use exits 1 ("Address already in use") and every
#     request still reaches the first server (one LISTEN socket on the port);
#   - `up` refuses at once, exit 1 with the reason, what would stop its api from ever starting
#     (non-loopback without a token, a missing media root, port 99999), and does not restart
#     an api that exits 2 (configuration error: an empty token file);
#   - ambiguous framing (two different Content-Length, Content-Length with Transfer-Encoding,
#     a Transfer-Encoding other than chunked) is 400 invalid_request in JSON with
#     Connection: close; the refusals libmicrohttpd makes itself are 4xx with Connection: close;
#   - four uploads trickling one byte every 2 s hold the upload slots only until the minimum
#     body rate fails them; then a real upload gets through;
#   - job ids with "/" or control characters are refused (API and CLI); the log escapes ESC;
#   - multipart fields are as strict as JSON (crop=maybe, unknown or repeated fields), a body
#     with another boundary is 400 invalid_multipart, /faces answers 413 "limit".
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
command -v curl >/dev/null || skip "curl is not installed"
command -v ss >/dev/null || skip "ss (iproute2) is not installed"
PY=/usr/bin/python3
IMG="$VISIOND_SOURCE_DIR/tests/fuzz/corpus/image/seed_a_png"
BOMB="$VISIOND_SOURCE_DIR/tests/fuzz/corpus/image/png_60000x60000"

# raw PORT PYTHON-BYTES-EXPR: sends the bytes on a fresh connection, prints the answer
# (status line, then "close" when it had Connection: close, then the body).
raw() {
  $PY - "$1" "$2" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(10)
try:
    s.sendall(eval(sys.argv[2]))
    s.shutdown(socket.SHUT_WR)
except OSError:
    pass
out = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
except OSError:
    pass
head, _, body = out.partition(b"\r\n\r\n")
lines = head.split(b"\r\n")
print(lines[0].decode(errors="replace"))
print("close" if any(l.lower() == b"connection: close" for l in lines) else "keep")
print(body.decode(errors="replace"))
EOF
}

mkdir -p "$T/data" "$T/media"
api_start --data "$T/data" --media-root "$T/media" --model-server none --models "$VISIOND_SOURCE_DIR/models"
FIRST_LOG=$API_LOG FIRST_PID=$API_PID

# ---- item 4: a port in use ----
rc=0
timeout 20 "$VISIOND" serve --listen "127.0.0.1:$API_PORT" --data "$T/data2" --model-server none >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 1 ] && grep -q "Address already in use" "$T/err" ||
  fail "a second serve on port $API_PORT: rc=$rc $(cat "$T/err")"
rc=0
timeout 20 "$VISIOND" up --data "$T/up1" --listen "127.0.0.1:$API_PORT" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 1 ] && grep -q "Address already in use" "$T/err" ||
  fail "up on port $API_PORT in use: rc=$rc $(tail -3 "$T/err")"
n=$(ss -Htln "sport = :$API_PORT" | wc -l)
[ "$n" = 1 ] || fail "$n LISTEN sockets on port $API_PORT, want 1: $(ss -Htlnp "sport = :$API_PORT")"
before=$(grep -c "GET /healthz 200" "$FIRST_LOG" || true)
for i in $(seq 1 20); do req GET /healthz; [ "$STATUS" = 200 ] || fail "healthz: $STATUS"; done
after=$(grep -c "GET /healthz 200" "$FIRST_LOG" || true)
[ $((after - before)) = 20 ] || fail "the first server answered $((after - before)) of 20 requests"
echo "port in use: second serve and up exit 1; 20 of 20 requests reached the first server"

# ---- item 8: up refuses at once what can never start ----
up_refuses() { # WHAT-TO-GREP up-args...
  local want=$1; shift
  local rc=0
  timeout 20 "$VISIOND" up --data "$T/up2" "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" = 1 ] && grep -q "$want" "$T/err" || fail "up $*: rc=$rc, want 1 and '$want': $(tail -3 "$T/err")"
  ! grep -q "restarting in" "$T/err" || fail "up $* restarted a child: $(grep 'restarting in' "$T/err")"
}
up_refuses "without a token" --listen 0.0.0.0:0
up_refuses "media root '$T/nope' is not a directory" --listen 127.0.0.1:0 --media-root "$T/nope"
up_refuses "bad port" --listen 127.0.0.1:99999
: >"$T/empty-token"
up_refuses "not restarting it" --listen 127.0.0.1:0 --token-file "$T/empty-token"
grep -q "token file .* is empty" "$T/err" || fail "up did not pass on the api's reason: $(cat "$T/err")"
echo "up: refused 4 configurations that cannot start, each at once with its reason"

# ---- item 9: framing ----
P=$API_PORT
check_raw() { # WANT-STATUS WANT-CLOSE WANT-IN-BODY BYTES
  local got; got=$(raw "$P" "$4")
  local status close body
  status=$(sed -n 1p <<<"$got" | awk '{print $2}'); close=$(sed -n 2p <<<"$got"); body=$(sed -n '3,$p' <<<"$got")
  [ "$status" = "$1" ] && [ "$close" = "$2" ] && grep -qF -- "$3" <<<"$body" ||
    fail "raw $4: got $status $close $body; want $1 $2 '$3'"
}
H='b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
check_raw 400 close '"code":"invalid_request"' "$H"'Content-Length: 2\r\nContent-Length: 30\r\n\r\n{}"'
check_raw 400 close '"code":"invalid_request"' "$H"'Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"'
check_raw 400 close '"code":"invalid_request"' "$H"'Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"'
# identical repeated Content-Length is one length: not ambiguous
check_raw 422 keep '"code":"missing_field"' "$H"'Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}"'
# answered by libmicrohttpd itself (fixed HTML bodies, docs/security.md): refused and closed
check_raw 400 close '' "$H"'Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"'
check_raw 400 close '' "$H"'Content-Length: -5\r\n\r\n"'
check_raw 431 close '' 'b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "+b"a"*20000+b"\r\n\r\n"'
echo "framing: conflicting lengths and CL+TE refused 400 invalid_request, connection closed"

# ---- item 10: job ids and log escaping ----
J=(-H 'Content-Type: application/json')
expect_error 422 invalid_value POST /jobs "${J[@]}" -d '{"any_type":true,"type":"t","id":"a/b"}'
expect_error 422 invalid_value POST /jobs "${J[@]}" -d '{"any_type":true,"type":"t","id":"x\u001b[31m"}'
expect_error 422 invalid_value POST /jobs "${J[@]}" -d '{"any_type":true,"type":"t","id":".."}'
req POST /jobs "${J[@]}" -d '{"any_type":true,"type":"t","id":"ok-id_1.2"}'
[ "$STATUS" = 201 ] || fail "a valid id was refused: $STATUS $BODY"
rc=0
VISIOND_QUEUE="sqlite:$T/data/visiond.db" "$VISIOND" jobs enqueue t --any-type --id 'a/b' >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q "job id must be" "$T/err" || fail "CLI --id a/b: rc=$rc $(cat "$T/err")"
req GET '/jobs/%1b%5b2J%1b%5b31mred%07'
[ "$STATUS" = 404 ] || fail "GET of an ESC id: $STATUS"
wait_for 10 grep -q 'red\\x07' "$API_LOG" || fail "the request line is not in the log: $(tail -2 "$API_LOG")"
! grep -q $'\x1b' "$API_LOG" || fail "a raw ESC byte in the log"
! grep -q $'\x07' "$API_LOG" || fail "a raw BEL byte in the log"
grep -q 'GET /jobs/\\x1b\[2J\\x1b\[31mred\\x07 404' "$API_LOG" || fail "ESC not escaped: $(grep red "$API_LOG")"
echo "ids: a/b, ESC and .. refused (API and CLI); the log shows \\x1b, never the byte"

# ---- item 12: multipart as strict as JSON; /faces 413 limit ----
expect_error 400 invalid_type POST /faces -F embed=maybe -F "f=@$IMG"
expect_error 422 unknown_field POST /faces -F color=red -F "f=@$IMG"
expect_error 400 invalid_multipart POST /faces -F embed=1 -F embed=0 -F "f=@$IMG"
expect_error 422 invalid_value POST /faces -F "f=@$IMG" -F "g=@$IMG"
expect_error 400 invalid_type POST /embeddings -F vectors=no -F "f=@$IMG"
expect_error 422 unknown_field POST /embeddings -F paths=/etc/passwd -F "f=@$IMG"
expect_error 400 invalid_type POST /training/sessions -F name=t -F kind=face -F crop=maybe -F "cat=@$IMG" -F "dog=@$IMG"
expect_error 422 unknown_field POST /training/sessions -F name=t -F colour=red -F "cat=@$IMG" -F "dog=@$IMG"
expect_error 422 unknown_field POST /training/sessions/x/predict -F extra=1 -F "f=@$IMG"
printf -- '--RIGHT\r\nContent-Disposition: form-data; name="f"; filename="a.png"\r\n\r\nabc\r\n--RIGHT--\r\n' >"$T/mp"
expect_error 400 invalid_multipart POST /faces -H 'Content-Type: multipart/form-data; boundary=WRONG' --data-binary @"$T/mp"
expect_error 400 invalid_multipart POST /embeddings -H 'Content-Type: multipart/form-data; boundary=WRONG' --data-binary @"$T/mp"
expect_error 413 limit POST /faces -F "f=@$BOMB"
echo "multipart: bad booleans, unknown and repeated fields, a wrong boundary refused; /faces 413 limit"
api_stop

# ---- item 5: trickling uploads do not hold the upload slots ----
MS=()
if [ -f "$VISIOND_SOURCE_DIR/data/models/blazeface_back.onnx" ]; then
  mkdir -p "$T/ms/models"
  cp "$VISIOND_SOURCE_DIR/data/models/blazeface_back."* "$T/ms/models/"
  "$VISIOND" model-server --data "$T/ms" --threads 1 >"$T/ms.out" 2>"$T/ms.err" &
  track $!
  wait_for 30 test -s "$T/ms.out" || { cat "$T/ms.err" >&2; fail "model server did not start"; }
  MS=(--model-server "unix:$T/ms/model.sock")
else
  MS=(--model-server none)
  echo "blazeface_back.onnx not converted: a real upload ends 503 model_server_unavailable"
fi
api_start --data "$T/data3" "${MS[@]}" --max-uploads 4
$PY - "$T/grey.png" <<'EOF'
import struct, sys, zlib
w = h = 128
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
raw = b"".join(b"\0" + bytes([128]) * w for _ in range(h))
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                              + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
EOF
$PY - "$API_PORT" 4 >"$T/trickle.out" 2>&1 <<'EOF' &
# N clients each send a multipart /faces upload one byte every 2 s (at most 60 s each)
import socket, sys, threading, time
port, n = int(sys.argv[1]), int(sys.argv[2])
b = b"TrickleBoundary42"
body = (b"--" + b + b'\r\nContent-Disposition: form-data; name="f"; filename="a.png"\r\n\r\n'
        + b"x" * 100 + b"\r\n--" + b + b"--\r\n")
head = (b"POST /faces HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=" + b
        + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
lock = threading.Lock()
def say(msg):
    with lock:
        print(msg, flush=True)
def one(i):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(head)
    say("client %d: sending" % i)
    t0 = time.time()
    for k in range(len(body)):
        try:
            s.sendall(body[k:k + 1])
        except OSError:
            say("client %d: dropped after %.0f s" % (i, time.time() - t0)); return
        if time.time() - t0 > 60: break
        time.sleep(2)
    say("client %d: sent for %.0f s, never dropped" % (i, time.time() - t0))
ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
[t.start() for t in ts]; [t.join() for t in ts]
EOF
TRICKLE=$!
wait_for 20 sh -c "[ \$(grep -c sending '$T/trickle.out') = 4 ]" || fail "the trickling clients did not start"
sleep 0.5 # their first body byte is on its way: each holds a slot from its headers on
real_upload() { req POST /faces -F "f=@$T/grey.png"; [ "$STATUS" != 429 ]; }
wait_for 5 sh -c "curl -s -o /dev/null -w '%{http_code}' -F 'f=@$IMG' $API/faces | grep -q 429" ||
  fail "the four trickling uploads did not take the upload slots (the test needs them to)"
t0=$(date +%s)
wait_for 50 real_upload || fail "a real upload still gets 429 after 50 s of trickling uploads"
echo "a real upload got through after $(($(date +%s) - t0)) s of trickling: $STATUS $(printf %.80s "$BODY")"
if [ "${MS[1]}" = none ]; then
  [ "$STATUS" = 503 ] || fail "want 503 model_server_unavailable, got $STATUS $BODY"
else
  [ "$STATUS" = 200 ] || fail "the real upload failed: $STATUS $BODY"
fi
grep -q "POST /faces 408" "$API_LOG" || fail "no trickling upload was refused 408 body_too_slow"
wait "$TRICKLE" || true
cat "$T/trickle.out"
[ "$(grep -o dropped "$T/trickle.out" | wc -l)" = 4 ] || fail "not every trickling client was dropped"
api_stop
