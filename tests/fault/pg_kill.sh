#!/usr/bin/env bash
# pg_kill.sh: PostgreSQL SIGKILLed and restarted in the middle of a training session, with the
# store and the queue on it. While it runs, clients keep writing through the API: training
# sessions (202 = acknowledged) and `count` jobs (201). The postmaster is SIGKILLed (no
# shutdown, no checkpoint), then started again on the same directory and port. Then:
#   - every acknowledged session and job is there (no acknowledged write lost);
#   - the session that was embedding, and every acknowledged session, succeed with every
#     example; each acknowledged count job ran exactly once (its side table);
#   - requests during the outage were answered 503 (not 500, not a hang), and the API and the
#     worker kept running and reconnected by themselves.
# A cluster of its own (tests/lib/pg.sh). Skipped (77) without PostgreSQL 15 or the models.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pipeline.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pg.sh"
[ -x /usr/lib/postgresql/15/bin/postgres ] || skip "PostgreSQL 15 is not installed"
command -v sqlite3 >/dev/null || skip "sqlite3 CLI missing"
WAIT_S=240
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PGDIR=$T/pg
trap 'pg_cluster_stop "$PGDIR"; _vd_cleanup' EXIT # the server is not a tracked child
chmod 755 "$T" # the server runs as user postgres
pg_cluster_start "$PGDIR" 127.0.0.1 "$PORT" >"$T/pg.log" 2>&1 || { cat "$T/pg.log" >&2; fail "pg_cluster_start"; }
URL=$(pg_cluster_url "$PGDIR")

pl_models
LABELS="trouser bag sneaker dress"
pl_dataset "$T/media/fm" 24 test $LABELS
N=$(find "$T/media/fm" -type f | wc -l)
ms_start
"$VISIOND" worker --data "$DATA" --store "$URL" --queue "$URL" --lease 3 --concurrency 2 \
  >>"$T/worker.log" 2>&1 &
W_PID=$!
W_LOG=$T/worker.log
track "$W_PID"
api_start --data "$DATA" --media-root "$T/media" --store "$URL" --queue "$URL"

# the big session, and small ones (two examples, already cached once the big one embedded them)
post_json /training/sessions "{\"name\": \"big\", \"folder\": \"$T/media/fm\"}"
[ "$STATUS" = 202 ] || fail "create: $STATUS $BODY"
SB=$(jget id)
a=$(ls "$T"/media/fm/bag/* | head -1) b=$(ls "$T"/media/fm/dress/* | head -1)
SMALL="{\"name\": \"small\", \"examples\": [{\"path\": \"$a\", \"label\": \"bag\"}, {\"path\": \"$b\", \"label\": \"dress\"}]}"
CDB=$T/count.db
sqlite3 "$CDB" "PRAGMA journal_mode=WAL; CREATE TABLE runs(job_id TEXT NOT NULL, attempt INT, pid INT);" >/dev/null
: >"$T/acked_sessions"
: >"$T/acked_jobs"
: >"$T/statuses"
: >"$T/acked_jobs.1"
: >"$T/acked_jobs.2"
# a client that writes as fast as it can until told to stop; records what was acknowledged
writer() {
  while [ ! -e "$T/stop" ]; do
    post_json /training/sessions "$SMALL"
    echo "session $STATUS" >>"$T/statuses"
    [ "$STATUS" = 202 ] && jget id >>"$T/acked_sessions"
    post_json /jobs "{\"type\": \"count\", \"payload\": {\"db\": \"$CDB\"}, \"max_retries\": 5}"
    echo "job $STATUS" >>"$T/statuses"
    [ "$STATUS" = 201 ] && jget id >>"$T/acked_jobs"
  done
}
job_writer() { # more job writes, to widen the window the kill falls in
  while [ ! -e "$T/stop" ]; do
    post_json /jobs "{\"type\": \"count\", \"payload\": {\"db\": \"$CDB\"}, \"max_retries\": 5}"
    echo "job $STATUS" >>"$T/statuses.$1"
    [ "$STATUS" = 201 ] && jget id >>"$T/acked_jobs.$1"
  done
}
writer &
WRITER=$!
track "$WRITER"
job_writer 1 &
JW1=$!
track "$JW1"
job_writer 2 &
JW2=$!
track "$JW2"
running() { [ "$(session_field "$SB" state)" = running ] && [ "$(session_field "$SB" progress.done)" -ge 1 ]; }
wait_for "$WAIT_S" running || fail "the big session never ran"
before=$(wc -l <"$T/acked_sessions")
jobs_before=$(wc -l <"$T/acked_jobs")
done_at=$(session_field "$SB" progress.done)
pg_cluster_kill "$PGDIR"
echo "PostgreSQL SIGKILLed at $done_at/$N examples of the big session, after $before acknowledged small sessions"
sleep 2
pg_cluster_restart "$PGDIR" >>"$T/pg.log" 2>&1 || { tail "$T/pg.log" >&2; fail "PostgreSQL did not restart"; }
echo "PostgreSQL restarted"
more_acked() { [ "$(wc -l <"$T/acked_sessions")" -ge $((before + 3)) ]; }
wait_for 60 more_acked || fail "no session was acknowledged after the restart: $(tail -3 "$T/statuses")"
touch "$T/stop"
wait "$WRITER" "$JW1" "$JW2" || true
cat "$T/acked_jobs.1" "$T/acked_jobs.2" >>"$T/acked_jobs"
cat "$T/statuses.1" "$T/statuses.2" >>"$T/statuses"
kill -0 "$API_PID" || fail "the api exited"
kill -0 "$W_PID" || fail "the worker exited"

# every acknowledged write is there and ends well
await_session "$SB" succeeded failed canceled
show_session "$SB"
[ "$(jget state)" = succeeded ] && [ "$(jget progress.done)" = "$N" ] && [ "$(jget errors)" = "[]" ] ||
  fail "the big session: $BODY"
ns=0
for s in $(cat "$T/acked_sessions"); do
  req GET "/training/sessions/$s"
  [ "$STATUS" = 200 ] || fail "acknowledged session $s is lost: $STATUS $BODY"
  ns=$((ns + 1))
done
for s in $(cat "$T/acked_sessions"); do await_session "$s" succeeded failed canceled; done
for s in $(cat "$T/acked_sessions"); do
  [ "$(session_field "$s" state)" = succeeded ] || fail "acknowledged session $s: $BODY"
done
nj=0 lost=""
for j in $(cat "$T/acked_jobs"); do
  req GET "/jobs/$j"
  [ "$STATUS" = 200 ] || lost="$lost $j(#$((nj + 1)),$STATUS)"
  nj=$((nj + 1))
done
[ -z "$lost" ] || fail "acknowledged jobs lost (of $nj; the kill came after $jobs_before):$lost"
job_done() { req GET "/jobs/$1"; [ "$(jget state)" = finished ]; }
for j in $(cat "$T/acked_jobs"); do wait_for 120 job_done "$j" || fail "job $j: $BODY"; done
sqlite3 "$CDB" "CREATE TABLE acked(id TEXT PRIMARY KEY);" ".import $T/acked_jobs acked"
missing=$(sqlite3 "$CDB" "SELECT count(*) FROM acked WHERE id NOT IN (SELECT job_id FROM runs)")
dups=$(sqlite3 "$CDB" "SELECT count(*) FROM (SELECT job_id FROM runs GROUP BY job_id HAVING count(*) > 1)")
[ "$missing" = 0 ] || fail "$missing acknowledged jobs never ran"
[ "$dups" = 0 ] || fail "$dups jobs ran twice"
bad=$(grep -cvE ' (201|202|503)$' "$T/statuses" || true)
[ "$bad" = 0 ] || fail "answers other than 201/202/503 during the outage: $(grep -vE ' (201|202|503)$' "$T/statuses" | sort | uniq -c)"
n503=$(grep -c ' 503$' "$T/statuses" || true)
echo "pg_kill: $ns acknowledged sessions and $nj acknowledged jobs, none lost; all succeeded/finished" \
  "once; big session $N/$N examples; $n503 requests answered 503 during the outage"
