#!/usr/bin/env bash
# worker_basic.sh: `visiond worker` runs real jobs in forked work-horses:
# noop/sleep/fail/progress; a timeout kills the horse and fails the job with
# the reason; a crashing horse fails its job "killed by SIGSEGV" and the worker
# goes on; canceling a running job stops its horse; retries back off, end in
# the dead letter, and requeue runs the job again; --memory-limit; SIGTERM is
# a graceful stop that hands unfinished jobs back to the queue without
# charging the attempt; unknown types are refused.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/worker.sh"
LOG=$T/worker.log
"$VDQ" counts "$Q" >/dev/null # creates the queue
t0=$(date +%s.%N)

# -- refusals (no queue needed)
set +e
"$VISIOND" worker --queue "$Q" --types noop,bogus >"$T/out" 2>&1; rc=$?
set -e
[ $rc -eq 2 ] || fail "--types with an unknown type: exit $rc"
grep -q "unknown job type 'bogus'" "$T/out" || fail "no message for the unknown type: $(cat "$T/out")"
set +e
"$VISIOND" worker --queue "$Q" --lease 1 --heartbeat 2 >"$T/out" 2>&1; rc=$?
set -e
[ $rc -eq 2 ] || fail "heartbeat >= lease: exit $rc"
"$VISIOND" worker --list-types | grep -q '"crash"' || fail "--list-types misses crash"

# -- the common cases, two horses at a time
start_worker "$LOG" --concurrency 2 --lease 3 --heartbeat 0.2 --kill-grace 1
W1=$WPID
noop=$(enqueue noop '{}')
slp=$(enqueue sleep '{"ms": 200}')
bad=$(enqueue fail '{"message": "boom", "retryable": false}')
prog=$(enqueue progress '{"steps": 4, "ms": 30}')
badpay=$(enqueue sleep '{"ms": "soon"}')
await "$noop" finished
await "$slp" finished
await "$bad" failed
await "$prog" finished
await "$badpay" failed
[ "$(jget "$slp" result)" = '{"slept_ms": 200}' ] || fail "sleep result: $(jget "$slp" result)"
[ "$(jget "$bad" error)" = "boom" ] || fail "fail error: $(jget "$bad" error)"
[ "$(jget "$bad" attempts)" = 1 ] || fail "a permanent failure was retried"
[ "$(jget "$prog" progress)" = "4/4" ] || fail "progress: $(jget "$prog" progress)"
jget "$badpay" error | grep -q "must be an integer" || fail "bad payload error: $(jget "$badpay" error)"
echo "basic jobs ok"
# the supervisor starts libvips once for its horses (vd_pipeline_prepare_worker: each would pay
# ~2 ms of CPU starting it), before its first fork, and forks after it: that is safe only while
# it has one thread
VISIOND_LOG_LEVEL=debug "$VISIOND" worker --queue "sqlite:$T/empty.db" --burst >"$T/empty.log" 2>&1 ||
  fail "a burst worker on an empty queue: $(cat "$T/empty.log")"
grep -q "libvips .* started" "$T/empty.log" || fail "the worker did not start libvips: $(cat "$T/empty.log")"
nthreads=$(ls "/proc/$W1/task" | wc -l)
[ "$nthreads" = 1 ] || fail "the supervisor has $nthreads threads: forking after them is unsafe"
# light horses (docs/worker.md, "Light horses"): the test types run in clones of visiond-horse, a
# second fork server that maps no libvips; VISIOND_LIGHT_HORSES=0 turns it off
[ -n "$(lightfork_of "$W1")" ] || fail "the worker has no light fork server"
grep -q "light work-horses from .*/visiond-horse" "$T/empty.log" ||
  fail "no light fork server in the burst worker: $(cat "$T/empty.log")"
VISIOND_LIGHT_HORSES=0 VISIOND_LOG_LEVEL=debug "$VISIOND" worker --queue "sqlite:$T/empty.db" \
  --burst >"$T/nolight.log" 2>&1 || fail "a burst worker without light horses: $(cat "$T/nolight.log")"
if grep -q "light work-horses from" "$T/nolight.log"; then fail "VISIOND_LIGHT_HORSES=0 was ignored"; fi
lh=$(enqueue sleep '{"ms": 2000}')
wait_for "$WAIT_S" grep -q "job $lh (sleep) started" "$LOG" || fail "the sleep job did not start"
h=$(sed -n "s/.*job $lh (sleep) started.*work-horse \([0-9]*\).*/\1/p" "$LOG" | head -1)
grep -q libsqlite3 "/proc/$h/maps" || fail "cannot read the light horse's mappings ($h)"
if grep -q libvips "/proc/$h/maps"; then fail "the light horse $h maps libvips"; fi
await "$lh" finished
echo "light horses ok"

# -- timeout: SIGTERM (the sleep handler stops), reason recorded
tmo=$(enqueue sleep '{"ms": 600000}' 1 500)
await "$tmo" failed
[ "$(jget "$tmo" error)" = "timeout after 0.5s" ] || fail "timeout error: $(jget "$tmo" error)"
echo "timeout ok"

# -- crash: the worker records the signal and goes on
for sig in SEGV ABRT KILL; do
  c=$(enqueue crash "{\"signal\": \"$sig\"}")
  await "$c" failed
  [ "$(jget "$c" error)" = "work-horse killed by SIG$sig" ] || fail "crash $sig error: $(jget "$c" error)"
done
c=$(enqueue crash '{"exit": 7}')
await "$c" failed
[ "$(jget "$c" error)" = "work-horse exited with status 7" ] || fail "crash exit error: $(jget "$c" error)"
kill -0 "$W1" || fail "the worker died with its horse"
after=$(enqueue noop '{}')
await "$after" finished
echo "crash ok"

# -- cancel a running job: its horse is stopped, nothing is recorded over the cancel
long=$(enqueue sleep '{"ms": 600000}')
await "$long" started
wait_for "$WAIT_S" has_horses "$W1" || fail "no horse for the running job"
"$VDQ" cancel "$Q" "$long"
wait_for "$WAIT_S" grep -q "job $long (sleep) canceled" "$LOG" || fail "the worker did not stop the canceled job"
wait_for "$WAIT_S" no_horses "$W1" || fail "the canceled job's horse still runs: $(horses "$W1")"
[ "$(jget "$long" state)" = canceled ] || fail "canceled job is $(jget "$long" state)"
after=$(enqueue noop '{}')
await "$after" finished
echo "cancel ok"

# -- retries: 3 attempts with backoff, then the dead letter, then requeue runs it again
flaky=$(enqueue fail '{"message": "flaky"}' 1 0 2 100)
await "$flaky" failed
[ "$(jget "$flaky" attempts)" = 3 ] || fail "attempts: $(jget "$flaky" attempts)"
[ "$(grep -c "job $flaky (fail) failed.*retry scheduled" "$LOG")" = 2 ] || fail "expected 2 scheduled retries"
"$VISIOND" jobs requeue "$flaky" --queue "$Q" >/dev/null || fail "visiond jobs requeue failed"
wait_for "$WAIT_S" count_is 2 "job $flaky (fail) started, attempt 1/3" "$LOG" ||
  fail "the requeued job did not run again"
await "$flaky" failed
[ "$(jget "$flaky" attempts)" = 3 ] || fail "attempts after requeue: $(jget "$flaky" attempts)"
echo "retry/dead letter/requeue ok"

# -- graceful stop: a job that fits in the grace period finishes, the worker exits 0
fin=$(enqueue sleep '{"ms": 1500}')
await "$fin" started
kill -TERM "$W1"
set +e; wait "$W1"; rc=$?; set -e
[ $rc -eq 0 ] || fail "worker exit status after SIGTERM: $rc"
[ "$(jget "$fin" state)" = finished ] || fail "the job was not let finish: $(jget "$fin" state) $(jget "$fin" error)"
echo "graceful stop ok"

# -- graceful stop past the grace period: the job is handed back (released:
# queued at once, the attempt not counted), even one without retries left
start_worker "$LOG" --grace 0.3 --kill-grace 1 --heartbeat 0.2 --lease 3
hb=$(enqueue sleep '{"ms": 600000}' 1 0 0)
await "$hb" started
[ "$(jget "$hb" attempts)" = 1 ] || fail "attempts while running: $(jget "$hb" attempts)"
kill -INT "$WPID"
set +e; wait "$WPID"; rc=$?; set -e
[ $rc -eq 0 ] || fail "worker exit status after SIGINT: $rc"
[ "$(jget "$hb" state)" = queued ] || fail "handed-back job is $(jget "$hb" state), not queued"
[ "$(jget "$hb" attempts)" = 0 ] || fail "the hand-back was charged: attempts $(jget "$hb" attempts)"
jget "$hb" error | grep -q "^worker shut down" || fail "handed-back error: $(jget "$hb" error)"
grep -q "job $hb (sleep) handed back to the queue" "$LOG" || fail "no hand-back logged"
"$VDQ" cancel "$Q" "$hb" >/dev/null # not for the next workers
echo "hand back ok"

# -- a second signal skips the rest of a (here: 10-minute) grace period
start_worker "$LOG" --grace 600 --kill-grace 1 --heartbeat 0.2 --lease 3
hb2=$(enqueue sleep '{"ms": 600000}' 1 0 1 60000)
await "$hb2" started
kill -TERM "$WPID"
wait_for "$WAIT_S" count_is 2 "SIGTERM: stopping; no new jobs" "$LOG" || fail "no graceful stop logged"
kill -TERM "$WPID"
set +e; wait "$WPID"; rc=$?; set -e
[ $rc -eq 0 ] || fail "worker exit status after two SIGTERMs: $rc"
[ "$(jget "$hb2" state)" = queued ] || fail "handed-back job is $(jget "$hb2" state), not queued"
[ "$(jget "$hb2" attempts)" = 0 ] || fail "the hand-back was charged: attempts $(jget "$hb2" attempts)"
jget "$hb2" error | grep -q "^worker shut down" || fail "handed-back error: $(jget "$hb2" error)"
"$VDQ" cancel "$Q" "$hb2" >/dev/null
echo "second signal ok"

# -- --max-jobs: take N jobs, finish them, exit
m1=$(enqueue noop '{}' 3)
"$VISIOND" worker --queue "$Q" --max-jobs 2 --types noop >>"$LOG" 2>&1 || fail "--max-jobs exit status $?"
[ "$(for id in $m1; do jget "$id" state; done | sort | uniq -c | tr -s ' ' | tr '\n' ';')" = " 2 finished; 1 queued;" ] ||
  fail "--max-jobs 2 of 3: $(for id in $m1; do jget "$id" state; done | tr '\n' ' ')"
echo "max-jobs ok"

# -- memory limit (RLIMIT_AS is not usable under AddressSanitizer)
if [ -z "${VISIOND_TEST_SANITIZED:-}" ]; then
  start_worker "$LOG" --memory-limit 64 --types alloc
  big=$(enqueue alloc '{"mb": 512}')
  small=$(enqueue alloc '{"mb": 8}')
  await "$big" failed
  await "$small" finished
  [ "$(jget "$big" error)" = "could not allocate 512 MiB" ] || fail "alloc error: $(jget "$big" error)"
  kill -TERM "$WPID"; wait "$WPID" || true
  echo "memory limit ok"
fi

# -- --no-fork runs the same handlers inline
nf1=$(enqueue progress '{"steps": 2, "ms": 1}')
nf2=$(enqueue fail '{"message": "inline", "retryable": false}')
"$VISIOND" worker --queue "$Q" --no-fork --burst --types progress,fail >>"$LOG" 2>&1
[ "$(jget "$nf1" state)" = finished ] || fail "no-fork progress: $(jget "$nf1" state)"
[ "$(jget "$nf2" error)" = inline ] || fail "no-fork fail: $(jget "$nf2" error)"

integrity_ok "$QDB"
awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "worker_basic: ok in %.1f s\n", b - a }'
