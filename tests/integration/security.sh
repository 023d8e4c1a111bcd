# security.sh: the claims of docs/security.md that need real processes (the
# others are in tests/unit/test_security.c and the fuzz harnesses):
#   - the model server's Unix socket is 0600 whatever the umask; it opens no TCP
#     port unless asked; a non-loopback --tcp is refused without --allow-remote;
#   - the API refuses a non-loopback listen address without a token (IPv4 and IPv6);
#   - wrong tokens of every length (0 .. len+4) and every one-character change
#     are refused with 401; the token is never in the log (debug level), even
#     when a client puts it in a query string;
#   - a redis:// password never appears in the API's log, its stdout or its errors,
#     nor on the command lines of the processes `visiond up` starts;
#   - percent-encoded "..", "/" and NUL in a URL reach no file; a NUL in a JSON
#     body is invalid_json; an oversized Content-Length, a JSON body over
#     --max-body and an upload over --max-upload are refused (413) and a refused
#     upload leaves no file;
#   - the routes that take paths (training sessions, embeddings, faces) refuse
#     symlink escapes, "..", "\u002e\u002e", paths outside the roots, relative
#     paths, and take a JSON "%2e%2e" literally;
#   - no shell-outs in src/: no system(), popen(), exec*() or posix_spawn*()
#     except the process supervisor's execv of its own binary and the worker's
#     execv of visiond-horse beside it.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
command -v curl >/dev/null || skip "curl is not installed"
command -v ss >/dev/null || skip "ss (iproute2) is not installed"

# ---- no shell-outs in src/ ----
hits=$(grep -rnE '\b(system|popen|execl|execlp|execle|execv|execvp|execvpe|execve|fexecve|posix_spawnp?)[[:space:]]*\(' \
  "$VISIOND_SOURCE_DIR/src" --include='*.c' --include='*.h' || true)
ok_exec='src/core/procsup\.c:[0-9]+: +execv\(c->argv\[0\], c->argv\);|src/worker/forkserver\.c:[0-9]+: +execv\(argv\[0\], \(char \*const \*\)argv\);'
allowed=$(grep -cE "$ok_exec" <<<"$hits" || true)
others=$(grep -vE "$ok_exec" <<<"$hits" | grep -v '^$' || true)
[ -z "$others" ] || fail "process-spawning calls in src/ besides the two execv of docs/security.md: $others"
[ "$allowed" = 2 ] || fail "expected exactly the execv of procsup.c and forkserver.c: $hits"
# ... and they only ever run this binary (visiond up resolves /proc/self/exe) or visiond-horse
# beside it (the worker's light fork server, found from /proc/self/exe too)
grep -q 'readlink("/proc/self/exe"' "$VISIOND_SOURCE_DIR/src/cli/cmd_up.c" ||
  fail "visiond up no longer re-executes /proc/self/exe: review docs/security.md"
grep -q 'readlink("/proc/self/exe"' "$VISIOND_SOURCE_DIR/src/cli/cmd_worker.c" ||
  fail "visiond worker no longer finds visiond-horse beside /proc/self/exe: review docs/security.md"

# ---- model server: socket mode, no TCP unless asked ----
mkdir -p "$T/ms" "$T/models"
(umask 000; exec "$VISIOND" model-server --data "$T/ms" --models "$T/models" >"$T/ms.out" 2>"$T/ms.log") &
MS_PID=$!
track "$MS_PID"
wait_for 30 test -S "$T/ms/model.sock" || { cat "$T/ms.log" >&2; fail "model server did not start"; }
mode=$(stat -c %a "$T/ms/model.sock")
[ "$mode" = 600 ] || fail "model socket mode is $mode under umask 000, want 600"
tcp=$(ss -Htlnp 2>/dev/null | grep "pid=$MS_PID," || true)
[ -z "$tcp" ] || fail "the model server listens on TCP without --tcp: $tcp"
kill -TERM "$MS_PID"; wait "$MS_PID" || true

"$VISIOND" model-server --data "$T/ms" --models "$T/models" --tcp 127.0.0.1:0 >"$T/ms.out" 2>"$T/ms.log" &
MS_PID=$!
track "$MS_PID"
wait_for 30 test -S "$T/ms/model.sock" || { cat "$T/ms.log" >&2; fail "model server (tcp) did not start"; }
wait_for 10 sh -c "ss -Htlnp | grep -q 'pid=$MS_PID,'" || fail "no TCP listener with --tcp"
addrs=$(ss -Htlnp | grep "pid=$MS_PID," | awk '{print $4}')
while read -r a; do
  case "$a" in 127.*) ;; *) fail "model server TCP listener on $a, want loopback only" ;; esac
done <<<"$addrs"
kill -TERM "$MS_PID"; wait "$MS_PID" || true

rc=0
"$VISIOND" model-server --data "$T/ms2" --models "$T/models" --no-socket --tcp 0.0.0.0:0 \
  >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" != 0 ] && grep -q "not a loopback address" "$T/err" ||
  fail "model server on 0.0.0.0 without --allow-remote: rc=$rc $(cat "$T/err")"

# ---- API: non-loopback needs a token ----
for addr in 0.0.0.0:0 '[::]:0'; do
  rc=0
  "$VISIOND" serve --listen "$addr" --data "$T/data0" --model-server none >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" = 2 ] && grep -q "without a token" "$T/err" || fail "serve --listen $addr without a token: rc=$rc $(cat "$T/err")"
done

# ---- tokens: every length, every one-character change; never logged ----
TOKEN="sec-$RANDOM$RANDOM-token-XYZ"
printf '%s\n' "$TOKEN" >"$T/token"
chmod 600 "$T/token"
mkdir -p "$T/media" "$T/data"
VISIOND_LOG_LEVEL=debug api_start --data "$T/data" --media-root "$T/media" --token-file "$T/token" --model-server none \
  --max-body 0.01 --max-upload 0.5
n=${#TOKEN}
for len in $(seq 0 $((n + 4))); do
  cand=$(printf '%s' "${TOKEN}xxxxx" | head -c "$len")
  [ "$len" = "$n" ] && continue
  req GET /jobs -H "Authorization: Bearer $cand"
  [ "$STATUS" = 401 ] || fail "a wrong token of length $len got $STATUS"
done
for i in 0 $((n / 2)) $((n - 1)); do
  c=${TOKEN:$i:1}
  [ "$c" = Q ] && r=R || r=Q
  cand="${TOKEN:0:$i}$r${TOKEN:$((i + 1))}"
  req GET /jobs -H "Authorization: Bearer $cand"
  [ "$STATUS" = 401 ] || fail "a token changed at $i got $STATUS"
done
req GET "/jobs?token=$TOKEN&access_token=$TOKEN"
[ "$STATUS" = 401 ] || fail "a token in the query string must not authenticate: $STATUS"
req GET "/jobs" -H "Authorization: Bearer $TOKEN"
[ "$STATUS" = 200 ] || fail "the right token: $STATUS"
req POST /jobs -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"any_type":true,"type":"sec.demo"}'
[ "$STATUS" = 201 ] || fail "enqueue with the token: $STATUS $BODY"

# ---- URLs and bodies that try to reach files ----
for p in '/jobs/%2e%2e%2f%2e%2e%2fetc%2fpasswd' '/jobs/..%2f..%2fetc%2fpasswd' '/%2e%2e/%2e%2e/etc/passwd' \
         '/jobs/%00' '/jobs/a%00b' '/jobs/%2fetc%2fpasswd'; do
  req GET "$p" -H "Authorization: Bearer $TOKEN"
  case "$STATUS" in 400|404) ;; *) fail "GET $p: $STATUS $BODY" ;; esac
  grep -q 'root:' <<<"$BODY" && fail "GET $p returned a file: $BODY"
done
# Path confinement through the routes that take paths (refused before any model server is asked).
mkdir -p "$T/media/cats" "$T/outside"
printf 'x' >"$T/media/cats/a.png"; printf 'secret' >"$T/outside/secret.png"
ln -s ../outside "$T/media/esc"
M="$T/media"
AJ=(-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json')
sess() { printf '{"name":"s","examples":[{"path":"%s/cats/a.png","label":"a"},{"path":"%s","label":"b"}]}' "$M" "$1"; }
expect_error 422 path_symlink_escape POST /training/sessions "${AJ[@]}" -d "$(sess "$M/esc/secret.png")"
expect_error 422 path_dotdot POST /training/sessions "${AJ[@]}" -d "$(sess "$M/cats/../../outside/secret.png")"
expect_error 422 path_dotdot POST /training/sessions "${AJ[@]}" -d "$(sess "$M/cats/\\u002e\\u002e/\\u002e\\u002e/outside/secret.png")"
expect_error 422 path_outside_media_roots POST /training/sessions "${AJ[@]}" -d "$(sess /etc/passwd)"
expect_error 422 path_not_absolute POST /training/sessions "${AJ[@]}" -d "$(sess cats/a.png)"
req POST /training/sessions "${AJ[@]}" -d "$(sess "$M/cats/%2e%2e/%2e%2e/outside/secret.png")"
[ "$STATUS" = 404 ] && [ "$(jget error.code)" = path_not_found ] || fail "a percent-encoded .. in JSON is a literal name: $STATUS $BODY"
expect_error 400 invalid_json POST /training/sessions "${AJ[@]}" -d "$(sess "$M/cats/a.png\\u0000/../../../outside/secret.png")"
expect_error 422 path_symlink_escape POST /training/sessions "${AJ[@]}" -d "{\"name\":\"s\",\"folder\":\"$M/esc\"}"
expect_error 422 path_symlink_escape POST /embeddings "${AJ[@]}" -d "{\"paths\":[\"$M/cats/a.png\",\"$M/esc/secret.png\"]}"
expect_error 422 path_outside_media_roots POST /faces "${AJ[@]}" -d '{"path":"/etc/passwd"}'
grep -q secret <<<"$BODY" && fail "a refusal leaked file contents: $BODY"

expect_error 400 invalid_json POST /jobs -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"any_type":true,"type":"sec.nul","payload":{"path":"/tmp/a\u0000/../../etc/passwd"}}'
t0=$(date +%s%N)
req POST /jobs -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -H 'Content-Length: 99999999999' --data-binary '{}'
echo "oversized Content-Length: $STATUS in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
[ "$STATUS" = 413 ] || fail "an oversized Content-Length: $STATUS $BODY"
# Body and upload limits: --max-body 0.01 (10 KB JSON), --max-upload 0.5 (512 KB multipart).
head -c 20000 /dev/zero | tr '\0' 'a' | sed 's/^/{"any_type":true,"type":"big","payload":{"s":"/; s/$/"}}/' >"$T/big.json"
expect_error 413 body_too_large POST /jobs "${AJ[@]}" --data-binary @"$T/big.json"
head -c 700000 /dev/urandom >"$T/big.bin"
req POST /embeddings -H "Authorization: Bearer $TOKEN" -F "f=@$T/big.bin"
[ "$STATUS" = 413 ] || fail "an upload over --max-upload: $STATUS $BODY"
ls "$T/data/uploads" 2>/dev/null | grep -q . && fail "a refused upload left files: $(ls -R "$T/data/uploads")"
api_stop
grep -qF "$TOKEN" "$API_LOG" && fail "the token appears in the API log"
grep -q "GET /jobs " "$API_LOG" || fail "no request lines in the log (is the log where we think?)"

# ---- a redis password never reaches logs, stdout or errors ----
if command -v redis-server >/dev/null; then
  RPASS="rp-$RANDOM$RANDOM-secret"
  RPORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --bind 127.0.0.1 --port "$RPORT" --requirepass "$RPASS" --save '' --appendonly no \
    --dir "$T" --logfile "$T/redis.log" --daemonize no &
  R_PID=$!
  track "$R_PID"
  wait_for 20 redis-cli -p "$RPORT" -a "$RPASS" --no-auth-warning ping || fail "redis-server did not start"
  VISIOND_LOG_LEVEL=debug api_start --data "$T/data-r" --queue "redis://:$RPASS@127.0.0.1:$RPORT/0" --model-server none
  req POST /jobs -H 'Content-Type: application/json' -d '{"any_type":true,"type":"sec.redis"}'
  [ "$STATUS" = 201 ] || fail "enqueue over redis with a password: $STATUS $BODY"
  api_stop
  grep -qF "$RPASS" "$API_LOG" "$T"/api.*.out && fail "the redis password appears in the API's log or stdout"
  grep -q "redis://:\*\*\*@127.0.0.1:$RPORT/0" "$API_LOG" || fail "the log does not show the redacted queue URL"
  # errors that quote the URL
  for bad in "redis://:$RPASS@127.0.0.1:notaport/0" "redis://:$RPASS@127.0.0.1:$RPORT/x" "redis://:$RPASS@/0"; do
    rc=0
    "$VISIOND" serve --listen 127.0.0.1:0 --data "$T/data-r" --queue "$bad" --model-server none >"$T/out" 2>"$T/err" || rc=$?
    [ "$rc" != 0 ] || fail "serve accepted the queue URL $bad"
    grep -qF "$RPASS" "$T/out" "$T/err" && fail "the redis password appears in the error for a bad URL: $(cat "$T/err")"
  done
  rc=0
  "$VISIOND" serve --listen 127.0.0.1:0 --data "$T/data-r" --queue "redis://:wrong-$RPASS@127.0.0.1:$RPORT/0" \
    --model-server none >"$T/out" 2>"$T/err" &
  BAD_PID=$!
  track "$BAD_PID"
  sleep 2
  kill -TERM "$BAD_PID" 2>/dev/null || true
  wait "$BAD_PID" || true
  grep -qF "$RPASS" "$T/out" "$T/err" && fail "a wrong redis password appears in the output: $(head -3 "$T/err")"
  # visiond up hands a queue URL with a password to its children through the
  # environment only: no process's command line (what `ps` shows) holds it.
  uport=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  VISIOND_QUEUE="redis://:$RPASS@127.0.0.1:$RPORT/0" "$VISIOND" up --data "$T/data-up" \
    --listen "127.0.0.1:$uport" --workers 1 >"$T/up.out" 2>&1 &
  UP_PID=$!
  track "$UP_PID"
  wait_for 30 curl -sf "http://127.0.0.1:$uport/healthz" || { cat "$T/up.out"; fail "up over redis with a password did not come up"; }
  req_up=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$uport/jobs" \
    -H 'Content-Type: application/json' -d '{"type":"noop"}')
  [ "$req_up" = 201 ] || fail "enqueue through up over redis with a password: $req_up"
  nkids=0
  for k in $(pgrep -P "$UP_PID"); do
    nkids=$((nkids + 1))
    tr '\0' ' ' <"/proc/$k/cmdline" | grep -qF "$RPASS" && fail "the redis password is on a child's command line: $(tr '\0' ' ' <"/proc/$k/cmdline")"
  done
  [ "$nkids" -ge 3 ] || fail "up has $nkids children, want model server, worker and api"
  kill -TERM "$UP_PID"
  wait "$UP_PID" || fail "up over redis did not stop cleanly: $(tail -5 "$T/up.out")"
  grep -qF "$RPASS" "$T/up.out" && fail "the redis password appears in up's log"
  kill -TERM "$R_PID" 2>/dev/null || true
  wait "$R_PID" 2>/dev/null || true
else
  echo "redis-server not installed: the redis password check is skipped"
fi
echo "PASS security"
