#!/usr/bin/env bash
# embed_cache.sh: the embedding cache with real processes. Embedding the same folder
# twice computes nothing the second time (the model server's request and item counts,
# from its MODELS stats, do not move), whether through POST /embeddings, `visiond embed`
# or an `embed` job; the same bytes under another name are a hit; changed bytes are a
# miss; a bad image is a per-image error; an unreachable model server is said clearly.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pipeline.sh"

pl_models
pl_dataset "$T/media/fm" 4 test bag sneaker trouser
ms_start
api_start --data "$DATA" --media-root "$T/media"
paths=$(find "$T/media/fm" -type f | sort | /usr/bin/python3 -c 'import json,sys; print(json.dumps([l.strip() for l in sys.stdin]))')
n=$(find "$T/media/fm" -type f | wc -l)
stat_of() { # prints "requests items" of mobilenet_v2
  req GET /models
  printf '%s' "$BODY" | /usr/bin/python3 -c '
import json, sys
for m in json.load(sys.stdin)["models"]:
    if m["name"] == "mobilenet_v2": print(m["stats"]["requests"], m["stats"]["items"])'
}

# first pass: everything is computed
s0=$(stat_of)
post_json /embeddings "{\"model\": \"mobilenet_v2\", \"paths\": $paths}"
[ "$STATUS" = 200 ] || fail "embeddings: $STATUS $BODY"
[ "$(jget computed)/$(jget cached)/$(jget dim)" = "$n/0/1792" ] || fail "first pass: $(jget computed) computed, $(jget cached) cached"
[ "$(jget embeddings.0.cached)" = false ] || fail "first pass cached?"
v1=$(jget embeddings.0.vector)
s1=$(stat_of)
echo "first pass: model server stats $s0 -> $s1"
[ "$s1" != "$s0" ] || fail "the first pass did not reach the model server"
/usr/bin/python3 -c "import json,math,sys; v=json.loads(sys.argv[1]); n=math.sqrt(sum(x*x for x in v)); sys.exit(0 if abs(n-1)<1e-3 else 1)" "$v1" ||
  fail "vectors are not L2-normalised"

# second pass: all from the cache, nothing reaches the model server
post_json /embeddings "{\"paths\": $paths}"
[ "$STATUS" = 200 ] || fail "embeddings 2: $STATUS $BODY"
[ "$(jget computed)/$(jget cached)" = "0/$n" ] || fail "second pass: $(jget computed) computed, $(jget cached) cached"
[ "$(jget embeddings.0.vector)" = "$v1" ] || fail "the cached vector differs from the computed one"
[ "$(stat_of)" = "$s1" ] || fail "the second pass reached the model server: $(stat_of) vs $s1"

# the CLI twin through the same cache
"$VISIOND" embed --data "$DATA" --no-vectors $(find "$T/media/fm" -type f) >"$T/cli.jsonl"
[ "$(grep -c '"cached":true' "$T/cli.jsonl")" = "$n" ] || fail "visiond embed: $(head -2 "$T/cli.jsonl")"
[ "$(stat_of)" = "$s1" ] || fail "visiond embed reached the model server"

# an embed job through a worker
worker_start
req POST /jobs -H 'Content-Type: application/json' --data-binary "{\"type\": \"embed\", \"payload\": {\"paths\": $paths}}"
[ "$STATUS" = 201 ] || fail "enqueue embed: $STATUS $BODY"
jid=$(jget id)
_job_done() { req GET "/jobs/$jid"; [ "$(jget state)" = finished ] || [ "$(jget state)" = failed ]; }
wait_for 300 _job_done || fail "embed job: $BODY"
[ "$(jget state)" = finished ] || fail "embed job: $BODY"
[ "$(jget result.cached)/$(jget result.computed)" = "$n/0" ] || fail "embed job result: $BODY"
[ "$(jget progress.done)" = "$n" ] || fail "embed job progress: $BODY"
[ "$(stat_of)" = "$s1" ] || fail "the embed job reached the model server"

# same bytes under another name: a hit; other bytes: a miss; a bad image: its own error
first=$(find "$T/media/fm" -type f | sort | head -1)
cp "$first" "$T/media/copy.png"
"$VISIOND" convert --help >/dev/null # (binary present)
/usr/bin/python3 - "$first" "$T/media/flipped.png" <<'PY'
import sys, zlib, struct
# re-encode the PNG's pixels upside down with Python's zlib (no PIL needed)
data = open(sys.argv[1], "rb").read()
pos, chunks = 8, []
while pos < len(data):
    ln, = struct.unpack(">I", data[pos:pos+4]); typ = data[pos+4:pos+8]
    chunks.append((typ, data[pos+8:pos+8+ln])); pos += 12 + ln
ihdr = dict(chunks)[b"IHDR"]; w, h = struct.unpack(">II", ihdr[:8])
raw = zlib.decompress(b"".join(c for t, c in chunks if t == b"IDAT"))
assert ihdr[8] == 8 and ihdr[9] == 0, "expects 8-bit grey"
stride = w + 1
rows = [raw[i*stride:(i+1)*stride] for i in range(h)]
# undo filters (types 0-4) to raw pixels
prev = bytearray(w); out = []
for r in rows:
    f, line = r[0], bytearray(r[1:])
    for x in range(w):
        a = line[x-1] if x else 0; b = prev[x]; c = prev[x-1] if x else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p-a), abs(p-b), abs(p-c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    out.append(bytes(line)); prev = line
body = b"".join(b"\0" + r for r in reversed(out))
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
open(sys.argv[2], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(body)) + chunk(b"IEND", b""))
PY
printf 'not a picture' >"$T/media/bad.png"
post_json /embeddings "{\"paths\": [\"$T/media/copy.png\", \"$T/media/flipped.png\", \"$T/media/bad.png\"], \"vectors\": false}"
[ "$STATUS" = 200 ] || fail "embeddings 3: $STATUS $BODY"
[ "$(jget embeddings.0.cached)" = true ] || fail "a copy under another name was not a hit: $BODY"
[ "$(jget embeddings.1.cached)" = false ] || fail "changed bytes were a hit: $BODY"
[ "$(jget embeddings.2.error)" = "not an image" ] || fail "bad image: $BODY"
[ "$(jget computed)/$(jget cached)/$(jget failed)" = "1/1/1" ] || fail "mixed pass: $BODY"

# errors of the route itself
expect_error 422 unknown_model POST /embeddings -H 'Content-Type: application/json' --data-binary "{\"model\": \"nope\", \"paths\": [\"$first\"]}"
expect_error 422 no_paths POST /embeddings -H 'Content-Type: application/json' --data-binary '{"paths": []}'
expect_error 422 path_outside_media_roots POST /embeddings -H 'Content-Type: application/json' --data-binary '{"paths": ["/etc/hostname"]}'
# an upload is embedded (and cached) like a path
req POST /embeddings -F "model=mobilenet_v2" -F "x=@$first"
[ "$STATUS" = 200 ] && [ "$(jget embeddings.0.cached)" = true ] || fail "upload: $STATUS $BODY"

# the model server gone: a clear answer, from the API and the CLI
ms_stop
expect_error 503 model_server_unavailable GET /models
set +e
"$VISIOND" embed --data "$DATA" "$T/media/flipped.png" >/dev/null 2>"$T/err"; rc=$?
set -e
[ "$rc" = 1 ] && grep -q 'model server .* not reachable' "$T/err" || fail "CLI without a model server: rc $rc, $(cat "$T/err")"
echo "PASS embed_cache"
