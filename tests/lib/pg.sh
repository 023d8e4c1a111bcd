# pg.sh: throwaway PostgreSQL 15 clusters for tests. Source it.
#
#   pg_cluster_start DIR ADDR PORT   initdb in DIR/data (once) and start it listening on ADDR:PORT
#                                    and on a Unix socket in DIR; role visiond (password visiond,
#                                    CREATEDB) and database visiond; TCP needs the password
#                                    (scram-sha-256), the socket trusts
#   pg_cluster_stop DIR              fast shutdown
#   pg_cluster_kill DIR              SIGKILL the postmaster and every backend (a crash)
#   pg_cluster_restart DIR           start again with the options of the last start
#   pg_cluster_url DIR [DB]          postgres://visiond:visiond@ADDR:PORT/DB
#   pg_cluster_admin DIR             keyword form for the superuser over the socket
#   pg_newdb NAME                    a fresh, empty database NAME_<pid> on $VISIOND_TEST_PG's
#                                    cluster (through $VISIOND_TEST_PG_ADMIN); prints its URL
#
# As root, the server runs as user postgres (initdb refuses root), so DIR is handed to it.
# fsync is off: the tests kill processes, not machines, and the OS keeps what was written.
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

_pg_as() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

pg_cluster_start() {
  local dir=$1 addr=$2 port=$3
  mkdir -p "$dir"
  [ "$(id -u)" != 0 ] || chown postgres: "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    _pg_as "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; return 1; }
    cat >"$dir/data/pg_hba.conf" <<'EOF'
local all all trust
host all all 0.0.0.0/0 scram-sha-256
host all all ::/0 scram-sha-256
EOF
  fi
  printf '%s %s\n' "$addr" "$port" >"$dir/listen"
  pg_cluster_restart "$dir" || return 1
  if [ ! -f "$dir/roles.done" ]; then
    psql "$(pg_cluster_admin "$dir")" -qAt -v ON_ERROR_STOP=1 \
      -c "CREATE ROLE visiond LOGIN CREATEDB PASSWORD 'visiond'" \
      -c "CREATE DATABASE visiond OWNER visiond" >/dev/null || return 1
    touch "$dir/roles.done"
  fi
}

pg_cluster_restart() {
  local dir=$1 addr port
  read -r addr port <"$dir/listen"
  _pg_as "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
    -o "-c listen_addresses='$addr' -p $port -k $dir -c fsync=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB" \
    >/dev/null || { tail -20 "$dir/server.log" >&2; return 1; }
}

pg_cluster_stop() { _pg_as "$PG_BIN/pg_ctl" -D "$1/data" -m fast -w stop >/dev/null 2>&1 || true; }

pg_cluster_kill() {
  local pid
  pid=$(head -1 "$1/data/postmaster.pid" 2>/dev/null) || return 0
  kill -9 $(pgrep -P "$pid") "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
}

pg_cluster_url() {
  local addr port
  read -r addr port <"$1/listen"
  case $addr in *:*) addr="[$addr]" ;; esac
  printf 'postgres://visiond:visiond@%s:%s/%s\n' "$addr" "$port" "${2:-visiond}"
}

pg_cluster_admin() {
  local addr port
  read -r addr port <"$1/listen"
  printf 'host=%s port=%s user=postgres dbname=postgres\n' "$1" "$port"
}

pg_newdb() {
  : "${VISIOND_TEST_PG:?}" "${VISIOND_TEST_PG_ADMIN:?}"
  local name="${1}_$$"
  psql "$VISIOND_TEST_PG_ADMIN" -qAt -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" \
    -c "CREATE DATABASE \"$name\" OWNER visiond" >/dev/null || return 1
  printf '%s/%s\n' "${VISIOND_TEST_PG%/*}" "$name"
}
