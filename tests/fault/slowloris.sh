# slowloris.sh: clients that open connections and then send almost nothing
# (an HTTP request line plus one header byte a second; 7 bytes of a model-server
# frame header) do not keep others from being served: while 200 such
# connections are held against the API and 200 against the model server,
# ordinary requests to both succeed. The model server's connection limit is
# the one way to lock others out (it answers "busy" past --max-conns): shown
# with a small limit, and recovery once the slow clients leave.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/fault.sh"
command -v curl >/dev/null || skip "curl is not installed"

mkdir -p "$T/models" "$T/data"
ms_start "$T/ms" "$T/models"
api_start --data "$T/data" --threads 2 --model-server "unix:$MS_SOCK"

$FAULTNET hold-http "$API_PORT" 200 30 >"$T/held-api" &
H1=$!
$FAULTNET hold-unix "$MS_SOCK" 200 30 >"$T/held-ms" &
H2=$!
wait_for 20 test -s "$T/held-api" || fail "the HTTP holder did not start"
wait_for 20 test -s "$T/held-ms" || fail "the model-server holder did not start"
echo "slow connections held: api $(cat "$T/held-api"), model server $(cat "$T/held-ms")"
[ "$(cat "$T/held-api")" = 200 ] && [ "$(cat "$T/held-ms")" = 200 ] || fail "could not open the slow connections"
for i in $(seq 1 10); do
  t0=$(date +%s%N)
  req POST /jobs -H 'Content-Type: application/json' -d "{\"any_type\":true,\"type\":\"slow.$i\"}"
  [ "$STATUS" = 201 ] || fail "enqueue $i while slow clients hold connections: $STATUS $BODY"
  req GET /healthz
  [ "$STATUS" = 200 ] && [ "$(jget model_server.ok)" = true ] || fail "healthz $i: $STATUS $BODY"
  $FAULTNET health "$MS_SOCK" >/dev/null || fail "model-server health $i while slow clients hold connections"
  echo "round $i: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
done
kill "$H1" "$H2" 2>/dev/null || true
wait "$H1" "$H2" 2>/dev/null || true
ms_stop
api_stop

# With --max-conns 20, 30 slow clients take every slot: others get "busy", then recover.
ms_start "$T/ms2" "$T/models" --max-conns 20
$FAULTNET hold-unix "$MS_SOCK" 30 6 >"$T/held" &
H3=$!
wait_for 20 test -s "$T/held" || fail "the holder did not start"
sleep 0.5
out=$($FAULTNET health "$MS_SOCK" 2>&1 || true)
echo "health with every slot taken: $out"
grep -q "(0, 8," <<<"$out" || fail "past --max-conns a client should get busy (status 8): $out"
wait "$H3" || true
wait_for 30 $FAULTNET health "$MS_SOCK" || fail "no recovery once the slow clients left"
ms_stop
echo "PASS slowloris"
