#!/usr/bin/env bash
# library_search.sh: search and duplicates with real processes (model server, worker, api;
# docs/search.md). Photos are registered with POST /assets and indexed by the worker's
# `index` job; then: a search by path returns the exact duplicate first (score 1), its
# resized copy next; by asset id and by upload alike; GET /duplicates groups the photo with its
# copies and nothing else; a deleted asset is never returned (at once, before the index owner
# saw the removal); bad inputs get their codes; `visiond search` answers as POST /search; after an API restart the index comes from its
# file (the log line and /metrics say how many vectors were loaded vs caught up).
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pipeline.sh"

FACES=${VISIOND_PREFIX:-/opt/visiond}/deps/npm/@vladmandic+face-api@1.7.15/demo
[ -f "$FACES/sample1.jpg" ] || skip "face-api demo photos missing"
command -v vips >/dev/null || skip "vips (libvips-tools) missing"
pl_models
LIB="$T/media/lib"
mkdir -p "$LIB/photos" "$LIB/copies"
for i in 1 2 3 4; do cp "$FACES/sample$i.jpg" "$LIB/photos/p$i.jpg"; done
vips resize "$FACES/sample1.jpg" "$LIB/copies/p1-half.jpg" 0.5
vips copy "$FACES/sample1.jpg" "$LIB/copies/p1-q60.jpg[Q=60]"
cp "$FACES/sample1.jpg" "$T/media/query.jpg" # the same bytes as p1, outside the library

ms_start
worker_start
api_start --data "$DATA" --media-root "$T/media"
req GET /assets
[ "$STATUS" = 404 ] && [ "$(jget error.code)" = not_found ] && skip "this build has no /assets routes (the library's registration and index job)"
post_json /assets "{\"folder\": \"$LIB\"}"
[ "$STATUS" = 202 ] || [ "$STATUS" = 201 ] || [ "$STATUS" = 200 ] || fail "POST /assets: $STATUS $BODY"
indexed() {
  req GET "/assets?state=indexed&limit=100"
  [ "$STATUS" = 200 ] && [ "$(printf '%s' "$BODY" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["assets"]))')" = 6 ]
}
wait_for 600 indexed || fail "the 6 photos were not indexed: $BODY $(tail -5 "$W_LOG")"
asset_of() { # NAME: the id of the asset at that path
  req GET "/assets?limit=100"
  printf '%s' "$BODY" | /usr/bin/python3 -c '
import json, sys
for a in json.load(sys.stdin)["assets"]:
    if a["path"].endswith(sys.argv[1]): print(a["id"])' "$1"
}
P1=$(asset_of /photos/p1.jpg); HALF=$(asset_of /copies/p1-half.jpg); P2=$(asset_of /photos/p2.jpg)
[ -n "$P1" ] && [ -n "$HALF" ] && [ -n "$P2" ] || fail "assets: $BODY"

# the owner catches up by itself (no restart): wait until the search sees all 6
searched() { post_json /search "{\"path\": \"$T/media/query.jpg\", \"k\": 10}"; [ "$STATUS" = 200 ] && [ "$(jget results | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 6 ]; }
wait_for 60 searched || fail "search did not see the 6 assets: $STATUS $BODY"
[ "$(jget results.0.asset_id)" = "$P1" ] || fail "the exact duplicate is not first: $BODY"
/usr/bin/python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > 0.999 else 1)' "$(jget results.0.score)" || fail "exact duplicate score: $BODY"
case "$(jget results.1.path)" in *p1-half.jpg|*p1-q60.jpg) ;; *) fail "the copies are not next: $BODY" ;; esac
echo "search by path: $(jget results.0.path) $(jget results.0.score), $(jget results.1.path) $(jget results.1.score)"

# the CLI twin, through the same service function
"$VISIOND" search --data "$DATA" --k 2 "$T/media/query.jpg" >"$T/cli.json" || fail "visiond search failed"
[ "$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["asset_id"])' "$T/cli.json")" = "$P1" ] ||
  fail "visiond search: $(cat "$T/cli.json")"

# by asset id; by upload; with a folder filter
post_json /search "{\"asset_id\": $P2, \"k\": 3}"
[ "$STATUS" = 200 ] && [ "$(jget results.0.asset_id)" = "$P2" ] || fail "search by asset: $STATUS $BODY"
req POST /search -F "k=2" -F "file=@$T/media/query.jpg"
[ "$STATUS" = 200 ] && [ "$(jget results.0.asset_id)" = "$P1" ] || fail "search by upload: $STATUS $BODY"
post_json /search "{\"path\": \"$T/media/query.jpg\", \"k\": 10, \"folder\": \"$LIB/copies\"}"
[ "$STATUS" = 200 ] || fail "folder search: $STATUS $BODY"
printf '%s' "$BODY" | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)["results"]
assert len(r) == 2 and all("/copies/" in x["path"] for x in r), r' || fail "folder filter: $BODY"

# duplicates: p1 with its two copies, nothing else
req GET /duplicates
[ "$STATUS" = 200 ] || fail "duplicates: $STATUS $BODY"
printf '%s' "$BODY" | /usr/bin/python3 -c '
import json, sys
g = json.load(sys.stdin)["groups"]
assert len(g) == 1, g
paths = sorted(a["path"].split("/")[-1] for a in g[0]["assets"])
assert paths == ["p1-half.jpg", "p1-q60.jpg", "p1.jpg"], paths' || fail "duplicate groups: $BODY"

# a deleted asset is never returned, not even before the owner saw the removal
req DELETE "/assets/$P1"
[ "$STATUS" = 200 ] || [ "$STATUS" = 204 ] || fail "DELETE /assets/$P1: $STATUS $BODY"
post_json /search "{\"path\": \"$T/media/query.jpg\", \"k\": 10}"
[ "$STATUS" = 200 ] || fail "search after delete: $STATUS $BODY"
printf '%s' "$BODY" | grep -q "\"asset_id\": *$P1[,}]" && fail "a deleted asset was returned: $BODY"
[ "$(jget results.0.asset_id)" != "$P1" ] || fail "deleted asset first: $BODY"
expect_error 404 asset_not_found POST /search -H 'Content-Type: application/json' --data-binary "{\"asset_id\": $P1}"

# bad inputs
S=(-H 'Content-Type: application/json' --data-binary)
expect_error 422 k_out_of_range POST /search "${S[@]}" "{\"asset_id\": $P2, \"k\": 0}"
expect_error 422 k_out_of_range POST /search "${S[@]}" "{\"asset_id\": $P2, \"k\": 1001}"
expect_error 422 dimension_mismatch POST /search "${S[@]}" '{"vector": [1, 2, 3]}'
v=$(/usr/bin/python3 -c 'print([1e39] + [0.5] * 1791)')
expect_error 422 invalid_vector POST /search "${S[@]}" "{\"vector\": $v}"
v=$(/usr/bin/python3 -c 'print([0] * 1792)')
expect_error 422 invalid_vector POST /search "${S[@]}" "{\"vector\": $v}"
expect_error 400 invalid_type POST /search "${S[@]}" '{"vector": [1, "NaN"]}'
expect_error 404 no_index POST /search "${S[@]}" '{"model": "no_such_model", "vector": [1, 2]}'
expect_error 404 asset_not_found POST /search "${S[@]}" '{"asset_id": 999999}'
expect_error 422 one_query POST /search "${S[@]}" '{"k": 3}'
expect_error 422 one_query POST /search "${S[@]}" "{\"asset_id\": $P2, \"vector\": [1]}"
expect_error 422 text_unsupported POST /search "${S[@]}" '{"text": "a dog on a beach"}'
expect_error 422 path_outside_media_roots POST /search "${S[@]}" '{"path": "/etc/hostname"}'
expect_error 422 unknown_field POST /search "${S[@]}" '{"asset_id": 1, "kk": 1}'
expect_error 400 invalid_parameter GET "/duplicates?max_distance=abc"
expect_error 422 max_distance_out_of_range GET "/duplicates?max_distance=0.9"
expect_error 404 no_index GET "/duplicates?model=no_such_model"

# restart: the index comes from its file, nothing is read again
live=5
api_stop
api_start --data "$DATA" --media-root "$T/media"
line() { grep -q 'library index image mobilenet_v2:' "$API_LOG"; }
wait_for 60 line || fail "no index line in the log: $(cat "$API_LOG")"
grep 'library index image mobilenet_v2:' "$API_LOG"
grep -q "library index image mobilenet_v2: $live vectors loaded from its file, 0 caught up" "$API_LOG" ||
  fail "the restarted index did not come from its file: $(grep 'library index' "$API_LOG")"
req GET /metrics
printf '%s' "$BODY" | grep -q "^visiond_library_index_loaded_from_file{space=\"image\",model=\"mobilenet_v2\"} $live\$" ||
  fail "metrics: $(printf '%s' "$BODY" | grep library_index)"
printf '%s' "$BODY" | grep -q "^visiond_library_index_caught_up_total{space=\"image\",model=\"mobilenet_v2\"} 0\$" ||
  fail "metrics: $(printf '%s' "$BODY" | grep library_index)"
post_json /search "{\"asset_id\": $HALF, \"k\": 1}"
[ "$STATUS" = 200 ] && [ "$(jget results.0.asset_id)" = "$HALF" ] || fail "search after restart: $STATUS $BODY"
api_stop
worker_stop
ms_stop
echo PASS
