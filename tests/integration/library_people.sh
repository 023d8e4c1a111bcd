#!/usr/bin/env bash
# library_people.sh: faces grouped into people end to end (docs/people.md), with real
# processes (model server, worker, api): three people of face-api's sample3, each cut out and
# copied four times (as is, mirrored, rotated, smaller), are indexed; the API's incremental
# clustering finds the three people; crops are JPEGs; renaming, merging into itself (409),
# a user's merge and a user's face move survive a re-cluster job and an API restart; a face
# training session made from two named people trains.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pipeline.sh"

DEMO=${VISIOND_PREFIX:-/opt/visiond}/deps/npm/@vladmandic+face-api@1.7.15/demo
[ -f "$DEMO/sample3.jpg" ] || skip "face-api demo photos not unpacked (scripts/setup.sh)"
command -v vips >/dev/null || skip "no vips command line tool"
MODELS="$DATA/models"
mkdir -p "$MODELS"
for m in mobilenet_v2 faceres blazeface_back; do
  [ -f "$VISIOND_SOURCE_DIR/data/models/$m.onnx" ] || skip "model $m not converted (scripts/models.sh)"
  cp "$VISIOND_SOURCE_DIR/data/models/$m.json" "$VISIOND_SOURCE_DIR/data/models/$m.onnx" "$MODELS/"
done

# ---- the photos: each face of sample3 cut out (2.2 x its box) and copied four ways --------
P="$T/media/people"
mkdir -p "$P"
"$VISIOND" faces --models "$MODELS" "$DEMO/sample3.jpg" >"$T/det.json"
/usr/bin/python3 - "$T/det.json" >"$T/crops.txt" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
for k, f in enumerate(d["faces"]):
    x, y, w, h = f["box"]; side = 2.2 * max(w, h)
    x0 = max(0, int(x + w / 2 - side / 2)); y0 = max(0, int(y + h / 2 - side / 2))
    x1 = min(d["width"], int(x + w / 2 + side / 2)); y1 = min(d["height"], int(y + h / 2 + side / 2))
    print(k, x0, y0, x1 - x0, y1 - y0)
PYEOF
[ "$(wc -l <"$T/crops.txt")" = 3 ] || fail "sample3 should have 3 faces: $(cat "$T/det.json")"
while read -r k x y w h; do
  vips extract_area "$DEMO/sample3.jpg" "$P/p${k}_a.jpg" "$x" "$y" "$w" "$h"
  vips flip "$P/p${k}_a.jpg" "$P/p${k}_b.jpg" horizontal
  vips rotate "$P/p${k}_a.jpg" "$P/p${k}_c.jpg" 8
  vips resize "$P/p${k}_a.jpg" "$P/p${k}_d.jpg" 0.6
done <"$T/crops.txt"

ms_start
worker_start --media-root "$T/media"
api_start --data "$DATA" --media-root "$T/media"

await_job() { # ID: polls GET /jobs/ID until it finished
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
people_summary() { # prints "id:count" of every person, by id
  req GET /people
  [ "$STATUS" = 200 ] || fail "GET /people: $STATUS $BODY"
  printf '%s' "$BODY" | /usr/bin/python3 -c '
import json, sys
print(" ".join("%d:%d" % (p["id"], p["face_count"]) for p in json.load(sys.stdin)["people"]))'
}
three_people() { [ "$(people_summary | wc -w)" = 3 ]; }

# ---- indexing, then the incremental clustering in the API --------------------------------
post_json /assets "{\"folder\": \"$P\"}"
[ "$STATUS" = 202 ] || fail "POST /assets: $STATUS $BODY"
await_job "$(jget job_id)"
wait_for "$WAIT_S" three_people || fail "want 3 people after indexing, got: $(people_summary)"
summary=$(people_summary)
echo "ok: people after indexing: $summary"
for pc in $summary; do
  [ "${pc#*:}" = 4 ] || fail "each person should have its 4 copies: $summary"
done
read -r A B C <<<"$(echo "$summary" | tr ' ' '\n' | cut -d: -f1 | tr '\n' ' ')"

# ---- reading: a person, its faces, a crop -------------------------------------------------
req GET "/people/$A"
[ "$STATUS" = 200 ] && [ "$(jget face_count)" = 4 ] && [ "$(jget name)" = null ] || fail "GET person: $BODY"
COVER=$(jget cover_face_id)
req GET "/people/$A/faces"
[ "$STATUS" = 200 ] || fail "GET faces: $STATUS $BODY"
FA=$(jget faces.0.id)
[ "$(jget faces.0.assigned_by)" = auto ] || fail "an automatic face: $BODY"
curl -s -o "$T/crop.jpg" -w '%{http_code}' "$API/faces/$COVER/crop?size=96" >"$T/crop.status"
[ "$(cat "$T/crop.status")" = 200 ] || fail "crop: $(cat "$T/crop.status") $(head -c 200 "$T/crop.jpg")"
[ "$(head -c 3 "$T/crop.jpg" | od -An -tx1 | tr -d ' ')" = ffd8ff ] || fail "the crop is not a JPEG"
w=$(vipsheader -f width "$T/crop.jpg")
[ "$w" -le 96 ] || fail "crop wider than asked: $w"
echo "ok: crop of face $COVER is a ${w}px JPEG"
expect_error 404 person_not_found GET /people/999999
expect_error 404 face_not_found GET /faces/999999/crop
expect_error 400 invalid_parameter GET "/faces/$COVER/crop?size=0"

# ---- the user's decisions -----------------------------------------------------------------
req PATCH "/people/$A" -H 'Content-Type: application/json' --data-binary '{"name": "Ann"}'
[ "$STATUS" = 200 ] && [ "$(jget name)" = Ann ] || fail "rename A: $STATUS $BODY"
req PATCH "/people/$B" -H 'Content-Type: application/json' --data-binary '{"name": "Bea"}'
[ "$STATUS" = 200 ] || fail "rename B: $STATUS $BODY"
expect_error 409 merge_into_itself POST "/people/$B/merge" -H 'Content-Type: application/json' \
  --data-binary "{\"from\": [$B]}"
expect_error 404 person_not_found POST "/people/$B/merge" -H 'Content-Type: application/json' \
  --data-binary '{"from": [999999]}'
expect_error 422 missing_field POST "/people/$B/merge" -H 'Content-Type: application/json' \
  --data-binary '{}'
post_json "/people/$B/merge" "{\"from\": [$C]}"
[ "$STATUS" = 200 ] && [ "$(jget face_count)" = 8 ] || fail "merge C into B: $STATUS $BODY"
req PATCH "/faces/$FA" -H 'Content-Type: application/json' --data-binary "{\"person_id\": $B}"
[ "$STATUS" = 200 ] && [ "$(jget person_id)" = "$B" ] && [ "$(jget assigned_by)" = user ] ||
  fail "move face $FA to B: $STATUS $BODY"
expect_error 404 person_not_found PATCH "/faces/$FA" -H 'Content-Type: application/json' \
  --data-binary '{"person_id": 999999}'
want="$A:3 $B:9"
[ "$(people_summary)" = "$want" ] || fail "after merge and move: $(people_summary), want $want"
echo "ok: merged C into B, moved face $FA from A to B"

# ---- a re-cluster keeps them ----------------------------------------------------------------
expect_error 422 invalid_parameters POST /people/recluster -H 'Content-Type: application/json' \
  --data-binary '{"max_distance": 3}'
req POST /people/recluster
[ "$STATUS" = 202 ] || fail "POST /people/recluster: $STATUS $BODY"
JR=$(jget job_id)
await_job "$JR"
[ "$(jget result.faces)" = 12 ] && [ "$(jget result.new_people)" = 0 ] ||
  fail "recluster: want 12 faces, no new person: $BODY"
echo "ok: recluster result: $(jget result)"
[ "$(people_summary)" = "$want" ] || fail "after a re-cluster: $(people_summary), want $want"
req GET "/faces/$FA/crop"
req GET "/people/$B/faces?limit=1000"
printf '%s' "$BODY" | grep -q "\"id\": *$FA\b" || fail "face $FA left B: $BODY"
echo "ok: the merge and the move survived a re-cluster"

# ---- an API restart keeps people ------------------------------------------------------------
api_stop
api_start --data "$DATA" --media-root "$T/media"
[ "$(people_summary)" = "$want" ] || fail "after a restart: $(people_summary), want $want"
req GET "/people/$A"
[ "$(jget name)" = Ann ] || fail "A's name after a restart: $BODY"
echo "ok: people survive an API restart"

# ---- named people as the labels of a face session ---------------------------------------------
expect_error 422 people_need_face_kind POST /training/sessions -H 'Content-Type: application/json' \
  --data-binary "{\"name\": \"p\", \"people\": [$A, $B]}"
post_json /training/sessions "{\"name\": \"people\", \"kind\": \"face\", \"people\": [$A, $B]}"
[ "$STATUS" = 202 ] || fail "session from people: $STATUS $BODY"
SID=$(jget id)
echo "ok: session from people with $(jget examples) examples"
await_session "$SID" succeeded
echo "ok: the session from people trained: $(session_field "$SID" metrics)"
vd_openapi_check
echo "library_people: all ok"
