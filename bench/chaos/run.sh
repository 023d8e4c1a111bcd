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
NAME=chaos
. "$(dirname "$0")/../lib/drill.sh"
python3 "$here/tests/lib/chaos.py" --visiond "$VISIOND" --models "$MODELS" --work "$work/w" \
  --jobs 10000 --embed-jobs 150 --per-label 20 --max-kills 300 --kill-min 0.5 --kill-max 2.5 \
  --timeout 3600 "$@"
