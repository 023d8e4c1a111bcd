# bench/api/lib.sh: what bench/api/run.sh and ab.sh share. Source it with TAG (the name
# in messages and the temp directory), DURATION and WRK_THREADS set. Gives:
#   $tmp, pids=()              a temp directory and the server pids, both cleaned up at exit
#   cpu_ticks PID              user+system clock ticks of PID and its children (uvicorn's workers)
#   wrk_run PID URL [ARGS...]  a 1 s warm-up, then DURATION s of wrk with ARGS on URL; prints
#                              "RPS P50_MS P99_MS CPU_US_PER_REQUEST" (the server's CPU over the run
#                              / requests served); fails on any non-2xx answer
PY=/usr/bin/python3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdbench-$TAG.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

cpu_ticks() {
  local total=0 p t
  for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    t=$(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0)
    total=$((total + t))
  done
  echo "$total"
}

wrk_run() {
  local pid=$1 url=$2; shift 2
  wrk -t"$WRK_THREADS" -d1s "$@" "$url" >/dev/null # warm-up
  local t0 t1
  t0=$(cpu_ticks "$pid")
  wrk -t"$WRK_THREADS" -d"${DURATION}s" --latency "$@" "$url" >"$tmp/wrk.out"
  t1=$(cpu_ticks "$pid")
  $PY - "$tmp/wrk.out" "$((t1 - t0))" "$(getconf CLK_TCK)" "$TAG" <<'PYEOF'
import re, sys
text = open(sys.argv[1]).read()
ticks, hz = int(sys.argv[2]), int(sys.argv[3])
errs = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
if errs:
    sys.exit("bench/api/%s: %s non-2xx responses:\n%s" % (sys.argv[4], errs.group(1), text))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
def pct(p):
    m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)\s*$" % p, text, re.M)
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
n = int(re.search(r"(\d+) requests in", text).group(1))
print(f"{rps:.0f} {pct(50):.3f} {pct(99):.3f} {ticks * 1e6 / hz / n:.1f}")
PYEOF
}
