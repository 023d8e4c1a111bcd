#!/usr/bin/env bash
# chaos_redis.sh: tests/fault/chaos.sh on the Redis backend: a redis-server of the test's
# own (loopback port, appendonly yes, appendfsync always) is SIGKILLed and restarted too.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/chaos.sh"
command -v redis-server >/dev/null || skip "redis-server missing"
chaos_run redis
