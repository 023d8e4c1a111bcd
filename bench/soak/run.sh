#!/usr/bin/env bash
# bench/soak/run.sh: 10 minutes (by default) of steady load on `visiond up` (embedding
# requests through POST /embeddings, JSON and uploads, and jobs through POST /jobs), sampling
# VmRSS and open fds of up, the model server, each worker supervisor and the api every 5 s;
# prints per process the RSS slope after warm-up (KB/min, least squares) and fd growth.
# The drill is tests/lib/soak.py; tests/fault/soak_short.sh runs it for ~75 s with checks.
#
#   bench/soak/run.sh [--duration SECS] [--warmup SECS] [--interval SECS] [--check] ...
#
# Environment: VISIOND (default build/visiond), MODELS (default data/models), KEEP=1.
set -euo pipefail
NAME=soak
. "$(dirname "$0")/../lib/drill.sh"
python3 "$here/tests/lib/soak.py" --visiond "$VISIOND" --models "$MODELS" --work "$work/w" \
  --duration 600 --warmup 60 --interval 5 "$@"
