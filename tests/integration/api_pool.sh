#!/usr/bin/env bash
# api_pool.sh: the API keeps its store handles and model-server runners in pools
# (core/pool.h) and reuses them across requests. With real processes:
#   - many requests through the same pooled handles keep working (the store
#     answers from its cache, sessions list, the runner's connection is kept);
#   - the model server SIGKILLed: 503 model_server_unavailable while it is down
#     (even for a cached image, as before the pools); started again: the next
#     requests (several at once, so more than one pooled runner) succeed without
#     restarting the API;
#   - a model added to the models directory after the API started becomes usable
#     (a "not found" is not cached), and answers 422 unknown_model before;
#   - the store file deleted under the API: a fresh one is opened (the pooled
#     handle on the deleted file is not used);
#   - `visiond serve` exits 0 on SIGTERM (under ASan: no leak of pooled handles).
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pipeline.sh"
command -v curl >/dev/null || skip "curl is not installed"

pl_models
pl_dataset "$T/media/fm" 3 test bag sneaker trouser
mapfile -t imgs < <(find "$T/media/fm" -type f | sort)
[ "${#imgs[@]}" -ge 9 ] || fail "dataset: ${#imgs[@]} images"
ms_start
api_start --data "$DATA" --media-root "$T/media" --threads 2

embed_one() { # PATH [MODEL]: POST /embeddings of one image into STATUS/BODY
  post_json /embeddings "{\"model\": \"${2:-mobilenet_v2}\", \"paths\": [\"$1\"], \"vectors\": false}"
}

# ---- many requests through the pooled handles ----
embed_one "${imgs[0]}"
[ "$STATUS" = 200 ] && [ "$(jget computed)" = 1 ] || fail "first embedding: $STATUS $BODY"
for i in $(seq 1 30); do
  embed_one "${imgs[0]}"
  [ "$STATUS" = 200 ] && [ "$(jget cached)" = 1 ] || fail "cached embedding #$i: $STATUS $BODY"
  req GET "/training/sessions?limit=5"
  [ "$STATUS" = 200 ] || fail "sessions #$i: $STATUS $BODY"
done
# The runner's connection outlives its requests: the model server still has it
# (besides /healthz's own probe). One runner per request would have closed it.
req GET /healthz
conns=$(jget model_server.health.connections)
echo "model server connections seen by /healthz after 31 embeddings: $conns"
[ "$conns" -ge 2 ] || fail "no kept model-server connection: $BODY"
[ "$conns" -le 4 ] || fail "more model-server connections than pooled runners (2) + probe: $BODY"

# ---- the model server SIGKILLed and started again ----
embed_one "${imgs[1]}" # a second image computed: the pool holds a live runner
[ "$STATUS" = 200 ] && [ "$(jget computed)" = 1 ] || fail "before the restart: $STATUS $BODY"
kill -9 "$MS_PID"
wait "$MS_PID" 2>/dev/null || true
# While it is down: said clearly (the runner's cached metadata does not outlive its connection).
expect_error 503 model_server_unavailable POST /embeddings -H 'Content-Type: application/json' \
  --data-binary "{\"paths\": [\"${imgs[0]}\"], \"vectors\": false}"
ms_start
# Four uncached images at once (2 HTTP threads): every pooled runner meets the dead connection.
cpids=() rs=()
for k in 2 3 4 5; do
  rs[k]=$(vd_openapi_record POST /embeddings) # checked against api/openapi.json at exit
  curl -s --max-time 60 -o "${rs[k]}.body" -D "${rs[k]}.hdr" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "{\"paths\": [\"${imgs[$k]}\"], \"vectors\": false}" "$API/embeddings" >"$T/s$k" &
  cpids+=($!)
done
for p in "${cpids[@]}"; do wait "$p" || fail "a curl failed"; done
for k in 2 3 4 5; do
  BODY=$(cat "${rs[k]}.body")
  [ "$(cat "$T/s$k")" = 200 ] && [ "$(jget computed)" = 1 ] ||
    fail "after the model server restart, image $k: $(cat "$T/s$k") $BODY"
done
embed_one "${imgs[0]}"
[ "$STATUS" = 200 ] && [ "$(jget cached)" = 1 ] || fail "cached after the restart: $STATUS $BODY"
echo "model server restarted: the next requests succeeded"

# ---- a model added after the API started ----
embed_one "${imgs[6]}" late_model
[ "$STATUS" = 422 ] && [ "$(jget error.code)" = unknown_model ] || fail "unknown model: $STATUS $BODY"
/usr/bin/python3 - "$MODELS" <<'PY'
import json, os, sys
d = sys.argv[1]
m = json.load(open(os.path.join(d, "mobilenet_v2.json")))
m["name"] = "late_model"
m["onnx"] = os.path.join(d, "mobilenet_v2.onnx")
m["preload"] = False
tmp = os.path.join(d, ".late_model.json.tmp")  # the server skips dot files
json.dump(m, open(tmp, "w"))
os.rename(tmp, os.path.join(d, "late_model.json"))
PY
_late_ok() { embed_one "${imgs[6]}" late_model; [ "$STATUS" = 200 ]; }
# The model server rescans its directory at most once a second: poll (no timing asserted).
wait_for 60 _late_ok || fail "a model added after the start never became usable: $STATUS $BODY"
[ "$(jget computed)" = 1 ] && [ "$(jget dim)" = 1792 ] || fail "late_model: $BODY"
echo "a model added after the API started is usable"

# ---- the store file deleted under the API ----
ls "$DATA"/store.db* >/dev/null || fail "no store file in $DATA"
rm -f "$DATA"/store.db "$DATA"/store.db-wal "$DATA"/store.db-shm
embed_one "${imgs[0]}"
[ "$STATUS" = 200 ] || fail "after the store was deleted: $STATUS $BODY"
[ "$(jget computed)/$(jget cached)" = "1/0" ] || fail "a deleted store still answered from its cache: $BODY"
[ -f "$DATA/store.db" ] || fail "the store was not opened again at its path"
embed_one "${imgs[0]}"
[ "$(jget computed)/$(jget cached)" = "0/1" ] || fail "the new store did not keep the vector: $BODY"
echo "a deleted store file is opened afresh"

# ---- clean shutdown (ASan builds report leaked handles as a non-zero exit) ----
api_stop
ms_stop
echo "PASS api_pool"
