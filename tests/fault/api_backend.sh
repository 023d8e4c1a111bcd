# api_backend.sh: the job queue's database is destroyed under a running
# `visiond serve`: requests get 503 backend_unavailable (with Retry-After),
# /healthz says unavailable, /metrics still answers (visiond_queue_up 0), the
# server keeps running; once a usable database is back, it recovers by itself
# (the broken queue handle was dropped and a fresh one is opened).
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
command -v curl >/dev/null || skip "curl is not installed"

D="$T/data"
api_start --data "$D" --threads 1 --model-server none
J=(-H 'Content-Type: application/json')
req POST /jobs "${J[@]}" -d '{"type":"demo"}'
[ "$STATUS" = 201 ] || fail "enqueue: $STATUS $BODY"
ID=$(jget id)

# Overwrite the database, its WAL and its shared-memory index in place.
for f in visiond.db visiond.db-wal visiond.db-shm; do
  [ -f "$D/$f" ] || continue
  head -c "$(stat -c %s "$D/$f")" /dev/urandom | dd of="$D/$f" conv=notrunc status=none
done

expect_error 503 backend_unavailable GET /jobs
grep -qi '^retry-after: 1' <<<"$HDRS" || fail "503 without Retry-After: $HDRS"
expect_error 503 backend_unavailable GET "/jobs/$ID"
expect_error 503 backend_unavailable POST /jobs "${J[@]}" -d '{"type":"demo"}'
expect_error 503 backend_unavailable DELETE "/jobs/$ID"
req GET /healthz
[ "$STATUS" = 503 ] && [ "$(jget status)" = unavailable ] && [ "$(jget queue.ok)" = false ] ||
  fail "healthz with a broken queue: $STATUS $BODY"
req GET /metrics
[ "$STATUS" = 200 ] && grep -q '^visiond_queue_up 0$' <<<"$BODY" || fail "metrics with a broken queue: $STATUS"
grep -q '^visiond_jobs{' <<<"$BODY" && fail "job gauges reported without a queue"
# Bad requests are still told apart from the backend being down.
expect_error 404 not_found GET /nowhere
expect_error 400 invalid_json POST /jobs "${J[@]}" -d '{'

# A usable database again: the next request opens a fresh handle.
rm -f "$D/visiond.db" "$D/visiond.db-wal" "$D/visiond.db-shm"
req GET /healthz
[ "$STATUS" = 200 ] && [ "$(jget status)" = ok ] || fail "no recovery: $STATUS $BODY"
req POST /jobs "${J[@]}" -d '{"type":"demo.after"}'
[ "$STATUS" = 201 ] || fail "enqueue after recovery: $STATUS $BODY"
req GET /jobs
[ "$STATUS" = 200 ] && [ "$(jget count)" = 1 ] && [ "$(jget jobs.0.type)" = demo.after ] || fail "list after recovery: $BODY"
api_stop
echo "PASS api_backend"
