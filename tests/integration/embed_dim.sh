#!/usr/bin/env bash
# embed_dim.sh (issue 19): a model whose metadata omits "dim" gets it from its graph (or, when
# the graph leaves it open, from its first run); a declared dim that contradicts the graph and
# an output that is not [batch, dim] are errors that name the model's file; no path ever answers
# an empty or wrong-length vector. Tiny CLIP-style towers built with python3-onnx
# (tests/lib/tiny_embed.py: fixed and dynamic batch, an open output dim, a wrong dim, a rank-4
# output), each through the model server (GET /models), `visiond embed`, POST /embeddings, an
# embed job and a training session; every vector is checked against numpy's computation of the
# same graph (1e-5).
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pipeline.sh"
PY=/usr/bin/python3
$PY -c 'import onnx, numpy, cv2' 2>/dev/null || skip "python3-onnx, python3-numpy and python3-opencv are needed"
TINY="$VISIOND_SOURCE_DIR/tests/lib/tiny_embed.py"

MODELS="$T/models"
$PY "$TINY" models "$MODELS"
$PY "$TINY" images "$T/media/a" 4
$PY "$TINY" images "$T/media/b" 4
for f in "$T"/media/b/*.png; do mv "$f" "${f%.png}b.png"; done # other names, same generator
files=$(find "$T/media" -name '*.png' | sort)
paths=$(printf '%s\n' $files | $PY -c 'import json,sys; print(json.dumps([l.strip() for l in sys.stdin]))')
n=$(printf '%s\n' $files | wc -l)
$PY "$TINY" ref $files >"$T/ref.json"

# check_vectors FILE: FILE is JSON lines or one JSON answer; every vector must be 32 floats
# equal to numpy's (1e-5), and there must be one per image
check_vectors() {
  $PY - "$T/ref.json" "$1" "$n" <<'PY' || fail "vectors differ from numpy's: $(head -c 600 "$2" 2>/dev/null)"
import json, sys
ref = json.load(open(sys.argv[1]))
text = open(sys.argv[2]).read().strip()
try:
    items = json.loads(text)["embeddings"]
except (ValueError, KeyError):
    items = [json.loads(l) for l in text.splitlines()]
assert len(items) == int(sys.argv[3]), "%d answers" % len(items)
worst = 0.0
for it in items:
    v = it.get("vector")
    assert v is not None and len(v) == 32, "%s: vector of %s floats (%s)" % (it["path"], None if v is None else len(v), it.get("error"))
    worst = max(worst, max(abs(a - b) for a, b in zip(v, ref[it["path"]])))
assert worst < 1e-5, "max abs difference %g" % worst
print("    %d vectors of 32 floats, max abs difference from numpy %.2g" % (len(items), worst))
PY
}

ms_start
worker_start
api_start --data "$DATA" --media-root "$T/media"
model_field() { # MODEL FIELD: a field of the model in GET /models
  req GET /models
  printf '%s' "$BODY" | $PY -c '
import json, sys
for m in json.load(sys.stdin)["models"]:
    if m["name"] == sys.argv[1]: print(m.get(sys.argv[2]))' "$1" "$2"
}

for m in clip_fixed clip_dyn clip_open; do
  echo "== $m (no dim in its metadata)"
  # visiond embed
  rc=0
  "$VISIOND" embed --data "$DATA" --no-cache --model "$m" $files >"$T/$m.cli" 2>"$T/$m.err" || rc=$?
  [ "$rc" = 0 ] || fail "visiond embed --model $m exited $rc: $(cat "$T/$m.err") $(head -c 300 "$T/$m.cli")"
  check_vectors "$T/$m.cli"
  # the model server now knows the dim
  [ "$(model_field "$m" dim)" = 32 ] || fail "GET /models: $m has dim $(model_field "$m" dim), want 32"
  # POST /embeddings, computed then cached
  for pass in computed cached; do
    post_json /embeddings "{\"model\": \"$m\", \"paths\": $paths}"
    [ "$STATUS" = 200 ] || fail "POST /embeddings $m: $STATUS $BODY"
    [ "$(jget dim)" = 32 ] && [ "$(jget "$pass")" = "$n" ] || fail "POST /embeddings $m ($pass): $(printf '%s' "$BODY" | head -c 300)"
    printf '%s' "$BODY" >"$T/$m.api"
    check_vectors "$T/$m.api"
  done
done

# an embed job through a worker (fills the cache of a model not used yet)
req POST /jobs -H 'Content-Type: application/json' --data-binary "{\"type\": \"embed\", \"payload\": {\"model\": \"clip_open\", \"paths\": $paths}}"
[ "$STATUS" = 201 ] || fail "enqueue embed: $STATUS $BODY"
jid=$(jget id)
_job_done() { req GET "/jobs/$jid"; [ "$(jget state)" = finished ] || [ "$(jget state)" = failed ]; }
wait_for 300 _job_done || fail "embed job: $BODY"
[ "$(jget state)/$(jget result.dim)/$(jget result.failed)" = "finished/32/0" ] || fail "embed job: $BODY"

# a training session on a model without a dim
post_json /training/sessions "{\"name\": \"tiny\", \"model\": \"clip_dyn\", \"folder\": \"$T/media\"}"
[ "$STATUS" = 202 ] || fail "create session: $STATUS $BODY"
S1=$(jget id)
await_session "$S1" succeeded failed canceled
show_session "$S1"
[ "$(jget state)" = succeeded ] && [ "$(jget metrics.n_examples)" = "$n" ] || fail "session on clip_dyn: $BODY"
echo "== training session on clip_dyn: succeeded on $n examples"

# ---- metadata read here that disagrees with what the model server runs (--models on another
# host, an outdated copy): the pipeline's own check makes each image a per-image error ----------
mkdir -p "$T/models2"
$PY -c 'import json,sys; m=json.load(open(sys.argv[1])); m["dim"]=16; json.dump(m, open(sys.argv[2], "w"))' \
  "$MODELS/clip_dyn.json" "$T/models2/clip_dyn.json"
rc=0
"$VISIOND" embed --data "$DATA" --no-cache --models "$T/models2" --model clip_dyn $files >"$T/stale.cli" 2>"$T/stale.err" || rc=$?
[ "$rc" = 1 ] || fail "visiond embed with a stale dim exited $rc: $(head -c 300 "$T/stale.cli")"
grep -q '"vector"' "$T/stale.cli" && fail "a vector of the wrong length was printed: $(head -c 300 "$T/stale.cli")"
[ "$(grep -c 'returned \[[0-9]*,32\], not one vector of its dim 16 per image' "$T/stale.cli")" = "$n" ] ||
  fail "visiond embed with a stale dim: $(head -c 400 "$T/stale.cli")"
echo "== metadata saying dim 16 for a model that returns 32: $n per-image errors, e.g. $(head -1 "$T/stale.cli")"

# ---- models that contradict their metadata: errors naming the file, never a vector --------
expect_refused() { # MODEL WHAT: every path refuses, naming the metadata file and WHAT
  local m=$1 what=$2 rc=0
  echo "== $m"
  "$VISIOND" embed --data "$DATA" --model "$m" $files >"$T/$m.cli" 2>"$T/$m.err" || rc=$?
  [ "$rc" = 1 ] || fail "visiond embed --model $m exited $rc"
  grep -q '"vector"' "$T/$m.cli" && fail "visiond embed --model $m printed a vector: $(head -c 300 "$T/$m.cli")"
  grep -q "$MODELS/$m.json" "$T/$m.err" && grep -q -- "$what" "$T/$m.err" ||
    fail "visiond embed --model $m: $(cat "$T/$m.err")"
  echo "    visiond embed: $(cat "$T/$m.err")"
  post_json /embeddings "{\"model\": \"$m\", \"paths\": $paths}"
  [ "$STATUS" = 500 ] && [ "$(jget error.code)" = model ] || fail "POST /embeddings $m: $STATUS $BODY"
  case "$(jget error.message)" in *"$MODELS/$m.json"*"$what"*) ;; *) fail "POST /embeddings $m: $BODY" ;; esac
  [ "$(model_field "$m" state)" = failed ] || fail "GET /models: $m is $(model_field "$m" state)"
  post_json /training/sessions "{\"name\": \"bad\", \"model\": \"$m\", \"folder\": \"$T/media\"}"
  [ "$STATUS" = 202 ] || fail "create session on $m: $STATUS $BODY"
  local sid; sid=$(jget id)
  await_session "$sid" succeeded failed canceled
  show_session "$sid"
  [ "$(jget state)" = failed ] || fail "session on $m: $BODY"
  case "$BODY" in *"$m.json"*) ;; *) fail "session on $m does not name the file: $BODY" ;; esac
  echo "    session: failed, naming $m.json"
}
expect_refused clip_wrongdim "dim 64 does not match"
expect_refused clip_rank4 "an embedding output must be"
api_stop
