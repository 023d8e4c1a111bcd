#!/usr/bin/env bash
# bench/queue/run.sh: enqueue and drain rates, visiond against RQ, in the same run on the same
# machine, with the ratios (issue 17).
#
#   bench/queue/run.sh [VISIOND_BINARY]       (default: build/visiond)
#   BENCH_JOBS=N        no-op jobs per measurement (default 1000)
#   BENCH_SLEEP_JOBS=N  jobs of the second case, each sleeping 10 ms (default 200)
#   BENCH_ENQ_JOBS=N    jobs of the enqueue case (default 10000)
#   BENCH_ENQ_BIG=N     jobs of the large enqueue case, where start-up weighs little (default
#                       100000; 0 skips it)
#
# Cases, each on a fresh queue:
#   enqueue   `visiond jobs enqueue noop --count N` (one process; batches of 10000 jobs on SQLite,
#             1000 on Redis: vd_queue_enqueue_many_max; one
#             transaction each) vs RQ's Queue.enqueue_many (bulk, one pipeline per 1000 jobs)
#             and RQ's loop of queue.enqueue. RQ's time is taken inside its process (no
#             interpreter start); visiond's is the process's wall time, printed as is and less
#             the wall time of `jobs enqueue --count 1` (its start-up, the fastest of three
#             runs), which the ratio uses. The same again with BENCH_ENQ_BIG jobs on both
#             sides (RQ: the same enqueue_many loop over N jobs, in batches of 1000).
#   drain     `visiond worker --burst`, fork per job, one horse at a time (--concurrency 1),
#             vs RQ's `rq worker --burst` (forks a work-horse per job); also --no-fork
#   sleep     jobs that sleep 10 ms: visiond --concurrency 4 vs --concurrency 1
# on SQLite with the default durability (synchronous=FULL), SQLite ?sync=normal, and Redis
# (visiond's Redis backend on db 1 of the throwaway redis-server RQ uses, db 0).
# Drain times are the worker process's wall time, start to exit (RQ's includes its interpreter
# start-up, about 0.3 s; visiond's its start, ~0.1 s). The machine may be shared: the load
# average is printed first; compare ratios from the same run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export VISIOND_TEST_JOBS=1 # `noop` and `sleep` are test job types (src/jobspec/jobspec.h)
root=$(cd "$here/../.." && pwd)
VISIOND=${1:-$root/build/visiond}
N=${BENCH_JOBS:-1000}
NS=${BENCH_SLEEP_JOBS:-200}
NE=${BENCH_ENQ_JOBS:-10000}
NB=${BENCH_ENQ_BIG:-100000}
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
# rates under 100/s keep a decimal: RQ's forking drain is 2-20 jobs/s, and the ratios are
# computed from these printed rates
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { d = b - a; r = (d > 0 ? n / d : 0); printf (r < 100 ? "%.1f" : "%.0f"), r }'; }
# (a rate of 0 is one that was not measured, e.g. 'from the first id' when one batch held all)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.1f", a / b; else printf "-" }'; }
row() { printf "  %-56s %8s jobs/s\n" "$1" "$2"; }

# ---- redis-server on a free loopback port
port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$port" --dir "$tmp" --save '' --appendonly no \
  --daemonize no --logfile "$tmp/redis.log" &
redis_pid=$!
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
redis-cli -p "$port" ping >/dev/null || { echo "bench: redis-server did not start" >&2; exit 1; }

echo "bench/queue: $N no-op jobs per measurement, $NS sleep jobs; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "enqueue: visiond = wall time of the \`jobs enqueue --count N\` process, and the same less its"
echo "  start-up (wall of --count 1, fastest of 3); RQ = Queue.prepare_data + enqueue_many timed"
echo "  inside its process (perf_counter, interpreter start and imports not counted); same N."
echo "  'from its first id printed': visiond's rate after its first batch is in (enq_time.py),"
echo "  start-up excluded without subtracting a separate run's"

# ---- visiond
qn=0
new_url() { # BACKEND: sets u to the URL of a fresh, empty queue
  qn=$((qn + 1))
  case $1 in
  full) u="sqlite:$tmp/q$qn.db" ;;
  normal) u="sqlite:$tmp/q$qn.db?sync=normal" ;;
  redis) redis-cli -p "$port" -n 1 flushdb >/dev/null; u="redis://127.0.0.1:$port/1" ;;
  esac
}
enqueue() { # URL TYPE COUNT [PAYLOAD]: enqueues; sets ENQ_RATE, ENQ_SECS, ENQ_STEADY
  local out ids
  out=$(ENQ_BATCH=$batch $PY "$here/enq_time.py" "$VISIOND" jobs enqueue "$2" --count "$3" ${4:+--payload "$4"} --queue "$1")
  read -r ids ENQ_SECS ENQ_STEADY <<<"$out"
  [ "$ids" = "$3" ] || { echo "bench: jobs enqueue printed $ids ids, not $3" >&2; exit 1; }
  ENQ_RATE=$(awk -v n="$3" -v d="$ENQ_SECS" 'BEGIN { printf "%.0f", (d > 0 ? n / d : 0) }')
}
drain() { # URL COUNT ARGS...: runs a burst worker, prints the drain rate
  local url=$1 n=$2; shift 2
  local t0 t1 left
  t0=$(now)
  "$VISIOND" worker --queue "$url" --burst "$@" 2>>"$tmp/worker.log" || {
    echo "bench: visiond worker failed: $(tail -1 "$tmp/worker.log")" >&2
    exit 1
  }
  t1=$(now)
  left=$("$VISIOND" queue stats --queue "$url" | $PY -c 'import json,sys; c=json.load(sys.stdin)["counts"]; print(c["finished"])')
  [ "$left" = "$n" ] || { echo "bench: $left of $n jobs finished after the drain" >&2; exit 1; }
  rate "$n" "$t0" "$t1"
}

declare -A ENQ ENQX ENQS BIG BIGX BIGS FORK1 NOFORK SLEEP1 SLEEP4
for b in full normal redis; do
  case $b in
  full) echo "visiond, sqlite WAL, synchronous=FULL (the default):" ;;
  normal) echo "visiond, sqlite WAL, ?sync=normal:" ;;
  redis) echo "visiond, redis backend (same redis-server, db 1):" ;;
  esac
  # the CLI's batch: vd_queue_enqueue_many_max (SQLite 10000, Redis 1000; src/queue)
  batch=1000
  [ "$b" = redis ] || batch=10000
  # the start-up: the fastest of three `--count 1` runs (one sample was at the mercy of the load)
  start=
  for _ in 1 2 3; do
    new_url $b; enqueue "$u" noop 1
    start=$(awk -v a="$ENQ_SECS" -v m="$start" 'BEGIN { print (m == "" || a < m) ? a : m }')
  done
  new_url $b; enqueue "$u" noop "$NE"; ENQ[$b]=$ENQ_RATE; ENQS[$b]=$ENQ_STEADY
  ENQX[$b]=$(awk -v n="$NE" -v a="$ENQ_SECS" -v s="$start" 'BEGIN { d = a - s; printf "%.0f", (d > 0 ? n / d : 0) }')
  row "enqueue $NE (jobs enqueue --count, batches of $batch)" "${ENQ[$b]}"
  row "  the same less the start-up ($start s: --count 1)" "${ENQX[$b]}"
  row "  the same from its first id printed to its exit" "${ENQS[$b]/#0/-}" # -: one batch
  if [ "$NB" -gt 0 ]; then
    new_url $b; enqueue "$u" noop "$NB"; BIG[$b]=$ENQ_RATE; BIGS[$b]=$ENQ_STEADY
    BIGX[$b]=$(awk -v n="$NB" -v a="$ENQ_SECS" -v s="$start" 'BEGIN { d = a - s; printf "%.0f", (d > 0 ? n / d : 0) }')
    row "enqueue $NB (the same, larger)" "${BIG[$b]}"
    row "  the same less the start-up" "${BIGX[$b]}"
    row "  the same from its first id printed to its exit" "${BIGS[$b]}"
    [ "$b" = redis ] && redis-cli -p "$port" -n 1 flushdb >/dev/null
    rm -f "$tmp"/q*.db*
  fi
  new_url $b; enqueue "$u" noop "$N"
  FORK1[$b]=$(drain "$u" "$N" --concurrency 1)
  row "drain, fork per job, one horse at a time" "${FORK1[$b]}"
  new_url $b; enqueue "$u" noop "$N"
  NOFORK[$b]=$(drain "$u" "$N" --no-fork)
  row "drain, --no-fork (inline)" "${NOFORK[$b]}"
  new_url $b; enqueue "$u" sleep "$NS" '{"ms": 10}'
  SLEEP1[$b]=$(drain "$u" "$NS" --concurrency 1)
  row "drain, 10 ms jobs, concurrency 1" "${SLEEP1[$b]}"
  new_url $b; enqueue "$u" sleep "$NS" '{"ms": 10}'
  SLEEP4[$b]=$(drain "$u" "$NS" --concurrency 4)
  row "drain, 10 ms jobs, concurrency 4" "${SLEEP4[$b]}"
done

# ---- RQ
echo "rq $($PY -c 'import rq; print(rq.__version__)') (redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), no persistence):"
rurl="redis://127.0.0.1:$port/0"
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
secs=$(cd "$here" && $PY rq_bench.py bulk "$rurl" "$NE")
rq_bulk=$(awk -v n="$NE" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
row "enqueue $NE (Queue.enqueue_many, bulk)" "$rq_bulk"
redis-cli -p "$port" -n 0 flushdb >/dev/null
if [ "$NB" -gt 0 ]; then
  secs=$(cd "$here" && $PY rq_bench.py bulk "$rurl" "$NB")
  rq_big=$(awk -v n="$NB" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
  row "enqueue $NB (Queue.enqueue_many, bulk)" "$rq_big"
  redis-cli -p "$port" -n 0 flushdb >/dev/null
fi
secs=$(cd "$here" && $PY rq_bench.py enqueue "$rurl" "$N")
rq_enq=$(awk -v n="$N" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
row "enqueue $N (queue.enqueue in a loop; its jobs are drained next)" "$rq_enq"
t0=$(now)
(cd "$here" && $PY -m rq.cli worker --burst --quiet --url "$rurl" default >>"$tmp/rq.log" 2>&1)
t1=$(now)
rq_drain=$(rate "$N" "$t0" "$t1")
row "drain, rq worker --burst (fork per job)" "$rq_drain"
counts=$(cd "$here" && $PY rq_bench.py count "$rurl")
[ "${counts%%,*}" = "$N" ] || { echo "bench: rq finished ${counts} (finished,failed,queued), not $N" >&2; exit 1; }

echo "ratios:                                        sqlite FULL  sqlite NORMAL  redis"
printf "  %-44s %8sx %12sx %8sx   (target >= 10x)\n" "enqueue (less start-up) vs RQ bulk" \
  "$(ratio "${ENQX[full]}" "$rq_bulk")" "$(ratio "${ENQX[normal]}" "$rq_bulk")" "$(ratio "${ENQX[redis]}" "$rq_bulk")"
printf "  %-44s %8sx %12sx %8sx   (target >= 10x)\n" "enqueue (from first id printed) vs RQ bulk" \
  "$(ratio "${ENQS[full]}" "$rq_bulk")" "$(ratio "${ENQS[normal]}" "$rq_bulk")" "$(ratio "${ENQS[redis]}" "$rq_bulk")"
printf "  %-44s %8sx %12sx %8sx\n" "enqueue (with start-up) vs RQ bulk" \
  "$(ratio "${ENQ[full]}" "$rq_bulk")" "$(ratio "${ENQ[normal]}" "$rq_bulk")" "$(ratio "${ENQ[redis]}" "$rq_bulk")"
if [ "$NB" -gt 0 ]; then
  printf "  %-44s %8sx %12sx %8sx   (target >= 10x)\n" "enqueue $NB (less start-up) vs RQ bulk" \
    "$(ratio "${BIGX[full]}" "$rq_big")" "$(ratio "${BIGX[normal]}" "$rq_big")" "$(ratio "${BIGX[redis]}" "$rq_big")"
  printf "  %-44s %8sx %12sx %8sx   (target >= 10x)\n" "enqueue $NB (from first id printed) vs RQ" \
    "$(ratio "${BIGS[full]}" "$rq_big")" "$(ratio "${BIGS[normal]}" "$rq_big")" "$(ratio "${BIGS[redis]}" "$rq_big")"
  printf "  %-44s %8sx %12sx %8sx\n" "enqueue $NB (with start-up) vs RQ bulk" \
    "$(ratio "${BIG[full]}" "$rq_big")" "$(ratio "${BIG[normal]}" "$rq_big")" "$(ratio "${BIG[redis]}" "$rq_big")"
fi
printf "  %-44s %8sx %12sx %8sx   (target >= 20x)\n" "forking drain, one horse, vs rq worker" \
  "$(ratio "${FORK1[full]}" "$rq_drain")" "$(ratio "${FORK1[normal]}" "$rq_drain")" "$(ratio "${FORK1[redis]}" "$rq_drain")"
printf "  %-44s %8sx %12sx %8sx\n" "inline drain (--no-fork) vs rq worker" \
  "$(ratio "${NOFORK[full]}" "$rq_drain")" "$(ratio "${NOFORK[normal]}" "$rq_drain")" "$(ratio "${NOFORK[redis]}" "$rq_drain")"
printf "  %-44s %8sx %12sx %8sx   (must be > 1)\n" "10 ms jobs: concurrency 4 / concurrency 1" \
  "$(ratio "${SLEEP4[full]}" "${SLEEP1[full]}")" "$(ratio "${SLEEP4[normal]}" "${SLEEP1[normal]}")" "$(ratio "${SLEEP4[redis]}" "${SLEEP1[redis]}")"
