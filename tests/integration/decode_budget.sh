#!/usr/bin/env bash
# decode_budget.sh (issue 18 item 12): decoded pixels are held against one budget per process
# (docs/images.md, "The decode budget"), so four 100-megapixel PNGs posted to /embeddings at
# once no longer cost the api four decoded images (4 x 300 MB): its peak resident memory
# (VmHWM from /proc/PID/status) stays under the documented bound, its RSS before the burst plus
# 3 bytes x the budget (VISIOND_DECODE_BUDGET, 200 M pixels by default) plus 200 MB for
# everything else a request holds. Memory is measured, nothing is timed. Then a budget too
# small for one image: a specific per-image error, the process going on.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pipeline.sh"
PY=/usr/bin/python3
$PY -c 'import onnx, numpy, cv2' 2>/dev/null || skip "python3-onnx, python3-numpy and python3-opencv are needed"
command -v vips >/dev/null || skip "the vips command (libvips-tools) is needed"
[ -z "${VISIOND_TEST_SANITIZED:-}" ] || skip "resident memory is not meaningful under ASan"
MODELS="$T/models"
$PY "$VISIOND_SOURCE_DIR/tests/lib/tiny_embed.py" models "$MODELS"
mkdir -p "$T/media"
# 10000 x 10000: exactly the 100 M pixel limit, 300 MB decoded; four files that differ by a
# byte after the PNG's end (decoders ignore it; the cache key, the SHA-256 of the bytes, differs)
vips black "$T/big.png" 10000 10000 --bands 3
for i in 1 2 3 4; do cp "$T/big.png" "$T/media/big$i.png" && printf '%s' "$i" >>"$T/media/big$i.png"; done

ms_start
api_start --data "$DATA" --media-root "$T/media"
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
post_json /embeddings "{\"model\": \"clip_dyn\", \"paths\": [\"$T/media/big1.png\"], \"vectors\": false}"
[ "$STATUS" = 200 ] && [ "$(jget computed)" = 1 ] || fail "one big PNG: $STATUS $BODY"
rss0=$(kib "$API_PID" VmRSS)
hwm0=$(kib "$API_PID" VmHWM)
budget=${VISIOND_DECODE_BUDGET:-200000000}
bound=$((rss0 + budget * 3 / 1024 + 200 * 1024))
echo "after one 100 Mpx decode: RSS $((rss0 / 1024)) MB, peak so far $((hwm0 / 1024)) MB; bound $((bound / 1024)) MB"

# four at once, each a cache miss (a fresh store key: the same pixels, another file each time)
for round in 1 2; do
  pids=()
  for i in 1 2 3 4; do
    r=$(vd_openapi_record POST /embeddings) # checked against api/openapi.json at exit
    ln -s "$T/burst$round.$i" "$r.body"
    curl -s --max-time 300 -o "$T/burst$round.$i" -D "$r.hdr" -H 'Content-Type: application/json' \
      --data-binary "{\"model\": \"clip_dyn\", \"paths\": [\"$T/media/big$i.png\"], \"vectors\": false}" \
      "$API/embeddings" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || fail "a request of the burst failed"; done
  for i in 1 2 3 4; do
    BODY=$(cat "$T/burst$round.$i")
    [ "$(jget failed)" = 0 ] || fail "burst $round, big$i.png: $BODY"
  done
  hwm=$(kib "$API_PID" VmHWM)
  echo "round $round: four 100 Mpx PNGs at once: api peak RSS $((hwm / 1024)) MB (bound $((bound / 1024)) MB)"
  [ "$hwm" -le "$bound" ] || fail "the api peaked at $((hwm / 1024)) MB, over the bound of $((bound / 1024)) MB"
  # next round: other bytes, so nothing comes from the cache
  for i in 1 2 3 4; do printf 'x' >>"$T/media/big$i.png"; done
done
api_stop

# a budget smaller than one image: each big image is refused with its own error, at once
VISIOND_DECODE_BUDGET=50000000 api_start --data "$DATA" --media-root "$T/media"
cp "$VISIOND_SOURCE_DIR/README.md" "$T/media/small.txt"
vips black "$T/media/small.png" 300 200 --bands 3
post_json /embeddings "{\"model\": \"clip_dyn\", \"paths\": [\"$T/media/big1.png\", \"$T/media/small.png\"], \"vectors\": false}"
[ "$STATUS" = 200 ] || fail "small budget: $STATUS $BODY"
[ "$(jget embeddings.0.code)" = too_large ] || fail "small budget: $BODY"
case "$(jget embeddings.0.error)" in "decode budget: the image needs 100000000 pixels, the budget is 50000000") ;; *) fail "small budget: $BODY" ;; esac
[ "$(jget embeddings.1.cached)" = false ] || fail "the small image after the refused one: $BODY"
echo "budget 50 M pixels: $(jget embeddings.0.error)"
api_stop
