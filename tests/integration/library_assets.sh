#!/usr/bin/env bash
# library_assets.sh: the photo library end to end (docs/library.md) with real processes
# (model server, worker, api) and real photos (face-api's demo pictures): a table of bad
# requests, each with its own code; a folder indexed by the index job (vectors and faces
# stored, boxes inside the picture); the same bytes twice are one asset; a broken image is
# that file's error while the rest are indexed; a path outside the media roots is a
# per-file error in a mixed request; listing by folder and state; an upload; DELETE; and
# `visiond index FOLDER`, the CLI twin of the route, with its summary.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pipeline.sh"

DEMO=${VISIOND_PREFIX:-/opt/visiond}/deps/npm/@vladmandic+face-api@1.7.15/demo
[ -f "$DEMO/sample1.jpg" ] || skip "face-api demo photos not unpacked (scripts/setup.sh)"
MODELS="$DATA/models"
mkdir -p "$MODELS"
for m in mobilenet_v2 faceres blazeface_back; do
  [ -f "$VISIOND_SOURCE_DIR/data/models/$m.onnx" ] || skip "model $m not converted (scripts/models.sh)"
  cp "$VISIOND_SOURCE_DIR/data/models/$m.json" "$VISIOND_SOURCE_DIR/data/models/$m.onnx" "$MODELS/"
done

P="$T/media/photos"
mkdir -p "$P/sub" "$T/media/cli" "$T/media/more"
cp "$DEMO"/sample{1,2,3,4}.jpg "$P/"
cp "$DEMO/sample1.jpg" "$P/sub/copy-of-1.jpg" # the same bytes: the same asset
cp "$DEMO/sample6.jpg" "$P/sub/"
printf 'this is not a JPEG' >"$P/broken.jpg"
printf 'notes' >"$P/notes.txt"                 # not an image name: a folder scan leaves it
cp "$DEMO/sample5.jpg" "$T/media/more/"
cp "$DEMO/sample3.jpg" "$DEMO/screenshot-images.png" "$T/media/cli/"

ms_start
worker_start --media-root "$T/media"
api_start --data "$DATA" --media-root "$T/media"

# ---- bad requests: each its own status and code -----------------------------------------
bad() { # STATUS CODE JSON (or @FILE)
  post_json /assets "$3"
  local code; code=$(jget error.code 2>/dev/null || echo "(none)")
  [ "$STATUS" = "$1" ] && [ "$code" = "$2" ] || fail "POST /assets ${3:0:200}: got $STATUS $code ($BODY), want $1 $2"
  echo "ok: $1 $2"
}
bad 422 empty_list '{}'
bad 422 empty_list '{"paths": []}'
bad 422 unknown_field '{"colour": 1}'
bad 400 invalid_type '{"paths": "x"}'
bad 422 paths_and_folder "{\"paths\": [\"$P/sample1.jpg\"], \"folder\": \"$P\"}"
bad 422 path_outside_media_roots '{"paths": ["/etc/hostname"]}'
bad 404 path_not_found "{\"paths\": [\"$T/media/nope.jpg\"]}"
bad 422 path_not_file "{\"paths\": [\"$P/sub\"]}"
bad 422 path_outside_media_roots '{"folder": "/usr/share"}'
bad 422 path_not_dir "{\"folder\": \"$P/sample1.jpg\"}"
mkdir -p "$T/media/empty" && bad 422 empty_list "{\"folder\": \"$T/media/empty\"}"
/usr/bin/python3 -c 'import json,sys; print(json.dumps({"paths": [sys.argv[1]] * 10001}))' "$P/sample1.jpg" >"$T/big.json"
bad 413 too_many_paths "@$T/big.json"
expect_error 404 asset_not_found GET /assets/999999
expect_error 404 asset_not_found GET /assets/abc
expect_error 404 asset_not_found DELETE /assets/999999
expect_error 400 invalid_parameter GET '/assets?state=lost'
req GET /assets
[ "$(jget assets)" = "[]" ] || fail "a bad request left an asset behind: $BODY"

# ---- a folder: registered by bytes, indexed by one job ----------------------------------------
await_job() { # ID: polls GET /jobs/ID until it ended; it must have finished
  local id=$1 s
  for _ in $(seq 1 "$WAIT_S"); do
    req GET "/jobs/$id"
    s=$(jget state)
    case "$s" in finished) return 0 ;; failed | canceled) fail "job $id $s: $BODY" ;; esac
    sleep 1
  done
  tail -20 "$W_LOG" >&2
  fail "job $id did not end: $BODY"
}
post_json /assets "{\"folder\": \"$P\"}"
[ "$STATUS" = 202 ] || fail "POST folder: $STATUS $BODY"
[ "$(jget added)" = 6 ] && [ "$(jget known)" = 1 ] && [ "$(jget queued)" = 6 ] ||
  fail "POST folder: want 6 added (4 samples, sample6, broken), 1 known (the copy): $BODY"
J1=$(jget job_id)
printf '%s' "$BODY" >"$T/reg1.json"
copy_existed=$(/usr/bin/python3 -c '
import json, sys
a = {x["path"].rsplit("/", 1)[1]: x for x in json.load(open(sys.argv[1]))["assets"]}
assert a["copy-of-1.jpg"]["asset_id"] == a["sample1.jpg"]["asset_id"], a
print(json.dumps(a["copy-of-1.jpg"]["existed"]))' "$T/reg1.json")
[ "$copy_existed" = true ] || fail "the copy of sample1 is not the same asset: $BODY"
await_job "$J1"
[ "$(jget result.indexed)" = 5 ] && [ "$(jget result.failed)" = 1 ] ||
  fail "index job: want 5 indexed, 1 failed (broken.jpg): $BODY"
[ "$(jget result.errors.0.path)" = "$P/broken.jpg" ] || fail "the broken file's error: $BODY"
nfaces=$(jget result.faces)
[ "$nfaces" -ge 4 ] || fail "index job found $nfaces faces in 5 portraits: $BODY"
echo "ok: folder indexed, $nfaces faces"

req GET "/assets?state=error"
[ "$(jget assets.0.path)" = "$P/broken.jpg" ] && [ "$(jget assets.1 2>/dev/null || echo none)" = none ] ||
  fail "GET ?state=error: $BODY"
[ -n "$(jget assets.0.error)" ] || fail "the broken asset has no error: $BODY"
req GET "/assets?state=indexed&limit=2"
[ "$STATUS" = 200 ] && [ "$(jget next_after)" != null ] || fail "paging: $BODY"
after=$(jget next_after)
req GET "/assets?state=indexed&limit=1000&after=$after"
[ "$STATUS" = 200 ] && [ "$(jget next_after)" = null ] || fail "paging (2): $BODY"
req GET "/assets?folder=$P/sub"
[ "$(jget assets.0.path)" = "$P/sub/sample6.jpg" ] && [ "$(jget assets.1 2>/dev/null || echo none)" = none ] ||
  fail "GET ?folder=sub: $BODY"
S1=$(/usr/bin/python3 -c '
import json, sys
print([x for x in json.load(open(sys.argv[1]))["assets"] if x["path"].endswith("/sample1.jpg")][0]["asset_id"])' "$T/reg1.json")
req GET "/assets/$S1"
[ "$STATUS" = 200 ] && [ "$(jget state)" = indexed ] || fail "GET /assets/$S1: $STATUS $BODY"
printf '%s' "$BODY" | /usr/bin/python3 -c '
import json, sys
a = json.load(sys.stdin)
assert a["width"] > 0 and a["height"] > 0, a
assert len(a["faces"]) >= 1, a
for f in a["faces"]:
    x, y, w, h = f["box"]
    assert w > 0 and h > 0 and x > -w and y > -h and x + w < a["width"] + w and y + h < a["height"] + h, f
    assert 0 < f["score"] <= 1 and f["person_id"] is None, f
' || fail "sample1's faces: $BODY"
echo "ok: sample1 has $(jget faces | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)))') face(s) with boxes"

# ---- the same bytes again add nothing; a mixed request goes on past a bad path ----------------
post_json /assets "{\"folder\": \"$P\"}"
[ "$STATUS" = 200 ] && [ "$(jget added)" = 0 ] && [ "$(jget known)" = 7 ] && [ "$(jget job_id)" = null ] ||
  fail "POST folder again: want 200, nothing added or queued: $STATUS $BODY"
post_json /assets "{\"paths\": [\"$T/media/more/sample5.jpg\", \"/etc/hostname\", \"$T/media/nope.jpg\"]}"
[ "$STATUS" = 202 ] && [ "$(jget added)" = 1 ] && [ "$(jget failed)" = 2 ] || fail "mixed paths: $STATUS $BODY"
[ "$(jget errors.0.code)" = path_outside_media_roots ] && [ "$(jget errors.1.code)" = path_not_found ] ||
  fail "mixed paths' errors: $BODY"
await_job "$(jget job_id)"
req GET /assets?limit=1000
n_live=$(jget assets | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n_live" = 7 ] || fail "want 7 assets, got $n_live: $BODY"

# ---- an upload (multipart, as the training routes take them) -------------------------------
req POST /assets -F "file=@$DEMO/sample2.jpg"
[ "$STATUS" = 200 ] && [ "$(jget known)" = 1 ] || fail "upload of known bytes: $STATUS $BODY"
req POST /assets -F "file=@$DEMO/screenshot-webcam.png;filename=webcam.png"
[ "$STATUS" = 202 ] && [ "$(jget added)" = 1 ] || fail "upload: $STATUS $BODY"
U=$(jget assets.0.asset_id)
await_job "$(jget job_id)"
req GET "/assets/$U"
[ "$(jget state)" = indexed ] && [[ "$(jget path)" == blob:*/webcam.png ]] || fail "uploaded asset: $BODY"

# ---- DELETE -----------------------------------------------------------------------------------
req DELETE "/assets/$S1"
[ "$STATUS" = 204 ] || fail "DELETE: $STATUS $BODY"
expect_error 404 asset_not_found GET "/assets/$S1"
expect_error 404 asset_not_found DELETE "/assets/$S1"
req GET /assets?limit=1000
grep -q "\"id\": *$S1[,}]" <<<"$BODY" && fail "a deleted asset is listed: $BODY"
echo "ok: DELETE"

# ---- the CLI: the same service, a progress bar, a summary ------------------------------------
"$VISIOND" index --data "$DATA" --media-root "$T/media" "$T/media/cli" >"$T/cli.json" 2>"$T/cli.err" ||
  { cat "$T/cli.err" >&2; fail "visiond index failed"; }
/usr/bin/python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert s["added"] == 1 and s["known"] == 1 and s["failed"] == 0, s
assert s["job_state"] == "finished" and s["index"]["indexed"] == 1, s
' "$T/cli.json" || fail "visiond index summary: $(cat "$T/cli.json")"
rc=0
"$VISIOND" index --data "$DATA" --media-root "$T/media" /usr/share >"$T/cli2.json" 2>"$T/cli2.err" || rc=$?
[ "$rc" = 1 ] && grep -q path_outside_media_roots "$T/cli2.err" || fail "visiond index outside the roots: rc $rc $(cat "$T/cli2.err")"
echo "ok: visiond index"

# ---- without faces: the size comes from the embedding's decode (no second read) ---------------
mkdir -p "$T/media/nofaces" && cp "$DEMO/facemesh.png" "$T/media/nofaces/"
"$VISIOND" index --data "$DATA" --media-root "$T/media" --library-face-model "" "$T/media/nofaces" \
  >"$T/cli3.json" 2>"$T/cli3.err" || { cat "$T/cli3.err" >&2; fail "visiond index without faces failed"; }
req GET "/assets?folder=$T/media/nofaces"
want="$(vipsheader -f width "$DEMO/facemesh.png") $(vipsheader -f height "$DEMO/facemesh.png")"
[ "$(jget assets.0.state)" = indexed ] && [ "$(jget assets.0.width) $(jget assets.0.height)" = "$want" ] ||
  fail "indexed without faces: want its size $want: $BODY"
echo "ok: indexed without faces, $want"

api_stop
worker_stop
ms_stop
echo PASS
