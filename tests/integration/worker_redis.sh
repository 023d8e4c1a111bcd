#!/usr/bin/env bash
# worker_redis.sh: worker_basic.sh again, on the Redis queue backend: the
# supervisor and its horses must behave the same on every backend. Needs
# $VISIOND_TEST_REDIS (redis://HOST:PORT/DB, as scripts/test.sh provides) and a
# build with the Redis backend; skipped otherwise. Uses database DB+7 of that
# server (flushed first), so as not to race the queue contract tests on DB.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
[ -n "${VISIOND_TEST_REDIS:-}" ] || skip "VISIOND_TEST_REDIS is not set"
base=${VISIOND_TEST_REDIS%/*}
db=${VISIOND_TEST_REDIS##*/}
case "$db" in '' | *[!0-9]*) db=0 ;; esac
url="$base/$((db + 7))"
hostport=${base#redis://}
command -v redis-cli >/dev/null || skip "redis-cli missing"
redis-cli -h "${hostport%:*}" -p "${hostport##*:}" -n $((db + 7)) flushdb >/dev/null 2>&1 ||
  skip "cannot reach redis at $hostport"
if ! "$VISIOND" jobs list --queue "$url" >"$T/probe" 2>&1; then
  grep -q "not built in" "$T/probe" && skip "the Redis backend is not built in"
  fail "redis queue unusable: $(cat "$T/probe")"
fi
WORKER_TEST_QUEUE=$url bash "$VISIOND_SOURCE_DIR/tests/integration/worker_basic.sh"
