#!/usr/bin/env bash
# up_roles.sh: `visiond up --role` splits visiond over "hosts" (three `up` processes here, on
# loopback): a model-server host on TCP with a shared secret, an api host and a worker host that
# reach it by address with the secret, sharing the queue. Each runs only its share; jobs run on
# the worker host; the api reaches the model server. Wrong role sets are refused before anything
# starts, with the reason (docs/deploy.md).
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
IMG=/opt/visiond/deps/npm/@vladmandic+face-api@1.7.15/demo/sample1.jpg
[ -f "$VISIOND_SOURCE_DIR/models/blazeface_back.json" ] && [ -f "$IMG" ] || skip "BlazeFace or the demo photos missing (scripts/setup.sh)"
freeport() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MSPORT=$(freeport) APIPORT=$(freeport)
mkdir -p "$T/models" "$T/media" "$T/shared" "$T/gpu"
cp "$VISIOND_SOURCE_DIR/models/blazeface_back.json" "$T/models/"
cp "$IMG" "$T/media/a.jpg"
head -c 32 /dev/urandom | base64 >"$T/secret" && chmod 600 "$T/secret"
Q="sqlite:$T/shared/visiond.db"

# refused before anything starts
expect_refused() { # PATTERN ARGS...: up exits non-zero with PATTERN on stderr
  local pat=$1; shift
  set +e
  env -u VISIOND_MODEL_SERVER -u VISIOND_MODEL_SECRET_FILE "$VISIOND" up --data "$T/x" "$@" >/dev/null 2>"$T/err"; local rc=$?
  set -e
  [ "$rc" != 0 ] && grep -q -- "$pat" "$T/err" || fail "up $*: rc $rc, want '$pat': $(cat "$T/err")"
}
expect_refused "role: 'gpu' is not a role" --role api,gpu
expect_refused "role: 'api' is given twice" --role api,api
expect_refused "runs no model server here: give model_server" --role worker
expect_refused "model_listen is set but role 'api' runs no model server" --role api --model-server tcp:127.0.0.1:1 --model-listen 127.0.0.1:7700
expect_refused "model_listen 0.0.0.0:7700 is not a loopback address" --role model-server --model-listen 0.0.0.0:7700
cp "$T/secret" "$T/loose" && chmod 640 "$T/loose"
expect_refused "group or others may access it" --role model-server --secret-file "$T/loose"
printf 'role = api,\n' >"$T/bad.conf"
expect_refused "bad.conf:1: role: '' is not a role" --config "$T/bad.conf"

# the three hosts, each from its config file (the format of docs/deploy.md)
cat >"$T/gpu.conf" <<CONF
data = $T/gpu
role = model-server
models = $T/models
model_listen = 127.0.0.1:$MSPORT
model_secret_file = $T/secret
model_threads = 1
CONF
cat >"$T/api.conf" <<CONF
data = $T/shared
role = api
listen = 127.0.0.1:$APIPORT
media_roots = $T/media
model_server = tcp:127.0.0.1:$MSPORT
model_secret_file = $T/secret
CONF
cat >"$T/worker.conf" <<CONF
data = $T/shared
role = worker
workers = 1
concurrency = 2
model_server = tcp:127.0.0.1:$MSPORT
model_secret_file = $T/secret
CONF
"$VISIOND" up --config "$T/api.conf" --print-config | grep -Eq '^role += api +# from file' || fail "print-config: role"
start_host() { # NAME: up --config NAME.conf; sets UP_NAME
  env -u VISIOND_MODEL_SERVER -u VISIOND_MODEL_SECRET_FILE "$VISIOND" up --config "$T/$1.conf" >"$T/$1.log" 2>&1 &
  local pid=$!
  track "$pid"
  eval "UP_$1=$pid"
}
trap 'pkill -9 -f -- "$T/" 2>/dev/null || true; _vd_cleanup' EXIT
start_host gpu
start_host api
start_host worker
wait_for 60 curl -sf "http://127.0.0.1:$APIPORT/healthz" || { cat "$T/api.log"; fail "api host did not come up"; }
ms_ok() { curl -sf "http://127.0.0.1:$APIPORT/healthz" | /usr/bin/python3 -c 'import json,sys; m=json.load(sys.stdin)["model_server"]; sys.exit(0 if m.get("ok") else 1)'; }
wait_for 60 ms_ok || { curl -s "http://127.0.0.1:$APIPORT/healthz"; cat "$T/gpu.log"; fail "the api does not reach the model server over TCP with the secret"; }

# each host runs its share only
children() { pgrep -P "$1" -a | cut -d' ' -f3 | sort | tr '\n' ' '; }
[ "$(children "$UP_gpu")" = "model-server " ] || fail "gpu host runs: $(children "$UP_gpu")"
[ "$(children "$UP_api")" = "serve " ] || fail "api host runs: $(children "$UP_api")"
[ "$(children "$UP_worker")" = "worker " ] || fail "worker host runs: $(children "$UP_worker")"
[ ! -e "$T/shared/model.sock" ] || fail "a model server socket on the api/worker data directory"

# the api uses the remote model server; jobs run on the worker host
code=$(curl -s -o "$T/faces.json" -w '%{http_code}' -H 'Content-Type: application/json' \
  --data-binary "{\"path\": \"$T/media/a.jpg\"}" "http://127.0.0.1:$APIPORT/faces")
[ "$code" = 200 ] && grep -q '"faces"' "$T/faces.json" || fail "POST /faces: $code $(cat "$T/faces.json")"
for i in 1 2 3 4 5; do "$VISIOND" jobs enqueue sleep --payload '{"ms":20}' --queue "$Q" >/dev/null; done
all_done() { [ "$("$VISIOND" queue stats --queue "$Q" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"]["finished"])')" = 5 ]; }
wait_for 60 all_done || { cat "$T/worker.log"; fail "jobs not run by the worker host"; }
! grep -q "refused a client" "$T/gpu.log" || fail "the model server refused a client: $(grep refused "$T/gpu.log")"

# an api with another secret: refused by the model server, a 503 that says so (not a 401)
head -c 32 /dev/urandom | base64 >"$T/wrong" && chmod 600 "$T/wrong"
P3=$(freeport)
"$VISIOND" serve --listen "127.0.0.1:$P3" --data "$T/other" --media-root "$T/media" \
  --model-server "tcp:127.0.0.1:$MSPORT" --secret-file "$T/wrong" >"$T/wrong.log" 2>&1 &
track $!
wait_for 30 curl -sf "http://127.0.0.1:$P3/healthz" || { cat "$T/wrong.log"; fail "api with the wrong secret did not start"; }
code=$(curl -s -o "$T/faces2.json" -w '%{http_code}' -H 'Content-Type: application/json' \
  --data-binary "{\"path\": \"$T/media/a.jpg\"}" "http://127.0.0.1:$P3/faces")
[ "$code" = 503 ] && grep -q '"model_server_unavailable".*secret files differ' "$T/faces2.json" ||
  fail "POST /faces with the wrong secret: $code $(cat "$T/faces2.json")"
wait_for 10 grep -q "refused a client from 127.0.0.1" "$T/gpu.log" || fail "the model server did not log the refusal"

for h in api worker gpu; do
  pid=$(eval echo "\$UP_$h")
  kill -TERM "$pid"
  rc=0; wait "$pid" || rc=$?
  [ "$rc" = 0 ] || { cat "$T/$h.log"; fail "up ($h) exited $rc"; }
done
echo "up --role: ok (model-server, api and worker hosts; /faces and 5 jobs through them)"
