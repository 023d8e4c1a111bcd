#!/usr/bin/env bash
# media_missing.sh: a path the API accepted that the worker cannot see (paths under media roots
# are host-local: docs/deploy.md). The worker runs in a mount namespace of its own in which an
# empty tmpfs hides one media folder, as on a worker host where that folder is not mounted. A
# session with examples in the hidden folder and in a visible one succeeds with the visible
# ones; each hidden example has its own error naming the path, the worker's host and what every
# host that runs jobs needs. Skipped (77) without root/unshare, the models or Fashion-MNIST.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pipeline.sh"
[ "$(id -u)" = 0 ] || skip "a mount namespace needs root"
unshare --mount --propagation private true 2>/dev/null || skip "unshare --mount does not work here"
pl_models
pl_dataset "$T/media/shared" 6 test bag trouser
pl_dataset "$T/media/apionly" 2 test bag trouser
ms_start
W_LOG=$T/worker.log
unshare --mount --propagation private bash -c 'mount -t tmpfs none "$1" && shift && exec "$@"' _ \
  "$T/media/apionly" "$VISIOND" worker --data "$DATA" --media-root "$T/media" >>"$W_LOG" 2>&1 &
W_PID=$!
track "$W_PID"
api_start --data "$DATA" --media-root "$T/media"
ex=$(find "$T/media/shared" "$T/media/apionly" -type f | sort | python3 -c '
import json, sys, os
print(json.dumps({"name": "half-mounted", "examples": [
  {"path": p, "label": os.path.basename(os.path.dirname(p))} for p in sys.stdin.read().split()]}))')
post_json /training/sessions "$ex"
[ "$STATUS" = 202 ] && [ "$(jget examples)" = 16 ] || fail "the API did not accept every path: $STATUS $BODY"
S=$(jget id)
await_session "$S" succeeded failed canceled
show_session "$S"
[ "$(jget state)" = succeeded ] || fail "session: $BODY"
[ "$(jget progress.done)" = 16 ] || fail "progress: $BODY"
printf '%s' "$BODY" | python3 -c '
import json, sys
s = json.load(sys.stdin)
errs = s["errors"]
hidden = [e for e in errs if "/apionly/" in e["path"]]
assert len(errs) == 4 and len(hidden) == 4, errs
for e in errs:
    m = e["error"]
    assert e["path"] in m, m
    assert "not found on the worker" in m and "same path" in m, m
assert sum(s["metrics"]["counts"].values()) == 12, s["metrics"]["counts"]
print("each hidden example: " + errs[0]["error"])' || fail "the per-example errors: $BODY"
echo "media_missing: ok (12 examples trained, 4 unseen by the worker, each with its own error)"
