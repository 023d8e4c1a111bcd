# model_server_busy.sh: the model server's per-model queue fills up: clients
# get "busy" (VD_ERR_BUSY) for what does not fit, every request is answered
# (no dropped connection, no hang), the server keeps running, and once the
# flood is over a single request succeeds again.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/fault.sh"
blazeface_models "$T/models"
ms_start "$T/ms" "$T/models" --queue-max 2 --threads 1 --preload blazeface_front
$FAULTNET infer "$MS_SOCK" blazeface_front 128 128 3 >/dev/null || fail "a first inference failed"

# 120 requests pipelined over 8 connections at once, queue bound 2 items.
counts=$($FAULTNET flood "$MS_SOCK" blazeface_front 128 128 3 120 8)
echo "flood: $counts"
/usr/bin/python3 - "$counts" <<'PY' || fail "unexpected answers to the flood: $counts"
import json, sys
c = json.loads(sys.argv[1])
assert sum(c.values()) == 120, c               # every request answered
assert set(c) <= {"ok", "busy"}, c             # nothing but results and busy
assert c.get("busy", 0) >= 1 and c.get("ok", 0) >= 1, c
PY
kill -0 "$MS_PID" || fail "the model server died under the flood"
grep -qi "busy\|queue" "$MS_LOG" && echo "log: $(grep -ci 'busy\|queue' "$MS_LOG") lines about the full queue"
# Recovery: the queue drained, one request goes through.
$FAULTNET infer "$MS_SOCK" blazeface_front 128 128 3 >/dev/null || fail "no recovery after the flood"
$FAULTNET health "$MS_SOCK" >/dev/null || fail "health after the flood"
ms_stop
echo "PASS model_server_busy"
