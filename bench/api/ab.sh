#!/usr/bin/env bash
# bench/api/ab.sh: two visiond builds, A (the peer: e.g. main) and B (a change),
# on the same API cases in the same run, interleaved (A B A B ...), then the ratio:
#   GET /jobs/{id}                                wrk -c$CONNECTIONS
#   POST /embeddings of one image already cached  wrk -c$EMBED_CONNECTIONS
# (the cached case touches the store's cache and, before the handle pools, opened
# a store and a model-server runner per request). Prints requests/s, p50, p99 and
# the server's CPU time per request (user+system over the run / requests served,
# steadier than the rest on a shared machine) per round, and the load average at
# each round's start.
#
#   bench/api/ab.sh A_VISIOND B_VISIOND
#   ROUNDS=2 DURATION=10 CONNECTIONS=32 EMBED_CONNECTIONS=8 THREADS=2 WRK_THREADS=2 \
#     MODELS=DIR bench/api/ab.sh A B
#
# MODELS: a models directory with mobilenet_v2 (scripts/models.sh); made in a
# temp directory with A's binary when unset. Both servers talk to one model
# server (A's binary; the cached case never runs a model).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 2 ] || { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
A=$1 B=$2
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
EMBED_CONNECTIONS=${EMBED_CONNECTIONS:-8}
THREADS=${THREADS:-2}
WRK_THREADS=${WRK_THREADS:-2}
for tool in wrk curl; do command -v $tool >/dev/null || { echo "bench/api/ab: $tool is missing"; exit 1; }; done
for v in "$A" "$B"; do [ -x "$v" ] || { echo "bench/api/ab: no visiond binary at $v"; exit 1; }; done

TAG=ab
. "$here/lib.sh"

if [ -z "${MODELS:-}" ]; then
  MODELS=$tmp/models
  "$here/../../scripts/models.sh" --visiond "$A" --out "$MODELS" >"$tmp/models.log" 2>&1 ||
    { tail "$tmp/models.log"; echo "bench/api/ab: scripts/models.sh failed"; exit 1; }
fi
[ -f "$MODELS/mobilenet_v2.json" ] || { echo "bench/api/ab: no $MODELS/mobilenet_v2.json"; exit 1; }
mkdir -p "$tmp/media" "$tmp/ms"
"$A" dataset fashion-mnist --out "$tmp/media" --per-label 1 --split test >/dev/null
img=$(find "$tmp/media" -name '*.png' | sort | head -1)
VISIOND_LOG_LEVEL=warn "$A" model-server --data "$tmp/ms" --models "$MODELS" --preload mobilenet_v2 \
  >"$tmp/ms.out" 2>"$tmp/ms.log" &
pids+=($!)
for _ in $(seq 1 300); do [ -s "$tmp/ms.out" ] && break; sleep 0.1; done
[ -s "$tmp/ms.out" ] || { cat "$tmp/ms.log"; echo "bench/api/ab: the model server did not start"; exit 1; }

cat >"$tmp/embed.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model": "mobilenet_v2", "paths": ["$img"], "vectors": false}'
EOF

# one_round NAME BINARY N: serve, cache the image, create a job, measure both cases
one_round() {
  local name=$1 bin=$2 n=$3 data="$tmp/data.$1.$3"
  VISIOND_LOG_LEVEL=warn "$bin" serve --listen 127.0.0.1:0 --data "$data" --threads "$THREADS" \
    --model-server "unix:$tmp/ms/model.sock" --media-root "$tmp/media" >"$tmp/serve.out" 2>"$tmp/serve.log" &
  local pid=$!
  pids+=($pid)
  for _ in $(seq 1 100); do [ -s "$tmp/serve.out" ] && break; sleep 0.1; done
  local port
  port=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$tmp/serve.out")
  local base="http://127.0.0.1:$port"
  curl -sf -H 'Content-Type: application/json' -d "{\"paths\": [\"$img\"], \"vectors\": false}" \
    "$base/embeddings" >/dev/null
  local id
  id=$(curl -sf -H 'Content-Type: application/json' \
    -d '{"any_type":true,"type":"bench.echo","payload":{"paths":["/photos/cat1.jpg"]},"priority":1}' \
    "$base/jobs" | $PY -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  local load
  load=$(cut -d' ' -f1 /proc/loadavg)
  local g e
  g=$(wrk_run "$pid" "$base/jobs/$id" -c"$CONNECTIONS")
  e=$(wrk_run "$pid" "$base/embeddings" -c"$EMBED_CONNECTIONS" -s "$tmp/embed.lua")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  : >"$tmp/serve.out"
  echo "$name $n $load $g $e" >>"$tmp/results"
}

for n in $(seq 1 "$ROUNDS"); do
  one_round A "$A" "$n"
  one_round B "$B" "$n"
done

echo "A = $A"
echo "B = $B"
echo "$THREADS server threads, wrk -t$WRK_THREADS -d${DURATION}s; GET -c$CONNECTIONS, POST -c$EMBED_CONNECTIONS; $(nproc) CPUs"
$PY - "$tmp/results" <<'PYEOF'
import sys
rows = [l.split() for l in open(sys.argv[1])]
print(f"{'':2} {'round':>5} {'load':>5} | {'GET /jobs/{id}: req/s':>21} {'p50 ms':>7} {'p99 ms':>7} {'CPU us':>7}"
      f" | {'POST /embeddings cached: req/s':>30} {'p50 ms':>7} {'p99 ms':>7} {'CPU us':>7}")
for r in rows:
    print(f"{r[0]:2} {r[1]:>5} {r[2]:>5} | {r[3]:>21} {r[4]:>7} {r[5]:>7} {r[6]:>7}"
          f" | {r[7]:>30} {r[8]:>7} {r[9]:>7} {r[10]:>7}")
def mean(name, i):
    v = [float(r[i]) for r in rows if r[0] == name]
    return sum(v) / len(v)
for label, i in (("GET /jobs/{id}", 3), ("POST /embeddings cached", 7)):
    a, b = mean("A", i), mean("B", i)
    pa, pb = mean("A", i + 2), mean("B", i + 2)
    ca, cb = mean("A", i + 3), mean("B", i + 3)
    print(f"ratio B/A, {label} (means): requests/s {b / a:.2f}x, p99 {pa / pb:.2f}x lower, "
          f"CPU per request {ca / cb:.2f}x lower")
PYEOF
