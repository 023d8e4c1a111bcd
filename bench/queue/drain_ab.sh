#!/usr/bin/env bash
# bench/queue/drain_ab.sh N REPS "full normal redis" BIN...: A/B of the forking drain (issue 17)
# on a shared machine: for each rep and backend, each binary in turn drains N queued no-op jobs
# (`worker --burst --concurrency 1`, the first binary enqueues); prints the wall time, the
# rate and the CPU per job of the whole process tree (supervisor, fork server, horses: the usage
# of the processes it reaped, bench/lib/tree_cpu.py). Redis needs REDIS_PORT (a throwaway
# redis-server; db 1 is flushed); "pg" needs PG_URL, a PostgreSQL database this bench owns
# (its public schema is dropped and made again before each run).
# Give each build its own binary path.
set -euo pipefail
N=$1; REPS=$2; BACKS=$3; shift 3
export VISIOND_TEST_JOBS=1 VISIOND_LOG_LEVEL=warn
tmp=$(mktemp -d "${TMPDIR:-/tmp}/drainab.XXXX")
port=${REDIS_PORT:-}
ENQ=$1
lib=$(cd "$(dirname "$0")/../lib" && pwd)
for _ in $(seq "$REPS"); do
 for b in $BACKS; do
  for bin in "$@"; do
   case $b in
    full) u="sqlite:$tmp/q.db";; normal) u="sqlite:$tmp/q.db?sync=normal";;
    redis) redis-cli -p "$port" -n 1 flushdb >/dev/null; u="redis://127.0.0.1:$port/1";;
    pg) psql "$PG_URL" -qc "DROP SCHEMA public CASCADE" -c "CREATE SCHEMA public" >/dev/null 2>&1; u=$PG_URL;;
   esac
   rm -f "$tmp"/q.db*
   "$ENQ" jobs enqueue noop --count "$N" --queue "$u" >/dev/null
   t0=$(date +%s.%N)
   /usr/bin/python3 "$lib/tree_cpu.py" "$tmp/cpu" "$bin" worker --queue "$u" --burst --concurrency 1 2>>"$tmp/log"
   t1=$(date +%s.%N)
   cpu=$(awk '{print $1 * 1000}' "$tmp/cpu")
   awk -v b="$b" -v bin="$bin" -v n="$N" -v a="$t0" -v z="$t1" -v c="$cpu" 'BEGIN{printf "%-6s %-28s wall %.3f s  cpu/job %.2f ms  %.0f jobs/s\n", b, bin, z-a, c/n, n/(z-a)}'
  done
 done
done
rm -rf "$tmp"
