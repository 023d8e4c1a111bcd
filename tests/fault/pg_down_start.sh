#!/usr/bin/env bash
# pg_down_start.sh: PostgreSQL is down when visiond starts. `visiond serve` and `visiond worker`
# (store and queue on PostgreSQL) each say clearly that the database cannot be reached (naming
# it without its password) and keep retrying, without exiting; once the server is up they work:
# a job posted to the API is run by the worker, the API lists sessions from the store.
# A cluster of its own (tests/lib/pg.sh) on a free loopback port. Skipped (77) without
# PostgreSQL 15.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pg.sh"
[ -x /usr/lib/postgresql/15/bin/postgres ] || skip "PostgreSQL 15 is not installed"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PGDIR=$T/pg
trap 'pg_cluster_stop "$PGDIR"; _vd_cleanup' EXIT # the server is not a tracked child
chmod 755 "$T" # the server runs as user postgres
# a cluster with its role and database, stopped: the server is down, not new
pg_cluster_start "$PGDIR" 127.0.0.1 "$PORT" >"$T/pg.log" 2>&1 || { cat "$T/pg.log" >&2; fail "pg_cluster_start"; }
URL=$(pg_cluster_url "$PGDIR")
pg_cluster_stop "$PGDIR"
SHOWN=$(printf %s "$URL" | sed 's#://\([^:/@]*\):[^@]*@#://\1:***@#')
PW=$(printf %s "$URL" | sed -n 's#^postgres://[^:]*:\([^@]*\)@.*#\1#p')
D=$T/data
mkdir -p "$D"
export VISIOND_LOG_LEVEL=info

# PostgreSQL is not running: both start, say so, and wait
"$VISIOND" serve --listen 127.0.0.1:0 --data "$D" --model-server none --store "$URL" --queue "$URL" \
  >"$T/api.out" 2>"$T/api.log" &
APID=$!
track "$APID"
"$VISIOND" worker --data "$D" --store "$URL" --queue "$URL" --name w --lease 5 >"$T/w.log" 2>&1 &
WPID=$!
track "$WPID"
says_down() { grep -qF "$SHOWN" "$1" && grep -qiE 'retry|retrying|waiting|not reachable|unreachable|cannot connect|down' "$1"; }
wait_for 30 says_down "$T/api.log" || { cat "$T/api.log" >&2; fail "serve did not say that PostgreSQL is down"; }
wait_for 30 says_down "$T/w.log" || { cat "$T/w.log" >&2; fail "the worker did not say that PostgreSQL is down"; }
sleep 3
kill -0 "$APID" 2>/dev/null || { cat "$T/api.log" >&2; fail "serve exited while PostgreSQL was down"; }
kill -0 "$WPID" 2>/dev/null || { cat "$T/w.log" >&2; fail "the worker exited while PostgreSQL was down"; }
for f in "$T/api.log" "$T/w.log"; do
  [ -z "$PW" ] || ! grep -qF -- "$PW@" "$f" || fail "$f shows the password"
done
echo "while PostgreSQL is down:"
echo "  serve:  $(grep -F "$SHOWN" "$T/api.log" | head -1 | cut -c1-220)"
echo "  worker: $(grep -F "$SHOWN" "$T/w.log" | head -1 | cut -c1-220)"
echo "  serve said it $(grep -cF "$SHOWN" "$T/api.log") times, the worker $(grep -cF "$SHOWN" "$T/w.log") times"

# PostgreSQL comes up: both work
pg_cluster_restart "$PGDIR" >>"$T/pg.log" 2>&1 || { cat "$T/pg.log" >&2; fail "pg_cluster_restart"; }
wait_for 60 test -s "$T/api.out" || { cat "$T/api.log" >&2; fail "serve never listened after PostgreSQL came up"; }
API_PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$T/api.out")
API="http://127.0.0.1:$API_PORT"
post_job() { req POST /jobs -H 'Content-Type: application/json' --data-binary '{"type": "noop"}'; [ "$STATUS" = 201 ]; }
wait_for 60 post_job || fail "POST /jobs after PostgreSQL came up: $STATUS $BODY"
J=$(jget id)
finished() { req GET "/jobs/$J"; [ "$(jget state)" = finished ]; }
wait_for 60 finished || { tail "$T/w.log" >&2; fail "the worker did not run job $J: $BODY"; }
ran_by=$(jget worker)
req GET /training/sessions
[ "$STATUS" = 200 ] || fail "GET /training/sessions from the store: $STATUS $BODY"
echo "after PostgreSQL came up: job $J finished by $ran_by, the store answers"
kill -TERM "$APID" "$WPID"
wait "$APID" || fail "serve exited $? on SIGTERM"
wait "$WPID" || fail "the worker exited $? on SIGTERM"
pg_cluster_stop "$PGDIR"
echo "pg_down_start: ok"
