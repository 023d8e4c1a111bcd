#!/usr/bin/env bash
# session_orphan.sh: a training session whose job ends without ending the session (its last
# attempt's work-horse SIGKILLed, found by the chaos drill) is shown failed, with the job's
# error, instead of queued/running for ever. Cases: the job canceled in the queue while no
# worker runs it; every attempt of the job killed, the last one included.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pipeline.sh"
pl_models
pl_dataset "$T/media/fm" 3 test trouser bag
ms_start
Q="sqlite:$DATA/visiond.db"
api_start --data "$DATA" --media-root "$T/media" --queue "$Q"

post_json /training/sessions "{\"name\":\"orphan\",\"folder\":\"$T/media/fm\"}"
[ "$STATUS" = 202 ] || fail "create: $STATUS $BODY"
sid=$(jget id)
job=$(jget job_id)
[ "$(session_field "$sid" state)" = queued ] || fail "new session not queued: $BODY"
# Its job ends without a handler ever running (no worker): the session must not stay queued.
"$VISIOND" jobs cancel "$job" --queue "$Q" >/dev/null || fail "cancel $job"
show_session "$sid"
[ "$(jget state)" = failed ] || fail "session of a canceled job: $BODY"
jget message | grep -q "ended canceled" || fail "no reason: $BODY"
echo "ok: canceled job -> session failed ($(jget message))"

# The real case: every attempt's work-horse is SIGKILLed (the API gives the job 3 retries,
# so 4 kills), the last one included.
post_json /training/sessions "{\"name\":\"orphan2\",\"folder\":\"$T/media/fm\"}"
[ "$STATUS" = 202 ] || fail "create: $STATUS $BODY"
sid=$(jget id)
job=$(jget job_id)
# The model server is stopped (SIGSTOP) while the attempts run, so that each horse waits for
# its first answer and is surely killed mid-job: a training job on these few images can
# otherwise finish between the log line and the kill.
kill -STOP "$MS_PID"
worker_start --lease 3
for attempt in 1 2 3 4; do
  wait_for 60 grep -q "job $job (train_session) started, attempt $attempt/4" "$W_LOG" ||
    { kill -CONT "$MS_PID"; fail "attempt $attempt did not start"; }
  horse=$(grep "job $job (train_session) started, attempt $attempt/4" "$W_LOG" | sed 's/.*work-horse //')
  kill -9 "$horse" 2>/dev/null || true
done
kill -CONT "$MS_PID"
wait_for 60 grep -q "job $job (train_session) failed, attempt 4/4" "$W_LOG" || fail "job did not fail for good"
show_session "$sid"
[ "$(jget state)" = failed ] || fail "session of a job killed on its last attempt: $BODY"
jget message | grep -q "killed by SIGKILL" || fail "no reason: $BODY"
echo "ok: job killed on its last attempt -> session failed ($(jget message))"
worker_stop

# `visiond train` waits by the same rule (service/training.h, vd_svc_session_settle): its
# session's job canceled while no worker runs it, the session ends failed and train says so.
"$VISIOND" train --data "$DATA" --queue "$Q" --name orphan_cli --timeout 600 "$T/media/fm" >"$T/cli.json" 2>"$T/cli.err" &
cli=$!
track "$cli"
cjob() { sqlite3 "$DATA/store.db" "SELECT job_id FROM sessions WHERE name = 'orphan_cli'" 2>/dev/null; }
has_cjob() { [ -n "$(cjob)" ]; }
wait_for 60 has_cjob || fail "visiond train made no session: $(cat "$T/cli.err")"
"$VISIOND" jobs cancel "$(cjob)" --queue "$Q" >/dev/null || fail "cancel $(cjob)"
rc=0; wait "$cli" || rc=$?
[ "$rc" = 1 ] || fail "visiond train on a canceled job exited $rc: $(cat "$T/cli.json" "$T/cli.err")"
/usr/bin/python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert s["state"] == "failed" and "ended canceled" in s["message"], s' "$T/cli.json" ||
  fail "visiond train on a canceled job printed $(cat "$T/cli.json")"
echo "ok: visiond train: canceled job -> session failed"
api_stop
ms_stop
echo "session_orphan: ok"
