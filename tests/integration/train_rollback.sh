#!/usr/bin/env bash
# train_rollback.sh: a session whose train_session job cannot be enqueued is rolled back,
# by `visiond train` as by POST /training/sessions: no session stays behind (before the
# service layer, the CLI left a queued session that no job would ever run). The queue
# refuses new jobs with a trigger on its jobs table (the test runs as any user, root too,
# so a read-only file would not do).
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pipeline.sh"

pl_models
pl_dataset "$T/media/fm" 2 train bag trouser
Q="sqlite:$DATA/visiond.db"
"$VISIOND" queue stats --queue "$Q" >/dev/null || fail "cannot create the queue"
sqlite3 "$DATA/visiond.db" "CREATE TRIGGER refuse_jobs BEFORE INSERT ON jobs BEGIN SELECT RAISE(ABORT, 'this queue refuses new jobs'); END;" ||
  fail "cannot install the trigger"
nsessions() { [ -f "$DATA/store.db" ] && sqlite3 "$DATA/store.db" 'SELECT count(*) FROM sessions' || echo 0; }
nexamples() { [ -f "$DATA/store.db" ] && sqlite3 "$DATA/store.db" 'SELECT count(*) FROM examples' || echo 0; }
ms_start

rc=0
"$VISIOND" train --data "$DATA" --queue "$Q" --name refused --no-wait "$T/media/fm" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 1 ] || fail "train with a refusing queue exited $rc: $(cat "$T/out" "$T/err")"
[ "$(nsessions)" = 0 ] || fail "the CLI left $(nsessions) session(s) behind: $(sqlite3 "$DATA/store.db" 'SELECT id, name, state FROM sessions')"
[ "$(nexamples)" = 0 ] || fail "the CLI left $(nexamples) example(s) behind"
grep -q "train: queue: " "$T/err" || fail "train did not say the queue failed: $(cat "$T/err")"
echo "ok: the CLI rolled the session back ($(cat "$T/err"))"

api_start --data "$DATA" --media-root "$T/media" --queue "$Q"
post_json /training/sessions "{\"name\": \"refused\", \"folder\": \"$T/media/fm\"}"
[ "$STATUS" -ge 400 ] || fail "API with a refusing queue: $STATUS $BODY"
[ "$(nsessions)" = 0 ] || fail "the API left $(nsessions) session(s) behind"
echo "ok: the API rolled the session back ($STATUS $(jget error.code))"

# Once the queue takes jobs again, the same session starts.
sqlite3 "$DATA/visiond.db" "DROP TRIGGER refuse_jobs;"
"$VISIOND" train --data "$DATA" --queue "$Q" --name taken --no-wait "$T/media/fm" >"$T/out" || fail "train after the queue recovered"
[ "$(nsessions)" = 1 ] || fail "sessions after recovery: $(nsessions)"
echo "ok: taken once the queue recovers"
api_stop
ms_stop
