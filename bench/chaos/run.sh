#!/usr/bin/env bash
# bench/chaos/run.sh: the chaos drill (tests/lib/chaos.py) at full size: 10,000 jobs
# (count jobs, 150 embed jobs of 4 images, one training session of 80 Fashion-MNIST
# images) through `visiond up` with 3 workers, while horses, supervisors, the model server
# and (redis) redis-server are SIGKILLed at seeded random moments; prints the counts.
#
#   bench/chaos/run.sh [--backend sqlite|redis] [--seed N] [--jobs N] [--max-kills N] ...
#
# Environment: VISIOND (default build/visiond), MODELS (default data/models: scripts/models.sh),
# KEEP=1 keeps the work directory.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
VISIOND=${VISIOND:-$here/build/visiond}
MODELS=${MODELS:-$here/data/models}
[ -x "$VISIOND" ] || { echo "build visiond first ($VISIOND)" >&2; exit 1; }
[ -f "$MODELS/mobilenet_v2.onnx" ] || { echo "no models in $MODELS: scripts/models.sh --out $MODELS" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/vdchaos.XXXXXX")
cleanup() { pkill -9 -f -- "$work" 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
echo "bench/chaos: work directory $work"
python3 "$here/tests/lib/chaos.py" --visiond "$VISIOND" --models "$MODELS" --work "$work/w" \
  --jobs 10000 --embed-jobs 150 --per-label 20 --max-kills 300 --kill-min 0.5 --kill-max 2.5 \
  --timeout 3600 "$@"
