#!/usr/bin/env bash
# soak_short.sh: bench/soak's drill (tests/lib/soak.py) for ~75 s with checks: steady
# /embeddings and /jobs load on `visiond up`; no process's open fds grow, RSS slopes stay
# under a generous bound (not in the sanitized build, whose quarantine grows), every request
# and job succeeds, up stops cleanly and no sanitizer report (LeakSanitizer at each
# process's exit in the ASan build) is in the log.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/chaos.sh"
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || skip "Fashion-MNIST files missing"
chaos_models
args=(--duration 75 --warmup 25 --interval 2.5 --per-label 60 --check)
[ -z "${VISIOND_TEST_SANITIZED:-}" ] || args=(--duration 60 --warmup 20 --interval 2.5 --per-label 30 --pause 1 --job-pause 0.3 --check --sanitized)
trap 'pkill -9 -f -- "$T" 2>/dev/null || true; _vd_cleanup' EXIT
/usr/bin/python3 "$VISIOND_SOURCE_DIR/tests/lib/soak.py" --visiond "$VISIOND" --models "$CHAOS_MODELS" \
  --work "$T/w" "${args[@]}" || fail "soak checks failed"
