# chaos.sh: runs the chaos drill (tests/lib/chaos.py) at CI size. Source after common.sh.
#   chaos_run BACKEND [ARGS...]   sqlite or redis, more chaos.py args; smaller under
#                                 VISIOND_TEST_SANITIZED=1
chaos_models() {
  local d
  for d in "$VISIOND_SOURCE_DIR/data/models" "$VISIOND_BUILD_DIR/models"; do
    [ -f "$d/mobilenet_v2.onnx" ] && { CHAOS_MODELS=$d; return 0; }
  done
  local npm=${VISIOND_PREFIX:-/opt/visiond}/deps/npm
  [ -d "$npm/nsfwjs@4.3.0" ] || skip "npm package nsfwjs@4.3.0 missing (scripts/setup.sh)"
  CHAOS_MODELS="$T/models"
  "$VISIOND_SOURCE_DIR/scripts/models.sh" --visiond "$VISIOND" --out "$CHAOS_MODELS" >"$T/models.log" 2>&1 ||
    { cat "$T/models.log" >&2; fail "scripts/models.sh failed"; }
}
chaos_run() {
  local backend=$1
  shift
  [ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || skip "Fashion-MNIST files missing"
  chaos_models
  local args=(--jobs 300 --embed-jobs 12 --per-label 12 --max-kills 16)
  [ -z "${VISIOND_TEST_SANITIZED:-}" ] || args=(--jobs 120 --embed-jobs 6 --per-label 10 --max-kills 10)
  [ -z "${CHAOS_SEED:-}" ] || args+=(--seed "$CHAOS_SEED")
  # If the drill dies midway, leave nothing running that names $T.
  trap 'pkill -9 -f -- "$T" 2>/dev/null || true; _vd_cleanup' EXIT
  /usr/bin/python3 "$VISIOND_SOURCE_DIR/tests/lib/chaos.py" --visiond "$VISIOND" --models "$CHAOS_MODELS" \
    --work "$T/w" --backend "$backend" "${args[@]}" "$@" || fail "chaos drill failed (backend $backend)"
}
