#!/usr/bin/env bash
# store_pg_session.sh: a training session end to end on a PostgreSQL store: `visiond up
# --store postgres://...` (model server, a worker, the api), which hands the URL to its
# children through $VISIOND_STORE only (never on a command line), a folder session that
# trains and predicts, its rows in PostgreSQL (none in DATA/store.db), and the CLI
# (`visiond predict --store`) reading the same session. A wrong password: one message
# naming the URL without the password, exit 1. Skipped without $VISIOND_TEST_PG.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pipeline.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pg.sh"
[ -n "${VISIOND_TEST_PG:-}" ] || skip "VISIOND_TEST_PG is not set"

URL=$(pg_newdb store_session) || fail "cannot create a database"

# ---- a wrong password: one clear error, exit 1, the password never shown ------------
bad=${URL/visiond:visiond@/visiond:WrongPw9@}
rc=0; "$VISIOND" worker --data "$DATA" --store "$bad" >"$T/bad.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "worker with a wrong password exited $rc: $(cat "$T/bad.log")"
grep -q 'visiond:\*\*\*@' "$T/bad.log" || fail "the error does not name the URL: $(cat "$T/bad.log")"
! grep -q WrongPw9 "$T/bad.log" || fail "the password was shown: $(cat "$T/bad.log")"
[ "$(grep -c . "$T/bad.log")" -le 2 ] || fail "more than one error: $(cat "$T/bad.log")"
echo "wrong password: $(tail -1 "$T/bad.log")"

pl_models
pl_dataset "$T/media/fm" 8 test trouser bag sneaker
pl_dataset "$T/media/held" 3 train trouser bag sneaker
N=$(find "$T/media/fm" -type f | wc -l)

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
API="http://127.0.0.1:$port"
"$VISIOND" up --data "$DATA" --models "$MODELS" --listen "127.0.0.1:$port" --workers 1 \
  --concurrency 2 --model-threads 2 --media-root "$T/media" --store "$URL" >"$T/up.log" 2>&1 &
up=$!
track "$up"
trap 'pkill -9 -f -- "$DATA" 2>/dev/null || true; _vd_cleanup' EXIT
W_LOG="$T/up.log"
wait_for 120 curl -sf "$API/healthz" || { cat "$T/up.log"; fail "api did not come up"; }
grep -q "store postgres://visiond:\*\*\*@" "$T/up.log" || fail "up does not name the store: $(head -3 "$T/up.log")"
for k in $(pgrep -P "$up"); do
  ! tr '\0' ' ' <"/proc/$k/cmdline" | grep -q 'postgres' || fail "child $k has the store URL on its command line"
  tr '\0' '\n' <"/proc/$k/environ" | grep -qx "VISIOND_STORE=$URL" || fail "child $k has no VISIOND_STORE"
done

post_json /training/sessions "{\"name\": \"on-pg\", \"folder\": \"$T/media/fm\"}"
[ "$STATUS" = 202 ] || fail "create: $STATUS $BODY"
S=$(jget id)
await_session "$S" succeeded failed canceled
show_session "$S"; [ "$(jget state)" = succeeded ] || fail "session: $BODY"
[ "$(jget progress.done)/$(jget progress.total)" = "$N/$N" ] || fail "progress: $BODY"
acc=$(jget metrics.cv_accuracy)
held=$(find "$T/media/held" -type f | sort | /usr/bin/python3 -c 'import json,sys; print(json.dumps([l.strip() for l in sys.stdin]))')
post_json "/training/sessions/$S/predict" "{\"paths\": $held}"
[ "$STATUS" = 200 ] || fail "predict: $STATUS $BODY"
right=$(printf '%s' "$BODY" | /usr/bin/python3 -c '
import json, sys
p = json.load(sys.stdin)["predictions"]
print(sum(1 for x in p if "label" in x and x["path"].split("/")[-2] == x["label"]))')
echo "session on PostgreSQL: $N examples, cv_accuracy $acc, $right of 9 held-out right"

# The rows are in PostgreSQL, and no SQLite store was made.
[ "$(psql "$URL" -qAt -c "SELECT state FROM sessions WHERE id = '$S'")" = succeeded ] || fail "session not in PostgreSQL"
[ "$(psql "$URL" -qAt -c "SELECT count(*) FROM examples WHERE session_id = '$S'")" = "$N" ] || fail "examples not in PostgreSQL"
[ "$(psql "$URL" -qAt -c "SELECT count(*) > 0 FROM classifiers WHERE session_id = '$S'")" = t ] || fail "no classifier row"
[ "$(psql "$URL" -qAt -c "SELECT count(*) FROM embeddings")" -ge "$N" ] || fail "embeddings not cached in PostgreSQL"
[ ! -e "$DATA/store.db" ] || fail "DATA/store.db was created"

# The CLI reads the same session, from --store and from $VISIOND_STORE.
one=$(find "$T/media/held/bag" -type f | head -1)
"$VISIOND" predict --data "$DATA" --store "$URL" "$S" "$one" >"$T/pred" || fail "predict --store: $(cat "$T/pred")"
grep -q '"label"' "$T/pred" || fail "predict --store: $(cat "$T/pred")"
VISIOND_STORE=$URL "$VISIOND" predict --data "$DATA" "$S" "$one" >"$T/pred2" || fail "predict with VISIOND_STORE"
cmp -s "$T/pred" "$T/pred2" || fail "predict differs: $(cat "$T/pred" "$T/pred2")"

kill -TERM "$up"
rc=0; wait "$up" || rc=$?
[ "$rc" = 0 ] || { tail -20 "$T/up.log"; fail "up exited $rc"; }
echo "PASS store_pg_session"
