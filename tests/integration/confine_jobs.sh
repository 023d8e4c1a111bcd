#!/usr/bin/env bash
# confine_jobs.sh: issue 18 items 1, 2, 3 and 11 against real processes (`visiond serve`,
# `visiond model-server`, `visiond worker`), with the test job types off in the api:
#   1. POST /jobs and `visiond jobs enqueue` check an embed job's paths as the routes do
#      (src/jobspec/jobspec.h, vd_job_check): /etc/shadow, a file outside the roots and a
#      missing file outside the roots are all 422 path_outside_media_roots, same message (no
#      existence oracle);
#   2/3. files swapped after the POST (the job waits in the queue: no worker runs yet) for a
#      symlink to a file outside the roots, a symlink to /dev/zero and a FIFO: the worker,
#      started with --media-root, answers each with a per-file error, never reads the
#      outside file (its sha256 appears nowhere), never blocks; a training session the same;
#      a worker without --media-root still refuses the FIFO and /dev/zero without blocking;
#   11. test job types (count, alloc, crash, noop) are refused by the api, the CLI and a
#      worker's registry unless VISIOND_TEST_JOBS=1.
# Before the fix the FIFO blocked the work-horse in open(2) forever and the outside file was
# embedded: this test then fails at its bounded waits (WAIT_S = 180 s).
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pipeline.sh"
WAIT_S=180 # pipeline.sh says 900: a hang must fail sooner
V=$VISIOND
Q="sqlite:$DATA/visiond.db"

pl_models
pl_dataset "$T/media/fm" 5 test bag trouser
F="$T/media/fm"
mapfile -t BAG < <(find "$F/bag" -type f | sort)
mapfile -t TRO < <(find "$F/trouser" -type f | sort)
mkdir -p "$T/outside"
cp "${TRO[4]}" "$T/outside/secret.png" && printf 'x' >>"$T/outside/secret.png" # a valid image, its own hash
SECRET_SHA=$(sha256sum "$T/outside/secret.png" | cut -d' ' -f1)
ms_start
# the api as in production: no test job types
unset VISIOND_TEST_JOBS
api_start --data "$DATA" --media-root "$T/media"
export VISIOND_TEST_JOBS=1

# ---- 1: payload paths confined before enqueue; outside is outside, existing or not ----------
shown_msg() { jget error.message | sed "s#'[^']*'#'P'#g"; }
first=""
for p in /etc/shadow "$T/outside/secret.png" /etc/nonexistent "$T/outside/missing.png"; do
  post_json /jobs "{\"type\":\"embed\",\"payload\":{\"paths\":[\"$p\"]}}"
  [ "$STATUS" = 422 ] && [ "$(jget error.code)" = path_outside_media_roots ] ||
    fail "POST /jobs embed $p: $STATUS $BODY"
  m=$(shown_msg); [ -n "$first" ] || first=$m
  [ "$m" = "$first" ] || fail "outside paths answered differently: '$m' vs '$first'"
done
echo "ok: 4 outside paths (2 existing, 2 not): 422 path_outside_media_roots, one message"
ln -s "$T/outside/secret.png" "$T/media/escape.png"
expect_job() { # STATUS CODE PAYLOAD
  post_json /jobs "{\"type\":\"embed\",\"payload\":$3}"
  [ "$STATUS" = "$1" ] && [ "$(jget error.code)" = "$2" ] || fail "embed $3: $STATUS $BODY (want $1 $2)"
}
expect_job 422 path_symlink_escape "{\"paths\":[\"$T/media/escape.png\"]}"
expect_job 422 path_dotdot "{\"paths\":[\"$F/../fm/bag/x.png\"]}"
expect_job 422 path_not_absolute "{\"paths\":[\"fm/bag/x.png\"]}"
expect_job 404 path_not_found "{\"paths\":[\"$F/nope.png\"]}"
expect_job 422 invalid_payload "{\"paths\":[]}"
expect_job 422 invalid_payload "{\"paths\":[\"${BAG[0]}\"],\"mode\":\"crop\"}"
expect_job 422 invalid_payload "{\"paths\":[\"${BAG[0]}\"],\"colour\":1}"
post_json /jobs '{"type":"train_session","payload":{"session_id":"../x"}}'
[ "$STATUS" = 422 ] && [ "$(jget error.code)" = invalid_payload ] || fail "train_session ../x: $STATUS $BODY"
# the CLI runs the same check
rc=0; $V jobs enqueue embed --queue "$Q" --media-root "$T/media" --payload '{"paths":["/etc/shadow"]}' 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q path_outside_media_roots "$T/err" || fail "jobs enqueue /etc/shadow: rc $rc $(cat "$T/err")"
rc=0; $V jobs enqueue embed --queue "$Q" --payload '{"paths":["rel.png"]}' 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q path_not_absolute "$T/err" || fail "jobs enqueue rel.png: rc $rc $(cat "$T/err")"
echo "ok: symlink escape, .., relative, missing, bad payloads refused by POST /jobs and jobs enqueue"

# ---- 11: test job types only with VISIOND_TEST_JOBS=1 -----------------------------------------
for t in count alloc crash noop; do
  for any in false true; do
    post_json /jobs "{\"type\":\"$t\",\"any_type\":$any,\"payload\":{\"db\":\"$DATA/visiond.db\",\"mb\":64}}"
    [ "$STATUS" = 422 ] && [ "$(jget error.code)" = test_job_type ] || fail "POST /jobs $t (any_type $any): $STATUS $BODY"
  done
done
rc=0; env -u VISIOND_TEST_JOBS "$V" jobs enqueue count --queue "$Q" --payload "{\"db\":\"$DATA/visiond.db\"}" 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q test_job_type "$T/err" || fail "jobs enqueue count: rc $rc $(cat "$T/err")"
env -u VISIOND_TEST_JOBS "$V" worker --list-types >"$T/types"
grep -q '"embed"' "$T/types" && ! grep -q '"count"\|"crash"\|"alloc"' "$T/types" || fail "worker types without the flag: $(cat "$T/types")"
"$V" worker --list-types | grep -q '"count"' || fail "worker --list-types with VISIOND_TEST_JOBS=1 lacks count"
echo "ok: count/alloc/crash/noop refused (422 test_job_type, exit 2), not registered by a worker"

# ---- 2/3: files swapped while the jobs wait in the queue --------------------------------------
post_json /jobs "{\"type\":\"embed\",\"payload\":{\"paths\":[\"${BAG[0]}\",\"${BAG[1]}\",\"${TRO[0]}\",\"${BAG[2]}\"]}}"
[ "$STATUS" = 201 ] || fail "enqueue embed: $STATUS $BODY"
JID=$(jget id)
ex=""
for f in "${BAG[@]}"; do ex="$ex{\"path\":\"$f\",\"label\":\"bag\"},"; done
for f in "${TRO[@]}"; do ex="$ex{\"path\":\"$f\",\"label\":\"trouser\"},"; done
post_json /training/sessions "{\"name\":\"swapped\",\"examples\":[${ex%,}]}"
[ "$STATUS" = 202 ] || fail "create session: $STATUS $BODY"
SID=$(jget id)
# checked and accepted; now swapped (no worker runs yet)
rm "${BAG[0]}" && ln -s "$T/outside/secret.png" "${BAG[0]}"
rm "${BAG[1]}" && ln -s /dev/zero "${BAG[1]}"
rm "${TRO[0]}" && mkfifo "${TRO[0]}"
worker_start --media-root "$T/media" --burst
_job_done() { req GET "/jobs/$JID"; [ "$(jget state)" = finished ] || [ "$(jget state)" = failed ]; }
wait_for "$WAIT_S" _job_done || { tail -20 "$W_LOG" >&2; fail "embed job did not end (a FIFO or /dev/zero hung it?): $BODY"; }
[ "$(jget state)" = finished ] || fail "embed job: $BODY"
case "$(jget result.embeddings.0.error)" in *"symbolic link"*) ;; *) fail "swapped link out: $BODY" ;; esac
case "$(jget result.embeddings.1.error)" in *"symbolic link"*) ;; *) fail "swapped /dev/zero: $BODY" ;; esac
case "$(jget result.embeddings.2.error)" in *"a FIFO"*) ;; *) fail "swapped FIFO: $BODY" ;; esac
[ -n "$(jget result.embeddings.3.sha256)" ] && [ "$(jget result.failed)" = 3 ] || fail "embed job result: $BODY"
! grep -q "$SECRET_SHA" <<<"$BODY" || fail "the outside file was read: $BODY"
echo "ok: embed job: link out, /dev/zero and FIFO are per-file errors; the 4th file embedded"
await_session "$SID" succeeded failed
show_session "$SID"
[ "$(jget state)" = succeeded ] || fail "session: $BODY"
grep -q "symbolic link" <<<"$BODY" && grep -q "a FIFO" <<<"$BODY" || fail "session errors: $BODY"
! grep -q "$SECRET_SHA" <<<"$BODY" || fail "the session read the outside file: $BODY"
wait "$W_PID" || fail "worker --burst exited non-zero"
echo "ok: session: swapped examples failed one by one, the rest trained"

# ---- no roots on the worker: still regular files only, no open that blocks --------------------
ID2=$($V jobs enqueue embed --queue "$Q" --payload "{\"paths\":[\"${TRO[0]}\",\"/dev/zero\",\"${BAG[3]}\"]}")
worker_start --burst
wait "$W_PID" || fail "worker (no roots) exited non-zero"
$V jobs show "$ID2" --queue "$Q" >"$T/job2"
BODY=$(cat "$T/job2")
[ "$(jget state)" = finished ] || fail "embed job without roots: $BODY"
case "$(jget result.embeddings.0.error)/$(jget result.embeddings.1.error)" in
  *"a FIFO"*"a character device"*) ;;
  *) fail "FIFO and /dev/zero without roots: $BODY" ;;
esac
grep -q "no --media-root" "$W_LOG" || fail "a worker without --media-root does not warn"
echo "ok: a worker without roots refuses the FIFO and /dev/zero without blocking"
api_stop
ms_stop

# ---- visiond up hands its media roots to its workers (and its api) ---------------------------
uport=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$V" up --data "$T/up" --listen "127.0.0.1:$uport" --workers 2 --media-root "$T/media" \
  --models "$MODELS" >"$T/up.out" 2>&1 &
UP_PID=$!
track "$UP_PID"
wait_for 60 curl -sf "http://127.0.0.1:$uport/healthz" || { cat "$T/up.out"; fail "visiond up did not come up"; }
nw=0
for k in $(pgrep -P "$UP_PID"); do
  cmd=$(tr '\0' ' ' <"/proc/$k/cmdline")
  case "$cmd" in
    *" worker "* | *" serve "*)
      grep -qF -- "--media-root $T/media" <<<"$cmd" || fail "an up child without the media root: $cmd"
      case "$cmd" in *" worker "*) nw=$((nw + 1)) ;; esac ;;
  esac
done
[ "$nw" = 2 ] || fail "up: $nw workers with --media-root, want 2"
kill -TERM "$UP_PID"
wait "$UP_PID" || fail "visiond up exited non-zero on SIGTERM"
echo "ok: visiond up passes --media-root to both workers and the api"
echo "confine_jobs: ok"
