# fault.sh: helpers for tests/fault/*.sh. Source after common.sh.
#   FAULTNET                       python3 client (tests/lib/faultnet.py): protocol and slow clients
#   ms_start DIR MODELS [opts...]  starts `visiond model-server` (data DIR, models MODELS); sets
#                                  MS_PID, MS_SOCK, MS_LOG; waits for the socket
#   ms_stop                        SIGTERM and wait
#   blazeface_models DIR           writes DIR/blazeface_front.json (the repo's metadata); skips the
#                                  test (77) when its ONNX file is not installed
#   cpu_ticks PID                  user+system clock ticks the process has used so far
FAULTNET="/usr/bin/python3 $VISIOND_SOURCE_DIR/tests/lib/faultnet.py"

ms_start() {
  local dir=$1 models=$2; shift 2
  MS_LOG="$T/ms.$$.$RANDOM.log"
  MS_SOCK="$dir/model.sock"
  mkdir -p "$dir"
  "$VISIOND" model-server --data "$dir" --models "$models" "$@" >"$T/ms.out" 2>"$MS_LOG" &
  MS_PID=$!
  track "$MS_PID"
  wait_for 60 test -S "$MS_SOCK" || { cat "$MS_LOG" >&2; fail "model server did not start"; }
}

ms_stop() {
  kill -TERM "$MS_PID" 2>/dev/null || true
  wait "$MS_PID" || true
}

blazeface_models() {
  mkdir -p "$1"
  cp "$VISIOND_SOURCE_DIR/models/blazeface_front.json" "$1/"
  local onnx
  onnx=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["onnx"])' "$1/blazeface_front.json")
  [ -f "$onnx" ] || skip "the BlazeFace ONNX file is not installed ($onnx): run scripts/setup.sh"
}

cpu_ticks() {
  awk '{print $14 + $15}' "/proc/$1/stat"
}
