#!/usr/bin/env bash
# clip_parity.sh (issue 15 items 1-3): an Immich-layout CLIP folder, built by torch with random
# weights (tests/oracle/clip_torch.py: a ViT image tower and a causal text tower exported as
# Immich exports them: "image" float32 [1,3,32,32], "text" int32 [1,77], batch fixed at 1), is
# dropped into the models directory with no metadata file, and:
# - visiond's vectors through the HTTP API and the model server equal torch's within 1e-4, for
#   images and texts (the max abs difference per tower is printed); `visiond embed --text` too;
# - texts longer than the context are truncated (the end token kept), said per text;
# - bad input: an empty text list, texts to an image model with no text tower, images to a text
#   model, texts and paths at once: specific 4xx;
# - text search (POST /search {"text"}) over the library indexed with the image tower ranks the
#   photos as torch's cosines do, with torch's scores;
# - a training session with prompt_priors trains with the labels' prompt vectors as priors;
#   a model without a text tower is refused (no_text_tower);
# - bad folders: a tokenizer that does not parse, a tower without its model.onnx: listed as
#   invalid naming the file, in the log too; the other towers of those folders still serve.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pipeline.sh"
PY=/usr/bin/python3
$PY -c 'import torch, onnx' 2>/dev/null || skip "python3-torch (with onnx export) missing"
GEN="$T/gen"
MODELS="$T/models"
mkdir -p "$GEN" "$MODELS"
$PY "$VISIOND_SOURCE_DIR/tests/oracle/clip_torch.py" build "$GEN" tinyclip >"$T/torch.log" 2>&1 ||
  { cat "$T/torch.log" >&2; fail "clip_torch.py failed"; }
cp -r "$GEN/tinyclip" "$GEN/tinyclip64" "$MODELS/"
# a folder whose tokenizer does not parse; one whose text tower lacks its model.onnx; one
# without a text tower at all (an image model only)
cp -r "$GEN/tinyclip" "$MODELS/badtok"
printf '{"model": {"vocab": ' >"$MODELS/badtok/textual/tokenizer.json"
cp -r "$GEN/tinyclip" "$MODELS/halfclip"
rm "$MODELS/halfclip/textual/model.onnx"
cp -r "$GEN/tinyclip" "$MODELS/visualonly"
rm -r "$MODELS/visualonly/textual"

ms_start
# the photo library embeds with the CLIP image tower (no faces): text search below
api_start --data "$DATA" --media-root "$GEN/images" --library-model tinyclip --library-face-model ""

# ---- what the models directory became ----------------------------------------------------
req GET /models
[ "$STATUS" = 200 ] || fail "GET /models: $STATUS $BODY"
printf '%s' "$BODY" >"$T/models.json"
$PY - "$T/models.json" "$MODELS" <<'PY' || fail "GET /models: $(cat "$T/models.json" | head -c 3000)"
import json, sys
j, d = json.load(open(sys.argv[1])), sys.argv[2]
names = {m["name"]: m for m in j["models"]}
for n in ("tinyclip", "tinyclip.textual", "tinyclip64.textual", "badtok", "halfclip", "visualonly"):
    assert n in names, n
assert "badtok.textual" not in names and "halfclip.textual" not in names
t = names["tinyclip.textual"]
assert t["task"] == "text_embedding" and t["input_shape"] == [-1, 77] and t["input_dtype"] == "int32", t
assert t["image_model"] == "tinyclip" and names["tinyclip"]["text_model"] == "tinyclip.textual"
v = names["tinyclip"]
assert v["task"] == "image_embedding" and v["input_shape"] == [-1, 3, 32, 32] and v["dim"] == 16, v
assert "image_model" not in names["tinyclip64.textual"]
inv = {i["file"]: i["error"] for i in j["invalid"]}
assert inv[d + "/badtok/textual"].startswith(d + "/badtok/textual/tokenizer.json"), inv
assert inv[d + "/halfclip/textual"] == d + "/halfclip/textual/model.onnx: missing", inv
print("models: tinyclip (image), tinyclip.textual (text); invalid:")
for f, e in inv.items(): print("  " + e)
PY
grep -q "badtok/textual/tokenizer.json" "$MS_LOG" || fail "the bad tokenizer is not named in the log"

# ---- parity with torch: images, then texts, through the API ------------------------------
imgs=$(ls "$GEN/images" | $PY -c 'import json,sys; print(json.dumps([sys.argv[1] + "/" + l.strip() for l in sys.stdin]))' "$GEN/images")
post_json /embeddings "{\"model\": \"tinyclip\", \"paths\": $imgs}"
[ "$STATUS" = 200 ] || fail "image embeddings: $STATUS $BODY"
printf '%s' "$BODY" >"$T/img.json"
texts=$($PY -c 'import json,sys; print(json.dumps(list(json.load(open(sys.argv[1]))["texts"])))' "$GEN/ref.json")
post_json /embeddings "{\"model\": \"tinyclip\", \"texts\": $texts}"
[ "$STATUS" = 200 ] || fail "text embeddings: $STATUS $BODY"
printf '%s' "$BODY" >"$T/txt.json"
$PY - "$GEN/ref.json" "$T/img.json" "$T/txt.json" <<'PY' || fail "parity"
import json, os, sys
ref = json.load(open(sys.argv[1]))
img, txt = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
def diff(a, b):
    assert len(a) == len(b), (len(a), len(b))
    return max(abs(x - y) for x, y in zip(a, b))
di = max(diff(e["vector"], ref["images"][os.path.basename(e["path"])]) for e in img["embeddings"])
assert txt["text_model"] == "tinyclip.textual" and txt["dim"] == 16, txt["text_model"]
dt = max(diff(e["vector"], ref["texts"][e["text"]]) for e in txt["embeddings"])
trunc = {e["text"]: e["truncated"] for e in txt["embeddings"]}
assert trunc == ref["truncated"], (trunc, ref["truncated"])
assert any(trunc.values())
print(f"parity with torch: tinyclip (visual) max abs diff {di:.2e} over {len(img['embeddings'])} "
      f"images; tinyclip.textual max abs diff {dt:.2e} over {len(txt['embeddings'])} texts "
      f"({sum(trunc.values())} truncated)")
assert di < 1e-4 and dt < 1e-4, (di, dt)
PY
# the same tower exported with int64 ids and a dynamic batch: the server converts the ids
post_json /embeddings "{\"model\": \"tinyclip64.textual\", \"texts\": $texts}"
[ "$STATUS" = 200 ] || fail "int64 text tower: $STATUS $BODY"
printf '%s' "$BODY" >"$T/txt64.json"
$PY - "$GEN/ref.json" "$T/txt64.json" <<'PY' || fail "int64 parity"
import json, sys
ref, txt = json.load(open(sys.argv[1]))["texts"], json.load(open(sys.argv[2]))
d = max(abs(x - y) for e in txt["embeddings"] for x, y in zip(e["vector"], ref[e["text"]]))
print(f"parity with torch: tinyclip64.textual (int64 ids, dynamic batch) max abs diff {d:.2e}")
assert d < 1e-4, d
PY
# again: from the cache, the same vectors
post_json /embeddings "{\"model\": \"tinyclip.textual\", \"texts\": $texts}"
[ "$STATUS" = 200 ] && [ "$(jget cached)" = "$($PY -c 'import json,sys; print(len(json.loads(sys.argv[1])))' "$texts")" ] ||
  fail "cached text embeddings: $STATUS $BODY"

# ---- zero-shot: softmax of 100 x cosine, as torch computes it ---------------------------------
post_json /classify "{\"model\": \"tinyclip\", \"labels\": [\"dog\", \"cat\", \"beach\"], \"paths\": $imgs}"
[ "$STATUS" = 200 ] || fail "classify: $STATUS $BODY"
printf '%s' "$BODY" >"$T/zs.json"
$PY - "$GEN/ref.json" "$T/zs.json" <<'PY' || fail "zero-shot: $(cat "$T/zs.json")"
import json, os, sys
ref = json.load(open(sys.argv[1]))["zero_shot"]
zs = json.load(open(sys.argv[2]))
assert zs["text_model"] == "tinyclip.textual" and zs["template"] == "a photo of a {label}"
d = 0
for r in zs["results"]:
    want = ref[os.path.basename(r["path"])]
    d = max(d, max(abs(s - want[l]) for l, s in zip(zs["labels"], r["scores"])))
    assert r["label"] == max(want, key=want.get)
print(f"zero-shot scores: max abs diff {d:.2e} from torch's over {len(zs['results'])} images")
assert d < 1e-4
PY
post_json /classify "{\"model\": \"tinyclip.textual\", \"labels\": [\"dog\", \"cat\"], \"paths\": $imgs, \"template\": \"{label}\"}"
[ "$STATUS" = 200 ] && [ "$(jget model)" = tinyclip ] || fail "classify with the text tower's name: $STATUS $BODY"
expect_error 422 too_few_labels POST /classify -H 'Content-Type: application/json' \
  --data-binary "{\"model\": \"tinyclip\", \"labels\": [\"dog\"], \"paths\": $imgs}"
expect_error 422 invalid_value POST /classify -H 'Content-Type: application/json' \
  --data-binary "{\"model\": \"tinyclip\", \"labels\": [\"dog\", \"cat\"], \"paths\": $imgs, \"template\": \"a photo\"}"
expect_error 422 model_task_mismatch POST /classify -H 'Content-Type: application/json' \
  --data-binary "{\"model\": \"visualonly\", \"labels\": [\"dog\", \"cat\"], \"paths\": $imgs}"

# ---- text search over the library (POST /search {"text"}) -----------------------------------
worker_start
post_json /assets "{\"folder\": \"$GEN/images\"}"
[ "$STATUS" = 202 ] || fail "POST /assets: $STATUS $BODY"
nimg=$($PY -c 'import json,sys; print(len(json.loads(sys.argv[1])))' "$imgs")
found_all() { post_json /search '{"model": "tinyclip", "text": "a photo of a dog", "k": 10}'; [ "$STATUS" = 200 ] && [ "$(jget results | $PY -c 'import json,sys; print(len(json.load(sys.stdin)))')" = "$nimg" ]; }
wait_for 300 found_all || fail "text search did not see the $nimg photos: $STATUS $BODY $(tail -5 "$W_LOG")"
for q in "a photo of a dog" "don't stop"; do
  post_json /search "{\"model\": \"tinyclip\", \"text\": \"$q\", \"k\": 10}"
  [ "$STATUS" = 200 ] || fail "text search '$q': $STATUS $BODY"
  printf '%s' "$BODY" >"$T/ts.json"
  $PY - "$GEN/ref.json" "$T/ts.json" "$q" <<'PY' || fail "text search '$q': $(cat "$T/ts.json")"
import json, os, sys
ref, got, q = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
t = ref["texts"][q]
want = {f: sum(a * b for a, b in zip(t, v)) for f, v in ref["images"].items()}
res = got["results"]
order = [os.path.basename(r["path"]) for r in res]
assert order == sorted(want, key=want.get, reverse=True), (order, want)
d = max(abs(r["score"] - want[os.path.basename(r["path"])]) for r in res)
print(f"text search '{q}': {order}, scores max abs diff {d:.2e} from torch's cosines")
assert d < 1e-4, d
PY
done
# (text with an indexed model that has no text tower, 422 text_unsupported: library_search.sh)

# ---- a session with prompt priors: the labels' prompts through the text tower --------------
post_json /training/sessions "{\"name\": \"priors\", \"model\": \"tinyclip\", \"prompt_priors\": true, \"examples\": [{\"path\": \"$GEN/images/img0_32.png\", \"label\": \"dog\"}, {\"path\": \"$GEN/images/img1_32.png\", \"label\": \"cat\"}]}"
[ "$STATUS" = 202 ] || fail "session with prompt_priors: $STATUS $BODY"
PSID=$(jget id)
await_session "$PSID" succeeded
session_field "$PSID" metrics >"$T/pm.json"
$PY -c 'import json,sys; m=json.load(open(sys.argv[1])); p=m["prompt_priors"]; assert p["labels"] == 2 and p["weight"] == 1, m' "$T/pm.json" ||
  fail "prompt priors metrics: $(cat "$T/pm.json")"
echo "session with prompt priors: $(cat "$T/pm.json" | head -c 300)"
expect_error 422 no_text_tower POST /training/sessions -H 'Content-Type: application/json' \
  --data-binary "{\"name\": \"p\", \"model\": \"visualonly\", \"prompt_priors\": true, \"examples\": [{\"path\": \"$GEN/images/img0_32.png\", \"label\": \"dog\"}, {\"path\": \"$GEN/images/img1_32.png\", \"label\": \"cat\"}]}"
expect_error 422 invalid_value POST /training/sessions -H 'Content-Type: application/json' \
  --data-binary "{\"name\": \"p\", \"kind\": \"face\", \"prompt_priors\": true, \"examples\": [{\"path\": \"$GEN/images/img0_32.png\", \"label\": \"dog\"}, {\"path\": \"$GEN/images/img1_32.png\", \"label\": \"cat\"}]}"
worker_stop

# ---- the CLI: the same service function ---------------------------------------------------
"$VISIOND" embed --data "$DATA" --model tinyclip --text "a photo of a dog" --text "don't stop" >"$T/cli.out" 2>"$T/cli.err" ||
  fail "visiond embed --text: $(cat "$T/cli.err")"
# metadata read from the folder here (--models), not through the model server's MODELS answer
"$VISIOND" embed --data "$DATA" --no-cache --models "$MODELS" --model tinyclip.textual --text "a photo of a dog" >"$T/cli3.out" 2>"$T/cli.err" ||
  fail "visiond embed --models --text: $(cat "$T/cli.err")"
$PY -c 'import json,sys; a=json.loads(open(sys.argv[1]).readline()); b=json.load(open(sys.argv[2])); sys.exit(a["vector"] != b["vector"] or b["cached"])' "$T/cli.out" "$T/cli3.out" ||
  fail "embed --models: $(cat "$T/cli3.out")"
$PY - "$GEN/ref.json" "$T/cli.out" <<'PY' || fail "visiond embed --text: $(cat "$T/cli.out")"
import json, sys
ref = json.load(open(sys.argv[1]))["texts"]
lines = [json.loads(l) for l in open(sys.argv[2])]
assert len(lines) == 2
d = max(abs(x - y) for l in lines for x, y in zip(l["vector"], ref[l["text"]]))
print(f"visiond embed --text: max abs diff {d:.2e}")
assert d < 1e-4
PY

# ---- bad input -----------------------------------------------------------------------------
expect_error 422 no_texts POST /embeddings -H 'Content-Type: application/json' \
  --data-binary '{"model": "tinyclip", "texts": []}'
expect_error 422 model_task_mismatch POST /embeddings -H 'Content-Type: application/json' \
  --data-binary '{"model": "visualonly", "texts": ["a dog"]}'
echo "texts to an image model without a text tower: $(jget error.message)"
expect_error 422 model_task_mismatch POST /embeddings -H 'Content-Type: application/json' \
  --data-binary "{\"model\": \"tinyclip.textual\", \"paths\": $imgs}"
echo "images to a text model: $(jget error.message)"
expect_error 422 invalid_value POST /embeddings -H 'Content-Type: application/json' \
  --data-binary "{\"model\": \"tinyclip\", \"texts\": [\"a\"], \"paths\": $imgs}"
expect_error 422 invalid_text POST /embeddings -H 'Content-Type: application/json' \
  --data-binary '{"model": "tinyclip", "texts": ["a", 3]}'
expect_error 422 unknown_model POST /embeddings -H 'Content-Type: application/json' \
  --data-binary '{"texts": ["a dog"]}'
expect_error 422 unknown_model POST /embeddings -H 'Content-Type: application/json' \
  --data-binary '{"model": "halfclip.textual", "texts": ["a dog"]}'
# the other towers of the bad folders still serve
post_json /embeddings "{\"model\": \"badtok\", \"paths\": $imgs, \"vectors\": false}"
[ "$STATUS" = 200 ] && [ "$(jget failed)" = 0 ] || fail "badtok's image tower: $STATUS $BODY"
rc=0
"$VISIOND" embed --data "$DATA" --model visualonly --text "a dog" >"$T/cli2.out" 2>"$T/cli2.err" || rc=$?
[ "$rc" = 1 ] && grep -q "no text tower" "$T/cli2.err" || fail "embed --text with an image model: rc $rc $(cat "$T/cli2.err")"
api_stop
ms_stop
