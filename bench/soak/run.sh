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
here=$(cd "$(dirname "$0")/../.." && pwd)
VISIOND=${VISIOND:-$here/build/visiond}
MODELS=${MODELS:-$here/data/models}
[ -x "$VISIOND" ] || { echo "build visiond first ($VISIOND)" >&2; exit 1; }
[ -f "$MODELS/mobilenet_v2.onnx" ] || { echo "no models in $MODELS: scripts/models.sh --out $MODELS" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/vdsoak.XXXXXX")
cleanup() { pkill -9 -f -- "$work" 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
echo "bench/soak: work directory $work"
python3 "$here/tests/lib/soak.py" --visiond "$VISIOND" --models "$MODELS" --work "$work/w" \
  --duration 600 --warmup 60 --interval 5 "$@"
