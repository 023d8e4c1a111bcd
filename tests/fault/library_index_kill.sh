#!/usr/bin/env bash
# library_index_kill.sh: kill -9 the process that owns the library index (the api) while the
# worker's index job is adding vectors, twice: once before the index was ever saved, once
# after a clean restart saved it (so the next start loads an older file and catches up from
# its seq). After the last restart every indexed asset is in the index and searchable by its
# id (itself first), and the index holds as many vectors as the store has indexed assets.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pipeline.sh"

pl_models
pl_dataset "$T/media/fm" 20 test tshirt_top trouser pullover dress coat sandal shirt sneaker bag ankle_boot
N=$(find "$T/media/fm" -type f | wc -l)
ms_start
worker_start
api_start --data "$DATA" --media-root "$T/media"
req GET /assets
[ "$STATUS" = 404 ] && [ "$(jget error.code)" = not_found ] && skip "this build has no /assets routes (the library's registration and index job)"
post_json /assets "{\"folder\": \"$T/media/fm\"}"
[ "$STATUS" = 202 ] || [ "$STATUS" = 201 ] || [ "$STATUS" = 200 ] || fail "POST /assets: $STATUS $BODY"
n_indexed() {
  req GET "/assets?state=indexed&limit=1000"
  printf '%s' "$BODY" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["assets"]))' 2>/dev/null || echo 0
}
at_least() { [ "$(n_indexed)" -ge "$1" ]; }

# 1. kill -9 while vectors arrive; no file was saved yet
wait_for 600 at_least 20 || fail "indexing did not start: $(tail -5 "$W_LOG")"
kill -KILL "$API_PID"; wait "$API_PID" 2>/dev/null || true
echo "killed the api with $(ls "$DATA/index" 2>/dev/null | wc -l) index files"
api_start --data "$DATA" --media-root "$T/media"
# 2. a clean restart saves the file; then kill -9 again while more arrive
wait_for 600 at_least 60 || fail "indexing stalled"
api_stop
[ -s "$DATA/index/image-mobilenet_v2.vindex" ] || fail "no index file after a clean stop"
api_start --data "$DATA" --media-root "$T/media"
kill -KILL "$API_PID"; wait "$API_PID" 2>/dev/null || true
api_start --data "$DATA" --media-root "$T/media"
wait_for 900 at_least "$N" || fail "not every file was indexed: $(n_indexed) of $N"
grep 'library index image mobilenet_v2:' "$API_LOG" || true

# every indexed asset is in the index and found by its own vector
req GET "/assets?state=indexed&limit=1000"
printf '%s' "$BODY" | /usr/bin/python3 -c 'import json,sys; [print(a["id"]) for a in json.load(sys.stdin)["assets"]]' >"$T/ids"
in_index() {
  req GET /metrics
  printf '%s' "$BODY" | grep -q "^visiond_library_index_vectors{space=\"image\",model=\"mobilenet_v2\"} $N\$"
}
wait_for 60 in_index || fail "the index does not hold $N vectors: $(printf '%s' "$BODY" | grep library_index_vectors)"
missing=0
while read -r id; do
  post_json /search "{\"asset_id\": $id, \"k\": 5}"
  [ "$STATUS" = 200 ] || fail "search $id: $STATUS $BODY"
  printf '%s' "$BODY" | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)["results"]
sys.exit(0 if any(x["asset_id"] == int(sys.argv[1]) and x["score"] > 0.9999 for x in r) else 1)' "$id" ||
    { missing=$((missing + 1)); echo "asset $id not found by its own vector: $BODY" >&2; }
done <"$T/ids"
[ "$missing" = 0 ] || fail "$missing of $N indexed assets are not searchable"
echo "all $N indexed assets searchable after two kill -9s of the index owner"
api_stop
worker_stop
ms_stop
echo PASS
