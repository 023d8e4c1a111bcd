#!/usr/bin/env bash
# bench/pipeline/embed_jobs_ab.sh N REPS BIN...: A/B of small image jobs through the worker: N
# `embed` jobs of one face-api demo photo each (mobilenet_v2, model server preloaded) drained by
# `visiond worker --burst`, one work-horse per job; what each job pays beyond its photo is the
# horse's start (libvips, the store, the model server connection). For each rep, each binary in
# turn gets a fresh data directory and its own model server; prints the worker's wall time and
# CPU (of the supervisor, fork server and horses: bench/lib/tree_cpu.py) per job, the jobs that
# finished, then the median per binary and its speed against the first binary's.
# Needs the converted models (scripts/models.sh) and the demo photos
# (scripts/setup.sh). Give each build its own binary path.
set -euo pipefail
N=$1; REPS=$2; shift 2
root=$(cd "$(dirname "$0")/../.." && pwd)
DEMO=${VISIOND_PREFIX:-/opt/visiond}/deps/npm/@vladmandic+face-api@1.7.15/demo
[ -f "$DEMO/sample1.jpg" ] || { echo "bench: face-api demo photos missing (scripts/setup.sh)" >&2; exit 1; }
[ -f "$root/data/models/mobilenet_v2.onnx" ] || { echo "bench: mobilenet_v2 not converted (scripts/models.sh)" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/embedab.XXXX")
trap 'rm -rf "$tmp"' EXIT
echo "bench/pipeline embed jobs: $N jobs of one photo each; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
one() { # BIN: prints "wall_s cpu_ms_per_job finished"
  local bin=$1 d ms q
  d=$(mktemp -d "$tmp/data.XXXX")
  mkdir -p "$d/models"
  cp "$root"/data/models/mobilenet_v2.{json,onnx} "$d/models/"
  "$bin" model-server --data "$d" --models "$d/models" --threads 2 --preload mobilenet_v2 \
    >"$d/ms.out" 2>"$d/ms.log" &
  ms=$!
  for _ in $(seq 600); do grep -q '"ready"' "$d/ms.out" && break; sleep 0.1; done
  q="sqlite:$d/visiond.db"
  for i in $(seq "$N"); do
    "$bin" jobs enqueue embed --queue "$q" \
      --payload "{\"model\":\"mobilenet_v2\",\"paths\":[\"$DEMO/sample$((i % 6 + 1)).jpg\"]}" >/dev/null
  done
  local t0 t1 fin
  t0=$(date +%s.%N)
  /usr/bin/python3 "$root/bench/lib/tree_cpu.py" "$d/cpu" "$bin" worker --data "$d" --queue "$q" --burst 2>"$d/w.log"
  t1=$(date +%s.%N)
  fin=$("$bin" jobs list --queue "$q" --state finished --limit 1000 --json |
    /usr/bin/python3 -c 'import json, sys; print(len(json.load(sys.stdin)))')
  kill "$ms"
  wait "$ms" 2>/dev/null || true
  awk -v n="$N" -v a="$t0" -v z="$t1" -v f="$fin" '{printf "%.3f %.1f %d\n", z-a, $1 * 1000 / n, f}' "$d/cpu"
  rm -rf "$d"
}
for _ in $(seq "$REPS"); do
  for bin in "$@"; do
    read -r secs cpu fin < <(one "$bin")
    printf '%-32s wall %6.2f s  %6.1f ms/job  worker CPU %6.1f ms/job  finished %d of %d\n' "$bin" \
      "$secs" "$(awk -v s="$secs" -v n="$N" 'BEGIN{print s*1000/n}')" "$cpu" "$fin" "$N"
    echo "$bin $secs" >>"$tmp/times"
  done
done
/usr/bin/python3 "$root/bench/lib/ab_medians.py" "$tmp/times" "$@"
