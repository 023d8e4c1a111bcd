#!/usr/bin/env bash
# training_session.sh: training sessions end to end with real processes and real images:
# Fashion-MNIST PNGs, the shipped models converted by scripts/models.sh, `visiond
# model-server`, `visiond worker` and `visiond serve`. Checks: a table of bad requests
# (each its own error), a folder session that trains (cv_accuracy well above chance) and
# predicts held-out images (mostly right), a session whose worker is SIGKILLed
# mid-embedding that still succeeds (and resumes from the cache), DELETE of a running
# session (its job is canceled), a restart of every process (sessions and predictions
# survive), DELETE.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pipeline.sh"

LABELS="trouser bag sneaker dress"
OTHER="sandal shirt coat ankle_boot"
pl_models
pl_dataset "$T/media/fm" 20 test $LABELS
pl_dataset "$T/media/held" 5 train $LABELS
pl_dataset "$T/media/fm2" 12 train $OTHER
pl_dataset "$T/media/fm3" 10 train pullover tshirt_top
printf 'this is not a PNG' >"$T/media/fm/bag/zz-broken.png" # one bad example
N=$(find "$T/media/fm" -type f | wc -l)
N2=$(find "$T/media/fm2" -type f | wc -l)

ms_start
worker_start --lease 3
api_start --data "$DATA" --media-root "$T/media"
t0=$(date +%s)

# ---- bad requests: each gets its own status and code ------------------------------
F="$T/media/fm"
one="$F/bag/$(ls "$F/bag" | head -1)"
two="$F/trouser/$(ls "$F/trouser" | head -1)"
ok_ex="[{\"path\":\"$one\",\"label\":\"bag\"},{\"path\":\"$two\",\"label\":\"trouser\"}]"
mkdir -p "$T/media/flat" && cp "$one" "$T/media/flat/"
bad() { # STATUS CODE JSON (or @FILE)
  post_json /training/sessions "$3"
  local code; code=$(jget error.code 2>/dev/null || echo "(none)")
  [ "$STATUS" = "$1" ] && [ "$code" = "$2" ] || fail "bad request ${3:0:300}: got $STATUS $code ($BODY), want $1 $2"
  echo "ok: $1 $2"
}
bad 422 missing_field "{\"examples\": $ok_ex}"
bad 422 invalid_value "{\"name\": \"\", \"examples\": $ok_ex}"
bad 422 unknown_field "{\"name\": \"x\", \"examples\": $ok_ex, \"colour\": 1}"
bad 422 unknown_kind "{\"name\": \"x\", \"kind\": \"audio\", \"examples\": $ok_ex}"
bad 422 unknown_model "{\"name\": \"x\", \"model\": \"resnet9000\", \"examples\": $ok_ex}"
bad 422 model_kind_mismatch "{\"name\": \"x\", \"model\": \"faceres\", \"examples\": $ok_ex}"
bad 422 invalid_value "{\"name\": \"x\", \"crop\": true, \"examples\": $ok_ex}"
bad 422 missing_field "{\"name\": \"x\"}"
bad 422 examples_and_folder "{\"name\": \"x\", \"folder\": \"$F\", \"examples\": $ok_ex}"
bad 422 no_examples "{\"name\": \"x\", \"examples\": []}"
bad 400 invalid_type "{\"name\": \"x\", \"examples\": {\"a\": 1}}"
bad 422 empty_label "{\"name\": \"x\", \"examples\": [{\"path\":\"$one\",\"label\":\"\"},{\"path\":\"$two\",\"label\":\"b\"}]}"
bad 422 reserved_label "{\"name\": \"x\", \"examples\": [{\"path\":\"$one\",\"label\":\"unknown\"},{\"path\":\"$two\",\"label\":\"b\"}]}"
bad 422 one_label "{\"name\": \"x\", \"examples\": [{\"path\":\"$one\",\"label\":\"bag\"},{\"path\":\"$two\",\"label\":\"bag\"}]}"
bad 422 missing_field "{\"name\": \"x\", \"examples\": [{\"path\":\"$one\"},{\"path\":\"$two\",\"label\":\"b\"}]}"
bad 422 path_outside_media_roots "{\"name\": \"x\", \"examples\": [{\"path\":\"/etc/hostname\",\"label\":\"a\"},{\"path\":\"$two\",\"label\":\"b\"}]}"
bad 404 path_not_found "{\"name\": \"x\", \"examples\": [{\"path\":\"$T/media/nope.png\",\"label\":\"a\"},{\"path\":\"$two\",\"label\":\"b\"}]}"
bad 422 path_not_absolute "{\"name\": \"x\", \"examples\": [{\"path\":\"fm/a.png\",\"label\":\"a\"},{\"path\":\"$two\",\"label\":\"b\"}]}"
bad 422 path_dotdot "{\"name\": \"x\", \"examples\": [{\"path\":\"$F/../fm/bag/x.png\",\"label\":\"a\"},{\"path\":\"$two\",\"label\":\"b\"}]}"
bad 422 path_not_dir "{\"name\": \"x\", \"folder\": \"$one\"}"
bad 422 no_examples "{\"name\": \"x\", \"folder\": \"$T/media/flat\"}"
bad 422 path_outside_media_roots "{\"name\": \"x\", \"folder\": \"/usr/share\"}"
/usr/bin/python3 -c 'import json,sys; print(json.dumps({"name":"x","examples":[{"path":sys.argv[1],"label":"l%d" % (i % 2)} for i in range(10001)]}))' "$one" >"$T/big.json"
bad 413 too_many_examples "@$T/big.json"
expect_error 404 session_not_found GET /training/sessions/0123456789abcdef
expect_error 404 session_not_found DELETE /training/sessions/0123456789abcdef
expect_error 404 session_not_found POST /training/sessions/0123456789abcdef/predict -H 'Content-Type: application/json' --data-binary "{\"paths\": [\"$one\"]}"
expect_error 415 unsupported_media_type POST /training/sessions -H 'Content-Type: text/plain' --data-binary 'x'
req GET /training/sessions
[ "$(jget sessions)" = "[]" ] || fail "a bad request left a session behind: $BODY"

# ---- a folder session trains -----------------------------------------------------------
post_json /training/sessions "{\"name\": \"clothes\", \"folder\": \"$T/media/fm\"}"
[ "$STATUS" = 202 ] || fail "create: $STATUS $BODY"
[ "$(jget state)" = queued ] || fail "create: $BODY"
[ "$(jget examples)" = "$N" ] || fail "create: $BODY, want $N examples"
S1=$(jget id)
J1=$(jget job_id)
await_session "$S1" succeeded failed canceled
show_session "$S1"; [ "$(jget state)" = succeeded ] || fail "session 1: $BODY"
[ "$(jget progress.done)/$(jget progress.total)" = "$N/$N" ] || fail "progress: $BODY"
[ "$(jget errors.0.path)" = "$T/media/fm/bag/zz-broken.png" ] && [ "$(jget errors.0.error)" = "not an image" ] ||
  fail "the bad example should be the session's one error: $BODY"
[ "$(jget metrics.n_examples)" = $((N - 1)) ] || fail "trained on $(jget metrics.n_examples), want $((N - 1))"
[ "$(jget job_id)" = "$J1" ] || fail "job id: $BODY"
acc=$(jget metrics.cv_accuracy)
echo "session 1: $N examples, 4 labels, cv_accuracy $acc ($(($(date +%s) - t0)) s since start)"
/usr/bin/python3 -c "import sys; sys.exit(0 if float('$acc') >= 0.6 else 1)" ||
  fail "cv_accuracy $acc is not clearly above chance (0.25)"
req GET "/jobs/$J1"
[ "$(jget state)" = finished ] || fail "job 1: $BODY"

held=$(find "$T/media/held" -type f | sort | /usr/bin/python3 -c 'import json,sys; print(json.dumps([l.strip() for l in sys.stdin]))')
predict_right() { # SESSION -> prints how many held-out images got their folder's label
  post_json "/training/sessions/$1/predict" "{\"paths\": $held}"
  [ "$STATUS" = 200 ] || fail "predict: $STATUS $BODY"
  printf '%s' "$BODY" | /usr/bin/python3 -c '
import json, sys
p = json.load(sys.stdin)["predictions"]
print(sum(1 for x in p if "label" in x and x["path"].split("/")[-2] == x["label"]))'
}
right=$(predict_right "$S1")
nheld=$(find "$T/media/held" -type f | wc -l)
echo "predict: $right of $nheld held-out images right"
[ "$right" -ge $((nheld * 6 / 10)) ] || fail "only $right of $nheld held-out predictions right"
post_json "/training/sessions/$S1/predict" "{\"paths\": [\"$one\", \"$T/media/flat\"]}"
[ "$STATUS" = 404 ] || [ "$STATUS" = 422 ] || fail "predict on a folder path: $STATUS $BODY"
cp "$VISIOND_SOURCE_DIR/README.md" "$T/media/notimage.png"
post_json "/training/sessions/$S1/predict" "{\"paths\": [\"$one\", \"$T/media/notimage.png\"]}"
[ "$STATUS" = 200 ] || fail "predict with a bad image: $STATUS $BODY"
[ "$(jget predictions.0.label)" = bag ] || fail "predict: $BODY"
[ "$(jget predictions.1.error)" = "not an image" ] || fail "per-image error: $BODY"
# an upload works like paths
req POST "/training/sessions/$S1/predict" -F "f=@$one"
[ "$STATUS" = 200 ] && [ "$(jget predictions.0.label)" = bag ] || fail "predict upload: $STATUS $BODY"

# ---- a worker SIGKILLed in the middle of a session: the session still succeeds ---------
items_before=$(ms_items mobilenet_v2)
post_json /training/sessions "{\"name\": \"more\", \"folder\": \"$T/media/fm2\"}"
[ "$STATUS" = 202 ] || fail "create 2: $STATUS $BODY"
S2=$(jget id)
J2=$(jget job_id)
post_json "/training/sessions/$S2/predict" "{\"paths\": [\"$one\"]}"
[ "$STATUS" = 409 ] && [ "$(jget error.code)" = session_not_ready ] || fail "predict before training: $STATUS $BODY"
_embedded_some() { local d; d=$(session_field "$S2" progress.done) && [ "$d" -ge 8 ]; }
wait_for 600 _embedded_some || fail "session 2 never got going: $BODY"
kill -KILL "$W_PID"
wait "$W_PID" 2>/dev/null || true
done_at_kill=$(session_field "$S2" progress.done)
items_at_kill=$(ms_items mobilenet_v2)
echo "killed the worker with SIGKILL at $done_at_kill/$N2 embedded"
worker_start --lease 3
await_session "$S2" succeeded failed canceled
show_session "$S2"; [ "$(jget state)" = succeeded ] || fail "session 2 after SIGKILL: $BODY"
[ "$(jget progress.done)" = "$N2" ] || fail "session 2 progress: $BODY"
req GET "/jobs/$J2"
[ "$(jget attempts)" -ge 2 ] || fail "job 2 should have needed a second attempt: $BODY"
items_after=$(ms_items mobilenet_v2)
echo "session 2: items computed before the kill $((items_at_kill - items_before)), after $((items_after - items_at_kill)) (of $N2)"
[ $((items_after - items_at_kill)) -lt "$N2" ] || fail "the retry embedded everything again (no resume from the cache)"

# ---- DELETE of a running session: its job is canceled, the session is gone -------------
# (the model server is stopped with SIGSTOP right after the session is created, so that
# its images, never seen before, cannot all be embedded: the session is surely running)
post_json /training/sessions "{\"name\": \"doomed\", \"folder\": \"$T/media/fm3\"}"
kill -STOP "$MS_PID"
[ "$STATUS" = 202 ] || { kill -CONT "$MS_PID"; fail "create 3: $STATUS $BODY"; }
S3=$(jget id)
J3=$(jget job_id)
wait_for 120 _session_in "$S3" running || { kill -CONT "$MS_PID"; fail "session 3 never ran"; }
req DELETE "/training/sessions/$S3"
kill -CONT "$MS_PID"
[ "$STATUS" = 200 ] && [ "$(jget deleted)" = true ] && [ "$(jget job_canceled)" = true ] ||
  fail "delete a running session: $STATUS $BODY"
expect_error 404 session_not_found GET "/training/sessions/$S3"
req GET "/jobs/$J3"
[ "$(jget state)" = canceled ] || fail "job of the deleted session: $BODY"

# ---- a session from an upload (each file part's field name is its label) -------------
up=()
for f in $(ls "$F/bag" | head -3); do up+=(-F "bag=@$F/bag/$f"); done
for f in $(ls "$F/trouser" | head -3); do up+=(-F "trouser=@$F/trouser/$f"); done
req POST /training/sessions -F name=uploaded "${up[@]}"
[ "$STATUS" = 202 ] && [ "$(jget examples)" = 6 ] || fail "upload session: $STATUS $BODY"
S4=$(jget id)
await_session "$S4" succeeded failed canceled
show_session "$S4"; [ "$(jget state)" = succeeded ] || fail "upload session: $BODY"
# kept in the store (content-addressed), not in a directory of the API's host
blobs() { sqlite3 "$DATA/store.db" "SELECT count(*) FROM blobs"; }
[ "$(blobs)" = 6 ] || fail "the uploaded examples were not kept in the store: $(blobs) blobs"
[ -z "$(ls "$DATA/uploads" 2>/dev/null)" ] || fail "uploads left files: $(ls -R "$DATA/uploads")"
show_session "$S4"
req POST /training/sessions -F name=uploaded-again "${up[@]}" # the same files: kept once
[ "$STATUS" = 202 ] || fail "upload session 2: $STATUS $BODY"
S5=$(jget id)
await_session "$S5" succeeded failed canceled
[ "$(blobs)" = 6 ] || fail "the same uploads twice: $(blobs) blobs, want 6"
# past the GC's 10-minute grace, as if uploaded long ago
sqlite3 "$DATA/store.db" "UPDATE blobs SET put_ms = put_ms - 3600000"
req DELETE "/training/sessions/$S4"
[ "$STATUS" = 200 ] || fail "delete upload session: $STATUS $BODY"
[ "$(blobs)" = 6 ] || fail "uploads another session refers to were deleted: $(blobs) left"
req DELETE "/training/sessions/$S5"
[ "$STATUS" = 200 ] || fail "delete upload session 2: $STATUS $BODY"
[ "$(blobs)" = 0 ] || fail "the uploaded examples outlived their sessions: $(blobs) blobs"
echo "uploads: kept once in the store for two sessions, collected after both were deleted"
req POST /training/sessions -F name=x -F "=@$one"
[ "$STATUS" = 422 ] && [ "$(jget error.code)" = empty_label ] || fail "upload without a label: $STATUS $BODY"

# ---- restart every process: sessions and predictions survive -----------------------------
before=$(predict_right "$S1")
api_stop
worker_stop
ms_stop
ms_start
worker_start --lease 3
api_start --data "$DATA" --media-root "$T/media"
show_session "$S1"; [ "$(jget state)" = succeeded ] || fail "session 1 after restart: $BODY"
[ "$(jget metrics.cv_accuracy)" = "$acc" ] || fail "metrics changed across the restart: $BODY"
after=$(predict_right "$S1")
[ "$after" = "$before" ] || fail "predictions changed across the restart: $before -> $after right"
req GET /training/sessions
[ "$(printf '%s' "$BODY" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["sessions"]))')" = 2 ] ||
  fail "list: $BODY"

# ---- DELETE ------------------------------------------------------------------------------
req DELETE "/training/sessions/$S1"
[ "$STATUS" = 200 ] && [ "$(jget deleted)" = true ] || fail "delete: $STATUS $BODY"
expect_error 404 session_not_found GET "/training/sessions/$S1"
echo "PASS training_session ($(($(date +%s) - t0)) s)"
