# enqueue_bulk.sh: bulk enqueue (issue 17 item 2). `visiond jobs enqueue --count N` and
# `--stdin` (one payload per line: every line checked before any job is added, then batches
# of 1000 in one transaction each), and POST /jobs with an array (every item checked as a
# single job is; any refusal refuses the batch with each refused item listed; a taken id is
# 409; nothing of a refused batch is enqueued).
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
command -v curl >/dev/null || skip "curl is not installed"

mkdir -p "$T/media" "$T/data"
Q="sqlite:$T/data/visiond.db"
total() { sqlite3 "$T/data/visiond.db" "SELECT count(*) FROM jobs"; }

# ---- the CLI: --count crosses a batch boundary
"$VISIOND" jobs enqueue noop --count 2345 --queue "$Q" >"$T/ids" || fail "enqueue --count"
[ "$(sort -u "$T/ids" | wc -l)" = 2345 ] || fail "--count 2345 printed $(wc -l <"$T/ids") ids"
[ "$(total)" = 2345 ] || fail "--count: $(total) jobs in the queue"

# ---- --stdin: one job per line, blank lines skipped
printf '{"ms": 1}\n\n{"ms": 2}\n{"ms": 3}\n' | "$VISIOND" jobs enqueue sleep --stdin --queue "$Q" >"$T/sids" ||
  fail "enqueue --stdin"
[ "$(wc -l <"$T/sids")" = 3 ] || fail "--stdin printed $(wc -l <"$T/sids") ids"
[ "$(sqlite3 "$T/data/visiond.db" "SELECT payload FROM jobs WHERE id='$(sed -n 3p "$T/sids")'")" = '{"ms": 3}' ] ||
  fail "--stdin: the third line's payload"
# a bad line refuses everything (exit 2, nothing added), named by its line number
set +e
printf '{"ms": 1}\n{"ms": 2\n' | "$VISIOND" jobs enqueue sleep --stdin --queue "$Q" >"$T/out" 2>"$T/err"
rc=$?
set -e
[ "$rc" = 2 ] || fail "a bad --stdin line: exit $rc"
grep -q "line 2" "$T/err" || fail "the bad line is not named: $(cat "$T/err")"
[ ! -s "$T/out" ] || fail "ids printed for a refused input"
# the one payload check (vd_job_check) applies to each line: a refused path
set +e
printf '{"paths": ["/etc/passwd"], "model": "m"}\n' |
  "$VISIOND" jobs enqueue embed --stdin --media-root "$T/media" --queue "$Q" >/dev/null 2>"$T/err"
rc=$?
set -e
[ "$rc" = 2 ] && grep -q "line 1: refused" "$T/err" || fail "a refused path on stdin: $rc $(cat "$T/err")"
[ "$(total)" = 2348 ] || fail "refused input added jobs: $(total)"
set +e
"$VISIOND" jobs enqueue noop --stdin --count 2 --queue "$Q" </dev/null 2>/dev/null
rc=$?
set -e
[ "$rc" = 2 ] || fail "--stdin with --count: exit $rc"

# ---- POST /jobs with an array
api_start --data "$T/data" --media-root "$T/media" --threads 2 --model-server none
J=(-H 'Content-Type: application/json')
before=$(total)
req POST /jobs "${J[@]}" -d '[{"type":"noop"},{"type":"sleep","payload":{"ms":5},"priority":3},{"type":"noop","id":"bulk-1"}]'
[ "$STATUS" = 201 ] || fail "batch: $STATUS $BODY"
[ "$(jget count)" = 3 ] && [ "$(jget ids.2)" = bulk-1 ] || fail "batch reply: $BODY"
ID1=$(jget ids.1)
req GET "/jobs/$ID1"
[ "$(jget type)" = sleep ] && [ "$(jget priority)" = 3 ] && [ "$(jget payload.ms)" = 5 ] || fail "batch item 1: $BODY"
[ "$(total)" = $((before + 3)) ] || fail "batch: $(total) jobs"

# refusals: every refused item listed with its index; nothing enqueued
before=$(total)
req POST /jobs "${J[@]}" -d '[{"type":"noop"},{"type":"no.such.type"},{"type":"noop","priority":"high"},{"type":"embed","payload":{"paths":["/etc/passwd"],"model":"m"}}]'
[ "$STATUS" = 422 ] && [ "$(jget error.code)" = invalid_batch ] || fail "refused batch: $STATUS $BODY"
[ "$(jget error.items.0.index)" = 1 ] && [ "$(jget error.items.0.code)" = unknown_job_type ] || fail "item 1: $BODY"
[ "$(jget error.items.1.index)" = 2 ] && [ "$(jget error.items.1.status)" = 400 ] || fail "item 2: $BODY"
[ "$(jget error.items.2.index)" = 3 ] || fail "item 3: $BODY"
expect_error 400 invalid_batch POST /jobs "${J[@]}" -d '[{"type":"noop"}, 7]' # the first refusal's status
expect_error 422 invalid_batch POST /jobs "${J[@]}" -d '[]'
expect_error 409 job_exists POST /jobs "${J[@]}" -d '[{"type":"noop","id":"bulk-2"},{"type":"noop","id":"bulk-1"}]'
expect_error 409 job_exists POST /jobs "${J[@]}" -d '[{"type":"noop","id":"bulk-3"},{"type":"noop","id":"bulk-3"}]'
req GET /jobs/bulk-2
[ "$STATUS" = 404 ] || fail "a job of a refused batch was enqueued: $STATUS $BODY"
[ "$(total)" = "$before" ] || fail "refused batches added jobs: $(total) != $before"
# the largest batch, and one more
python3 -c 'import json; print(json.dumps([{"type": "noop"}] * 1000))' >"$T/b1000.json"
python3 -c 'import json; print(json.dumps([{"type": "noop"}] * 1001))' >"$T/b1001.json"
req POST /jobs "${J[@]}" --data-binary @"$T/b1000.json"
[ "$STATUS" = 201 ] && [ "$(jget count)" = 1000 ] || fail "1000 jobs: $STATUS ${BODY:0:200}"
expect_error 422 invalid_batch POST /jobs "${J[@]}" --data-binary @"$T/b1001.json"
[ "$(total)" = $((before + 1000)) ] || fail "after the largest batch: $(total)"
# other routes still refuse an array body
expect_error 400 invalid_type POST /jobs/bulk-1/requeue "${J[@]}" -d '[]'
api_stop
echo "enqueue_bulk: ok"
