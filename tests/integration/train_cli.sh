#!/usr/bin/env bash
# train_cli.sh: `visiond train` and `visiond predict`, the CLI twins of POST /training/sessions
# and predict, against a real model server and worker. An unknown model or an unreachable
# model server is refused before anything is written (no session, no job); --no-wait prints
# the ids; a waited-for session ends succeeded with its metrics; predict labels new images
# and reports a broken file per file.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pipeline.sh"

pl_models
pl_dataset "$T/media/train" 6 train bag sneaker trouser
pl_dataset "$T/media/test" 3 test bag sneaker trouser
Q="sqlite:$DATA/visiond.db"
export VISIOND_QUEUE="$Q"
njobs() { "$VISIOND" queue stats --queue "$Q" | /usr/bin/python3 -c 'import json,sys; print(sum(json.load(sys.stdin)["counts"].values()))'; }
nsessions() { [ -f "$DATA/store.db" ] && sqlite3 "$DATA/store.db" 'SELECT count(*) FROM sessions' || echo 0; }

# No model server: said in seconds, nothing written.
rc=0
"$VISIOND" train --data "$DATA" --name early --no-wait "$T/media/train" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 1 ] || fail "train without a model server exited $rc: $(cat "$T/out" "$T/err")"
grep -q "not reachable" "$T/err" || fail "train without a model server: $(cat "$T/err")"
[ "$(nsessions)" = 0 ] || fail "a session was written without a model server"

ms_start
# An unknown model: refused before a session or a job exists.
rc=0
"$VISIOND" train --data "$DATA" --name bad --model no_such_model --no-wait "$T/media/train" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 1 ] || fail "train with an unknown model exited $rc: $(cat "$T/out" "$T/err")"
grep -q "no_such_model" "$T/err" || fail "the error does not name the model: $(cat "$T/err")"
[ "$(nsessions)" = 0 ] || fail "a session was written for an unknown model"
[ "$(njobs)" = 0 ] || fail "a job was enqueued for an unknown model"
# Usage errors exit 2.
rc=0; "$VISIOND" train --data "$DATA" "$T/media/train" 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "train without --name exited $rc"

# --no-wait: the ids, the job queued for a worker.
"$VISIOND" train --data "$DATA" --name queued --no-wait "$T/media/train" >"$T/nowait.json" ||
  fail "train --no-wait failed"
sid1=$(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["id"]); assert d["examples"]==18 and d["job_id"]' "$T/nowait.json") ||
  fail "train --no-wait printed $(cat "$T/nowait.json")"

# Waiting: a worker runs both sessions; the second's summary comes out when it is done.
worker_start
"$VISIOND" train --data "$DATA" --name waited --timeout 600 "$T/media/train" >"$T/waited.json" 2>"$T/waited.err" ||
  { cat "$T/waited.err" >&2; fail "train (waiting) failed"; }
/usr/bin/python3 - "$T/waited.json" <<'EOF' || fail "train summary: $(cat "$T/waited.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["state"] == "succeeded", d["state"]
assert d["model"] == "mobilenet_v2", d["model"]
m = d["metrics"]
print("waited session: cv_accuracy %.3f, macro_f1 %.3f" % (m["cv_accuracy"], m["macro_f1"]))
assert 0.0 <= m["cv_accuracy"] <= 1.0 and "confusion" in m
EOF
sid2=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$T/waited.json")
wait_for 300 sh -c "[ \"\$(sqlite3 '$DATA/store.db' \"SELECT state FROM sessions WHERE id='$sid1'\")\" = succeeded ]" ||
  fail "the --no-wait session did not succeed"

# predict: one line per file; a broken file is an error line and exit 1, the others still labelled.
head -c 100 "$(find "$T/media/test" -name '*.png' | head -1)" >"$T/broken.png"
rc=0
"$VISIOND" predict --data "$DATA" "$sid2" $(find "$T/media/test" -name '*.png' | sort) "$T/broken.png" >"$T/pred.jsonl" || rc=$?
[ "$rc" = 1 ] || fail "predict with a broken file exited $rc"
/usr/bin/python3 - "$T/pred.jsonl" "$T/broken.png" <<'EOF' || fail "predictions: $(cat "$T/pred.jsonl")"
import json, os, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) == 10, len(lines)
right = 0
for l in lines:
    if l["path"].endswith("broken.png"):
        assert "error" in l, l
        continue
    assert l["label"] in ("bag", "sneaker", "trouser", "unknown"), l
    right += l["label"] == os.path.basename(os.path.dirname(l["path"]))
print("predict: %d of 9 test images right" % right)
assert right >= 5, right  # three well-separated labels: chance is 3
EOF
rc=0; "$VISIOND" predict --data "$DATA" no-such-session "$T/broken.png" >/dev/null 2>"$T/err" || rc=$?
[ "$rc" = 1 ] && grep -q "no-such-session\|not found\|no session" "$T/err" || fail "predict with an unknown session: $rc $(cat "$T/err")"
worker_stop
ms_stop
echo "PASS train_cli"
