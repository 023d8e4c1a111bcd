#!/usr/bin/env bash
# bench/api/run.sh: requests/s and p99 latency of GET /jobs/{id} under wrk, on
# loopback: `visiond serve` against a FastAPI + uvicorn app (fastapi_app.py)
# reading the same job from the same SQLite database, one after the other in
# the same run, then the ratio (target: visiond >= 10x the requests/s); then the
# p50/p99 latency of a single-image POST /embeddings with 1 and 8 concurrent clients.
#
#   bench/api/run.sh [path/to/visiond]
#   DURATION=10 CONNECTIONS=32 THREADS=2 WRK_THREADS=2 bench/api/run.sh
#
# Both servers get THREADS (visiond: HTTP threads; uvicorn: worker processes)
# and neither writes a per-request access log. Besides requests/s and p99 it
# prints each server's CPU time per request (user+system over the run divided
# by the requests served), which depends less on what else the machine runs. The peer runs on Debian's
# /usr/bin/python3 (python3-fastapi, python3-uvicorn; scripts/setup.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
VISIOND=${1:-${VISIOND:-$here/../../build/visiond}}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
WRK_THREADS=${WRK_THREADS:-2}
PY=/usr/bin/python3

for tool in wrk curl; do command -v $tool >/dev/null || { echo "bench/api: $tool is missing (scripts/setup.sh)"; exit 1; }; done
$PY -c 'import fastapi, uvicorn' 2>/dev/null || { echo "bench/api: python3-fastapi/python3-uvicorn missing (scripts/setup.sh)"; exit 1; }
[ -x "$VISIOND" ] || { echo "bench/api: no visiond binary at $VISIOND (build first)"; exit 1; }

TAG=api
. "$here/lib.sh"

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- visiond ----
VISIOND_LOG_LEVEL=warn "$VISIOND" serve --listen 127.0.0.1:0 --data "$tmp/data" --threads "$THREADS" --model-server none \
  >"$tmp/serve.out" 2>"$tmp/serve.log" &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$tmp/serve.out" ] && break; sleep 0.1; done
port=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$tmp/serve.out")
id=$(curl -sf -H 'Content-Type: application/json' \
  -d '{"any_type":true,"type":"bench.echo","payload":{"paths":["/photos/cat1.jpg","/photos/cat2.jpg"],"model":"mobilenet_v2"},"priority":1}' \
  "http://127.0.0.1:$port/jobs" | $PY -c 'import json,sys; print(json.load(sys.stdin)["id"])')
url_c="http://127.0.0.1:$port/jobs/$id"
curl -sf "$url_c" >"$tmp/c.json"
read -r c_rps _ c_p99 c_cpu < <(wrk_run "${pids[0]}" "$url_c" -c"$CONNECTIONS")
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true; pids=()

# ---- FastAPI + uvicorn on the same database ----
pport=$(free_port)
VISIOND_BENCH_DB="$tmp/data/visiond.db" $PY -m uvicorn --app-dir "$here" fastapi_app:app \
  --host 127.0.0.1 --port "$pport" --workers "$THREADS" --no-access-log --log-level warning \
  >"$tmp/uvicorn.log" 2>&1 &
pids+=($!)
url_p="http://127.0.0.1:$pport/jobs/$id"
for _ in $(seq 1 100); do curl -sf "$url_p" >"$tmp/p.json" 2>/dev/null && break; sleep 0.2; done
[ -s "$tmp/p.json" ] || { cat "$tmp/uvicorn.log"; echo "bench/api: uvicorn did not come up"; exit 1; }
# Same answer from both.
$PY - "$tmp/c.json" "$tmp/p.json" <<'PYEOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
if a != b:
    sys.exit(f"bench/api: the two servers disagree:\n{a}\n{b}")
PYEOF
read -r p_rps _ p_p99 p_cpu < <(wrk_run "${pids[0]}" "$url_p" -c"$CONNECTIONS")

echo "GET /jobs/{id}, wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s, $THREADS server threads/workers, $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"
printf '%-22s %12s %10s %16s\n' server "requests/s" "p99 ms" "CPU us/request"
printf '%-22s %12s %10s %16s\n' "visiond serve" "$c_rps" "$c_p99" "$c_cpu"
printf '%-22s %12s %10s %16s\n' "FastAPI + uvicorn" "$p_rps" "$p_p99" "$p_cpu"
$PY -c "import sys; c,p,cl,pl,cc,pc=map(float,sys.argv[1:]); print(f'ratio: visiond {c/p:.1f}x the requests/s of FastAPI (target >= 10x); p99 {pl/cl:.1f}x lower; {pc/cc:.1f}x less CPU per request')" \
  "$c_rps" "$p_rps" "$c_p99" "$p_p99" "$c_cpu" "$p_cpu"

# ---- single-image POST /embeddings: p50/p99 with 1 and 8 concurrent clients ----
MODELS=${MODELS:-$here/../../data/models}
if [ -f "$MODELS/mobilenet_v2.json" ]; then
  mkdir -p "$tmp/ms" "$tmp/media"
  "$VISIOND" dataset fashion-mnist --out "$tmp/media" --per-label 12 --split test >/dev/null
  VISIOND_LOG_LEVEL=warn "$VISIOND" model-server --data "$tmp/ms" --models "$MODELS" --preload mobilenet_v2 \
    >"$tmp/ms.out" 2>"$tmp/ms.log" &
  pids+=($!)
  for _ in $(seq 1 300); do [ -s "$tmp/ms.out" ] && break; sleep 0.1; done
  VISIOND_LOG_LEVEL=warn "$VISIOND" serve --listen 127.0.0.1:0 --data "$tmp/data2" --threads 8 \
    --model-server "unix:$tmp/ms/model.sock" --media-root "$tmp/media" >"$tmp/serve2.out" 2>"$tmp/serve2.log" &
  pids+=($!)
  for _ in $(seq 1 100); do [ -s "$tmp/serve2.out" ] && break; sleep 0.1; done
  eport=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$tmp/serve2.out")
  mapfile -t imgs < <(find "$tmp/media" -name '*.png' | sort)
  echo
  echo "POST /embeddings, one image per request, mobilenet_v2 through the model server (max_batch from its metadata)"
  $PY "$here/embed_latency.py" "http://127.0.0.1:$eport" mobilenet_v2 1 "${imgs[@]:0:40}"
  $PY "$here/embed_latency.py" "http://127.0.0.1:$eport" mobilenet_v2 8 "${imgs[@]:40:80}"
else
  echo "bench/api: no $MODELS/mobilenet_v2.json (scripts/models.sh): POST /embeddings latency not measured"
fi
