#!/usr/bin/env bash
# store_pg_down.sh: PostgreSQL down when a process starts: `visiond worker --store URL`
# says so (one line per attempt, the URL without its password) and retries; once a server
# comes up on that address the worker migrates the empty database and runs (--burst: exits
# 0). A private cluster on a free loopback port (tests/lib/pg.sh); skipped without
# $VISIOND_TEST_PG (no PostgreSQL on this machine).
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pg.sh"
[ -n "${VISIOND_TEST_PG:-}" ] || skip "VISIOND_TEST_PG is not set"
[ "$(id -u)" != 0 ] || chmod 755 "$T" # the server runs as user postgres
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir="$T/pg"
trap 'pg_cluster_stop "$dir"; _vd_cleanup' EXIT
url="postgres://visiond:visiond@127.0.0.1:$port/visiond"
# The cluster is made (role, database) and stopped first, so that the worker meets a
# server that is down rather than one still creating its database.
pg_cluster_start "$dir" 127.0.0.1 "$port" || fail "cannot make a cluster"
pg_cluster_stop "$dir"

"$VISIOND" worker --data "$T/data" --store "$url" --burst >"$T/w.log" 2>&1 &
w=$!
track "$w"
wait_for 30 grep -q "not reachable" "$T/w.log" || fail "the worker did not say the store is down: $(cat "$T/w.log")"
! grep -q "visiond:visiond@" "$T/w.log" || fail "the password was shown: $(cat "$T/w.log")"
pg_cluster_restart "$dir" || fail "cannot start the cluster again"
rc=0; wait "$w" || rc=$?
[ "$rc" = 0 ] || fail "worker exited $rc once the server was up: $(cat "$T/w.log")"
v=$(psql "$url" -qAt -c 'SELECT version FROM visiond_store_schema')
[ "${v:-0}" -ge 2 ] || fail "the store was not migrated (schema version '$v')"
echo "down at start: $(grep -c 'not reachable' "$T/w.log") attempt(s) logged, then migrated and ran"
echo "PASS store_pg_down"
