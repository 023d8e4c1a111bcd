#!/usr/bin/env bash
# redis_full.sh: the Redis queue backend runs out of memory (maxmemory 4 MB, policy
# noeviction, as docs/queue-redis.md recommends) under a running `visiond serve`:
# enqueues past that point fail with 507 storage_full (Redis's OOM error quoted), the
# server keeps answering reads, and once maxmemory is raised enqueues succeed again and
# every accepted job is still there.
# Skipped (77) without redis-server / redis-cli.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
command -v redis-server >/dev/null || skip "redis-server is not installed"
command -v redis-cli >/dev/null || skip "redis-cli is not installed"
command -v curl >/dev/null || skip "curl is not installed"

PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$T/redis"
redis-server --port "$PORT" --bind 127.0.0.1 --dir "$T/redis" --save '' --appendonly no \
  --maxmemory 4mb --maxmemory-policy noeviction --logfile "$T/redis.log" &
track $!
wait_for 20 redis-cli -p "$PORT" ping || fail "redis-server did not start"
api_start --data "$T/data" --threads 2 --model-server none --queue "redis://127.0.0.1:$PORT/0"

J=(-H 'Content-Type: application/json')
fill_queue redis.fill 400
accepted=$ACCEPTED
grep -q "OOM" <<<"$BODY" || fail "the error does not quote Redis's OOM: $BODY"

kill -0 "$API_PID" || fail "serve died with Redis full"
req GET "/jobs?type=redis.fill&limit=1000"
[ "$STATUS" = 200 ] && [ "$(jget count)" = "$accepted" ] || fail "listing with Redis full: $STATUS $(jget count 2>/dev/null), want $accepted"

redis-cli -p "$PORT" config set maxmemory 64mb >/dev/null || fail "cannot raise maxmemory"
for _ in 1 2 3; do
  req POST /jobs "${J[@]}" --data-binary @"$BIG_JOB"
  [ "$STATUS" = 201 ] || fail "enqueue after maxmemory was raised: $STATUS $BODY"
done
req GET "/jobs?type=redis.fill&limit=1000"
[ "$(jget count)" = $((accepted + 3)) ] || fail "jobs lost across the full Redis: $(jget count), want $((accepted + 3))"
api_stop
echo "PASS redis_full ($accepted accepted before Redis was full)"
