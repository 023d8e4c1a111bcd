# multihost.sh: hosts for multi-host tests and benchmarks (tests/integration/multihost.sh,
# bench/multihost/run.sh): network namespaces (tests/lib/netns.sh), each with its own address
# and its own --data directory, talking over TCP only. Source after common.sh, api.sh and
# pipeline.sh (it sources netns.sh and pg.sh).
#   mh_init QUEUE              QUEUE redis|postgres: checks the prerequisites (skips, 77),
#                              makes hosts db api ms cl (and the switch)
#   mh_db                      db host: PostgreSQL 15 on its address (tests/lib/pg.sh), the
#                              store database ($STORE) and the queue ($QURL: a second
#                              database, or redis-server on the db host)
#   mh_newdb NAME              prints the URL of a fresh database NAME on the db host
#   mh_ms                      ms host: `visiond model-server` on TCP at its address with a
#                              shared secret ($T/secret, $VISIOND_MODEL_SECRET_FILE for the
#                              clients); sets $MSURL; ms_up starts it again after a kill
#   mh_api                     api host: `visiond serve` on its address, with a token, the
#                              store, the queue, the model server and the media root $T/media
#   worker_up HOST [ARGS...]   makes HOST when needed and starts `visiond worker --name HOST`
#                              there (concurrency 1, lease 3 s unless ARGS say otherwise)
#   req METHOD PATH [ARGS...]  api.sh's req, from the client host cl, with the token
# Logs: $LOGS/HOST.log; on failure the end of each is shown.
. "$VISIOND_SOURCE_DIR/tests/lib/netns.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pg.sh"
LOGS=$T/logs
mkdir -p "$LOGS"
fail() {
  local f
  for f in "$LOGS"/*.log; do [ -f "$f" ] && { echo "--- ${f##*/}:" >&2; tail -n 12 "$f" >&2; }; done
  echo "FAIL: $*" >&2
  exit 1
}

mh_init() {
  MH_QUEUE=$1
  netns_init
  [ -x /usr/lib/postgresql/15/bin/postgres ] || skip "PostgreSQL 15 is not installed"
  [ "$MH_QUEUE" != redis ] || command -v redis-server >/dev/null || skip "redis-server is not installed"
  local h
  for h in db api ms cl; do netns_host "$h"; done
  DB=$(host_addr db) APIA=$(host_addr api) MSA=$(host_addr ms)
  mkdir -p "$T/h/ms" "$T/h/api"
}

_pg_on_db() { # FUNCTION ARGS...: a tests/lib/pg.sh function, run on the db host
  on db bash -c '. "$VISIOND_SOURCE_DIR/tests/lib/pg.sh"; "$@"' _ "$@"
}
mh_newdb() {
  psql "$(pg_cluster_admin "$T/pg")" -qAt -v ON_ERROR_STOP=1 \
    -c "CREATE DATABASE \"$1\" OWNER visiond" >/dev/null || return 1
  pg_cluster_url "$T/pg" "$1"
}

mh_db() {
  chmod 755 "$T" # the server runs as user postgres
  _pg_on_db pg_cluster_start "$T/pg" "$DB" 5432 >>"$LOGS/db.log" 2>&1 ||
    fail "PostgreSQL did not start on the db host"
  STORE=$(mh_newdb vd_store) || fail "cannot make the store database"
  if [ "$MH_QUEUE" = postgres ]; then
    QURL=$(mh_newdb vd_queue) || fail "cannot make the queue database"
  else
    mkdir -p "$T/redis"
    on_bg db "$LOGS/redis.log" redis-server --bind "$DB" --port 6379 --save '' --appendonly no \
      --dir "$T/redis" --protected-mode no
    QURL="redis://$DB:6379/0"
    wait_for 30 on db redis-cli -h "$DB" -p 6379 ping || fail "redis-server did not start on the db host"
  fi
}

ms_up() {
  on_bg ms "$LOGS/ms.log" "$VISIOND" model-server "${MS_ARGS[@]}"
  MS_PID=$ON_PID
  local n=${1:-1}
  wait_for 120 bash -c "[ \$(grep -c '\"ready\"' '$LOGS/ms.log') -ge $n ]" || fail "the model server is not ready"
}
MS_STARTS=0
mh_ms() {
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/secret"
  chmod 600 "$T/secret"
  export VISIOND_MODEL_SECRET_FILE=$T/secret # every client (api, workers) reads it
  MS_ARGS=(--data "$T/h/ms" --models "$MODELS" --no-socket --tcp "$MSA:7070" --threads 2)
  if "$VISIOND" model-server --help 2>&1 | grep -q -- --secret-file; then
    MS_ARGS+=(--secret-file "$T/secret")
  else
    MS_ARGS+=(--allow-remote) # a build without the shared secret (#13 item 4)
    echo "NOTE: this visiond has no model-server --secret-file; the model server runs unauthenticated"
  fi
  MSURL="tcp:$MSA:7070"
  ms_start_again
}
ms_start_again() { MS_STARTS=$((MS_STARTS + 1)); ms_up "$MS_STARTS"; }

req() {
  local method=$1 path=$2; shift 2
  local bf="$T/body.$BASHPID" hf="$T/hdrs.$BASHPID" # per (sub)shell: safe for concurrent clients
  STATUS=$(on cl curl -s --max-time 60 -o "$bf" -D "$hf" -w '%{http_code}' \
    -H "Authorization: Bearer $TOKEN" -X "$method" "$@" "$API$path") || true
  BODY=$(cat "$bf" 2>/dev/null || true)
  HDRS=$(cat "$hf" 2>/dev/null || true)
}

mh_api() {
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/token"
  TOKEN=$(cat "$T/token")
  on_bg api "$LOGS/api.log" "$VISIOND" serve --listen "$APIA:8080" --token-file "$T/token" \
    --data "$T/h/api" --store "$STORE" --queue "$QURL" --model-server "$MSURL" --media-root "$T/media"
  API_PID=$ON_PID
  API="http://$APIA:8080"
  wait_for 60 _api_ready || fail "the api did not come up at $API"
}
_api_ready() { req GET /healthz; [ "$STATUS" = 200 ]; }

declare -A WPID
worker_up() { # HOST [ARGS...]
  local h=$1; shift
  local v="NETNS_ADDR_$h"
  [ -n "${!v:-}" ] || netns_host "$h"
  mkdir -p "$T/h/$h"
  on_bg "$h" "$LOGS/$h.log" "$VISIOND" worker --data "$T/h/$h" --name "$h" --queue "$QURL" \
    --store "$STORE" --model-server "$MSURL" --media-root "$T/media" --concurrency 1 --lease 3 "$@"
  WPID[$h]=$ON_PID
}
