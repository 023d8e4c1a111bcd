# api_models.sh: `visiond serve` with a real `visiond model-server` (the repo's
# model metadata files): GET /models relays the model server's list,
# /healthz reports it; when the model server goes away /models answers 503
# and /healthz says "degraded" (200: the job routes still work); when it is
# back, the API reconnects by itself.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
command -v curl >/dev/null || skip "curl is not installed"

MS="$T/ms"
mkdir -p "$MS"
ms_start() {
  "$VISIOND" model-server --data "$MS" --models "$VISIOND_SOURCE_DIR/models" >"$T/ms.out" 2>"$T/ms.log" &
  MS_PID=$!
  track "$MS_PID"
  wait_for 30 test -S "$MS/model.sock" || { cat "$T/ms.log" >&2; fail "model server did not start"; }
}
ms_start
api_start --data "$T/api" --model-server "unix:$MS/model.sock"

req GET /models
[ "$STATUS" = 200 ] || fail "models: $STATUS $BODY"
names=$(printf '%s' "$BODY" | /usr/bin/python3 -c '
import json, sys
b = json.load(sys.stdin)
print(" ".join(sorted([m["name"] for m in b["models"]] + [i["file"].rsplit("/", 1)[-1] for i in b["invalid"]])))')
for f in "$VISIOND_SOURCE_DIR"/models/*.json; do
  n=$(basename "$f" .json)
  grep -qw -- "$n" <<<"$names" || grep -q -- "$n.json" <<<"$names" || fail "model $n is not listed: $names"
done
req GET /healthz
[ "$STATUS" = 200 ] && [ "$(jget status)" = ok ] && [ "$(jget model_server.ok)" = true ] ||
  fail "healthz with a model server: $STATUS $BODY"
[ "$(jget model_server.health.status)" = ok ] || fail "model server health: $BODY"

# The model server goes away.
kill -TERM "$MS_PID"; wait "$MS_PID" || true
expect_error 503 model_server_unavailable GET /models
req GET /healthz
[ "$STATUS" = 200 ] && [ "$(jget status)" = degraded ] && [ "$(jget model_server.ok)" = false ] ||
  fail "healthz without the model server: $STATUS $BODY"
req POST /jobs -H 'Content-Type: application/json' -d '{"any_type":true,"type":"demo"}'
[ "$STATUS" = 201 ] || fail "job routes must work without the model server: $STATUS"

# ...and comes back: the pooled client reconnects.
ms_start
req GET /models
[ "$STATUS" = 200 ] || fail "models after the model server came back: $STATUS $BODY"
req GET /healthz
[ "$(jget status)" = ok ] || fail "healthz after the model server came back: $BODY"
kill -TERM "$MS_PID"; wait "$MS_PID" || true
api_stop

# No model server configured at all.
api_start --data "$T/api" --model-server none
expect_error 503 model_server_unavailable GET /models
grep -q "no model server is configured" <<<"$BODY" || fail "message: $BODY"
req GET /healthz
[ "$(jget status)" = ok ] && [ "$(jget model_server.configured)" = false ] || fail "healthz, none: $BODY"
api_stop
rc=0
"$VISIOND" serve --listen 127.0.0.1:0 --data "$T/api" --model-server "unix:" >"$T/o" 2>"$T/e" || rc=$?
[ "$rc" = 2 ] || fail "a malformed model-server address must be refused as a configuration error (exit 2, docs/api.md): rc=$rc $(cat "$T/e")"
echo "PASS api_models"
