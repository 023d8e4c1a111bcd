# api.sh: helpers for shell tests of `visiond serve`. Source after common.sh.
#   api_start [serve options...]   starts the server on a free loopback port;
#                                  sets API_PID, API_PORT, API (base URL), API_LOG
#   api_stop                       SIGTERM, waits, fails if it does not exit 0
#   req METHOD PATH [curl args...] sets STATUS and BODY (and HDRS: response headers); the
#                                  response is recorded under $T/openapi and checked against
#                                  api/openapi.json when the test ends (common.sh, openapi_check.py)
#   expect_error STATUS CODE METHOD PATH [curl args...]
#                                  the request must fail with STATUS and error code CODE
#   jget FIELD                     a field of $BODY (python-style path: a.b.0.c)
#   fill_queue TYPE MAX            POSTs jobs of TYPE with a 60 KB payload (the file $BIG_JOB)
#                                  until one is refused or MAX were taken; sets ACCEPTED, and
#                                  STATUS/BODY are the refusal's; then checks that it is
#                                  507 storage_full and that 3 <= ACCEPTED < MAX

api_start() {
  API_LOG="$T/api.$$.$RANDOM.log"
  local out="$T/api.$$.$RANDOM.out"
  "$VISIOND" serve --listen 127.0.0.1:0 "$@" >"$out" 2>"$API_LOG" &
  API_PID=$!
  track "$API_PID"
  local i
  for i in $(seq 1 300); do
    if [ -s "$out" ]; then break; fi
    if ! kill -0 "$API_PID" 2>/dev/null; then cat "$API_LOG" >&2; fail "visiond serve exited early"; fi
    sleep 0.1
  done
  [ -s "$out" ] || { cat "$API_LOG" >&2; fail "visiond serve did not report its port"; }
  API_PORT=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$out")
  API="http://127.0.0.1:$API_PORT"
}

api_stop() {
  kill -TERM "$API_PID"
  local rc=0
  wait "$API_PID" || rc=$?
  [ "$rc" = 0 ] || { tail -5 "$API_LOG" >&2; fail "visiond serve exited $rc on SIGTERM"; }
}

req() {
  local method=$1 path=$2; shift 2
  local rec; rec=$(vd_openapi_record "$method" "$path")
  local bf="$rec.body" hf="$rec.hdr"
  STATUS=$(curl -s --max-time 60 -o "$bf" -D "$hf" -w '%{http_code}' -X "$method" "$@" "$API$path") || true
  BODY=$(cat "$bf" 2>/dev/null || true)
  HDRS=$(cat "$hf" 2>/dev/null || true)
}

jget() {
  printf '%s' "$BODY" | /usr/bin/python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)' "$1"
}

expect_error() {
  local want_status=$1 want_code=$2 method=$3 path=$4; shift 4
  req "$method" "$path" "$@"
  local code
  code=$(jget error.code 2>/dev/null || echo "(no error body)")
  if [ "$STATUS" != "$want_status" ] || [ "$code" != "$want_code" ]; then
    fail "$method $path $*: got $STATUS $code ($BODY), want $want_status $want_code"
  fi
}

fill_queue() {
  local type=$1 max=$2 pad
  BIG_JOB="$T/big-$type.json"
  pad=$(head -c 60000 /dev/zero | tr '\0' 'x')
  printf '{"any_type":true,"type":"%s","payload":{"pad":"%s"}}' "$type" "$pad" >"$BIG_JOB"
  ACCEPTED=0
  while [ "$ACCEPTED" -lt "$max" ]; do
    req POST /jobs -H 'Content-Type: application/json' --data-binary @"$BIG_JOB"
    [ "$STATUS" = 201 ] || break
    ACCEPTED=$((ACCEPTED + 1))
  done
  echo "accepted $ACCEPTED jobs of 60 KB before: $STATUS $BODY"
  [ "$ACCEPTED" -ge 3 ] && [ "$ACCEPTED" -lt "$max" ] || fail "the queue never filled ($ACCEPTED accepted)"
  [ "$STATUS" = 507 ] || fail "a full queue store must be 507 Insufficient Storage, got $STATUS $BODY"
  [ "$(jget error.code)" = storage_full ] || fail "a full queue store must have code storage_full: $BODY"
}
