#!/usr/bin/env bash
# embed_face_budget.sh: face-mode embedding holds whole decoded images until their batch has
# run, against the process's decode budget (docs/images.md). A batch must end before it holds
# more than the budget can give it, or it waits for pixels only it could give back and its last
# images fail with "decode budget busy". With a budget of about two photos and a long wait,
# `visiond embed --face` on six photos embeds every one (exit 0, no error line).
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pipeline.sh"
DEMO=${VISIOND_PREFIX:-/opt/visiond}/deps/npm/@vladmandic+face-api@1.7.15/demo
[ -f "$DEMO/sample1.jpg" ] || skip "face-api demo photos not unpacked (scripts/setup.sh)"
pl_models
ms_start
files=$(ls "$DEMO"/sample[1-6].jpg)
# The photos are 2.5-3.0 Mpx each: 7 Mpx holds two of them, not three.
rc=0
VISIOND_DECODE_BUDGET=7000000 VISIOND_DECODE_WAIT_MS=20000 \
  "$VISIOND" embed --data "$DATA" --face --no-cache --no-vectors $files >"$T/out.jsonl" 2>"$T/err" || rc=$?
cat "$T/out.jsonl" | jq -c '[.path, .error.message // "ok"]' | sed "s|$DEMO/||"
[ "$(wc -l <"$T/out.jsonl")" = 6 ] || fail "want 6 lines: $(cat "$T/err")"
[ "$(jq -s 'map(select(.error)) | length' "$T/out.jsonl")" = 0 ] || fail "a photo failed under the budget"
[ "$rc" = 0 ] || fail "exit $rc: $(cat "$T/err")"
echo "PASS embed_face_budget"
