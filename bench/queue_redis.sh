#!/usr/bin/env bash
# queue_redis.sh: builds bench/queue_redis.c and compares, in one run, a Redis
# queue with appendfsync everysec, its peer with appendfsync always (both
# appendonly yes, throwaway dirs under $TMPDIR on the disk given), and a SQLite
# queue (synchronous=FULL) on the same disk.
#   bench/queue_redis.sh [N [K [DIR]]]     (defaults 2000 jobs, 4 clients, /tmp)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-2000}
K=${2:-4}
D=$(mktemp -d "${3:-/tmp}/vdbench.XXXXXX")
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$D"' EXIT
cc -O2 -std=gnu17 -I"$here/src" "$here/bench/queue_redis.c" "$here/build/libvisiond.a" \
  $(pkg-config --libs hiredis sqlite3 jansson libpq libcrypto) -lm -o "$D/queue_redis"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
urls=()
for fs in everysec always; do
  p=$(port)
  mkdir -p "$D/$fs"
  redis-server --port "$p" --bind 127.0.0.1 --dir "$D/$fs" --appendonly yes --appendfsync "$fs" \
    --save '' --daemonize no --logfile "$D/$fs/log" &
  pids+=("$!")
  for _ in $(seq 100); do [ "$(redis-cli -p "$p" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
  urls+=("redis://127.0.0.1:$p/0")
done
echo "queue_redis: $N jobs (enqueue + reserve + complete); ratios are to appendfsync everysec"
"$D/queue_redis" "$N" "$K" "${urls[@]}" "sqlite:$D/q.db"
