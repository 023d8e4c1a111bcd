#!/usr/bin/env bash
# bench/queue/run.sh: enqueue and drain rates of no-op jobs, visiond against RQ,
# in the same run on the same machine.
#
#   bench/queue/run.sh [VISIOND_BINARY]       (default: build/visiond)
#   BENCH_JOBS=N          jobs per measurement (default 1000)
#   BENCH_QUEUE=URL       visiond's queue (default: sqlite:TMP/q.db?sync=normal, fresh per run)
#   VISIOND_BENCH_REDIS=1 also run visiond on redis://127.0.0.1:PORT/1 of the same redis-server
#   VISIOND_BENCH_PG=URL  also run visiond on this PostgreSQL queue (an empty database, e.g.
#                         `. tests/lib/pg.sh; pg_newdb bench`; its finished jobs are purged)
#
# visiond: `visiond jobs enqueue noop --count N` (one process), then `visiond worker
# --burst` forking a work-horse per job (concurrency 1, like one RQ worker, and 4),
# and `--no-fork` (handlers inline). RQ (Debian's python3-rq under /usr/bin/python3):
# N x queue.enqueue(noop) in one process, then `rq worker --burst`, which forks a
# work-horse per job, on a throwaway redis-server on a loopback port (no persistence).
# Drain times are the worker process's wall time, start to exit (RQ's includes its
# interpreter start-up, about 0.3 s). Prints jobs/s and the ratios; the target is a
# forking drain rate >= 10x RQ's.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export VISIOND_TEST_JOBS=1 # `noop` is a test job type (src/jobspec/jobspec.h)
root=$(cd "$here/../.." && pwd)
VISIOND=${1:-$root/build/visiond}
N=${BENCH_JOBS:-1000}
PY=/usr/bin/python3
[ -x "$VISIOND" ] || { echo "bench: no visiond binary at $VISIOND (build first)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "bench: redis-server missing (scripts/setup.sh)" >&2; exit 1; }
$PY -c "import rq" 2>/dev/null || { echo "bench: $PY has no rq (python3-rq, scripts/setup.sh)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdbench.XXXXXX")
redis_pid=""
cleanup() {
  [ -z "$redis_pid" ] || kill "$redis_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
export VISIOND_LOG_LEVEL=warn

now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { d = b - a; printf "%.0f", (d > 0 ? n / d : 0) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }'; }
row() { printf "  %-52s %8s jobs/s\n" "$1" "$2"; }

# ---- redis-server on a free loopback port
port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$port" --dir "$tmp" --save '' --appendonly no \
  --daemonize no --logfile "$tmp/redis.log" &
redis_pid=$!
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
redis-cli -p "$port" ping >/dev/null || { echo "bench: redis-server did not start" >&2; exit 1; }

echo "bench/queue: $N no-op jobs per measurement; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- visiond: one fresh queue per measurement
qn=0
fresh_queue() { # prints a URL of an empty queue holding N noop jobs; sets ENQ_RATE
  local url=$1
  local t0 t1
  t0=$(now)
  "$VISIOND" jobs enqueue noop --count "$N" --queue "$url" >/dev/null || return 1
  t1=$(now)
  ENQ_RATE=$(rate "$N" "$t0" "$t1")
}
sqlite_url() { qn=$((qn + 1)); echo "${BENCH_QUEUE:-sqlite:$tmp/q$qn.db?sync=normal}"; }
drain() { # URL ARGS...: runs a burst worker, prints the drain rate
  local url=$1; shift
  local t0 t1
  t0=$(now)
  "$VISIOND" worker --queue "$url" --burst "$@" 2>>"$tmp/worker.log" || {
    echo "bench: visiond worker failed: $(tail -1 "$tmp/worker.log")" >&2
    exit 1
  }
  t1=$(now)
  local left
  left=$("$VISIOND" jobs list --state queued --queue "$url" --json | $PY -c 'import json,sys; print(len(json.load(sys.stdin)))')
  [ "$left" = 0 ] || { echo "bench: $left jobs left after the drain" >&2; exit 1; }
  rate "$N" "$t0" "$t1"
}

echo "visiond (sqlite WAL, synchronous=NORMAL):"
u=$(sqlite_url); fresh_queue "$u"; vd_enq=$ENQ_RATE
row "enqueue (jobs enqueue --count, one process)" "$vd_enq"
vd_fork1=$(drain "$u" --concurrency 1)
row "drain, fork per job, concurrency 1" "$vd_fork1"
u=$(sqlite_url); fresh_queue "$u"
vd_fork4=$(drain "$u" --concurrency 4)
row "drain, fork per job, concurrency 4" "$vd_fork4"
u=$(sqlite_url); fresh_queue "$u"
vd_nofork=$(drain "$u" --no-fork)
row "drain, --no-fork (inline)" "$vd_nofork"
if [ -z "${BENCH_QUEUE:-}" ]; then
  qn=$((qn + 1)); u="sqlite:$tmp/q$qn.db" # the default: synchronous=FULL
  fresh_queue "$u"
  row "enqueue, synchronous=FULL" "$ENQ_RATE"
  row "drain, fork per job, concurrency 1, synchronous=FULL" "$(drain "$u" --concurrency 1)"
fi

if [ -n "${VISIOND_BENCH_REDIS:-}" ]; then
  u="redis://127.0.0.1:$port/1"
  echo "visiond (redis backend, same redis-server, db 1):"
  if fresh_queue "$u" 2>"$tmp/redis_err"; then
    vr_enq=$ENQ_RATE
    row "enqueue" "$vr_enq"
    vr_fork1=$(drain "$u" --concurrency 1)
    row "drain, fork per job, concurrency 1" "$vr_fork1"
    redis-cli -p "$port" -n 1 flushdb >/dev/null
    fresh_queue "$u"
    row "drain, fork per job, concurrency 4" "$(drain "$u" --concurrency 4)"
  else
    echo "  not available: $(head -1 "$tmp/redis_err")"
  fi
fi

if [ -n "${VISIOND_BENCH_PG:-}" ]; then
  u=$VISIOND_BENCH_PG
  echo "visiond (postgres backend):"
  if "$VISIOND" jobs purge --queue "$u" >/dev/null 2>"$tmp/pg_err" && fresh_queue "$u"; then
    vp_enq=$ENQ_RATE
    row "enqueue" "$vp_enq"
    vp_fork1=$(drain "$u" --concurrency 1)
    row "drain, fork per job, concurrency 1" "$vp_fork1"
    "$VISIOND" jobs purge --queue "$u" >/dev/null
    fresh_queue "$u"
    row "drain, fork per job, concurrency 4" "$(drain "$u" --concurrency 4)"
    "$VISIOND" jobs purge --queue "$u" >/dev/null
  else
    echo "  not available: $(head -1 "$tmp/pg_err")"
  fi
fi

# ---- RQ
echo "rq $($PY -c 'import rq; print(rq.__version__)') (redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), no persistence):"
rurl="redis://127.0.0.1:$port/0"
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
secs=$(cd "$here" && $PY rq_bench.py enqueue "$rurl" "$N")
rq_enq=$(awk -v n="$N" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
row "enqueue (queue.enqueue in one process)" "$rq_enq"
t0=$(now)
(cd "$here" && $PY -m rq.cli worker --burst --quiet --url "$rurl" default >>"$tmp/rq.log" 2>&1)
t1=$(now)
rq_drain=$(rate "$N" "$t0" "$t1")
row "drain, rq worker --burst (fork per job)" "$rq_drain"
counts=$(cd "$here" && $PY rq_bench.py count "$rurl")
[ "${counts%%,*}" = "$N" ] || { echo "bench: rq finished ${counts} (finished,failed,queued), not $N" >&2; exit 1; }

echo "ratios (visiond / rq):"
echo "  enqueue:                                  $(ratio "$vd_enq" "$rq_enq")x"
echo "  forking drain, one horse at a time:       $(ratio "$vd_fork1" "$rq_drain")x   (target >= 10x)"
echo "  forking drain, concurrency 4 vs 1 rq:     $(ratio "$vd_fork4" "$rq_drain")x"
echo "  inline drain (--no-fork):                 $(ratio "$vd_nofork" "$rq_drain")x"
if [ -n "${vp_fork1:-}" ]; then
  echo "  postgres backend: enqueue                 $(ratio "$vp_enq" "$rq_enq")x   ($(ratio "$vp_enq" "$vd_enq")x sqlite's)"
  echo "  postgres backend: forking drain, one horse $(ratio "$vp_fork1" "$rq_drain")x   ($(ratio "$vp_fork1" "$vd_fork1")x sqlite's)"
fi
if [ -n "${vr_fork1:-}" ]; then
  echo "  redis backend: enqueue                    $(ratio "$vr_enq" "$rq_enq")x"
  echo "  redis backend: forking drain, one horse   $(ratio "$vr_fork1" "$rq_drain")x"
fi
