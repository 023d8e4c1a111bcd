#!/usr/bin/env bash
# cli_jobs.sh: `visiond jobs` and `visiond queue` end to end on a real SQLite queue,
# including the error exit codes (1 = operation failed, 2 = usage).
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
command -v jq >/dev/null || skip "jq is not installed"

export VISIOND_QUEUE="sqlite:$T/data/sub/queue.db"   # parent dirs do not exist yet
V="$VISIOND"

# expect_rc CODE CMD...: runs CMD, fails unless it exits with CODE; its stderr goes to $T/err
expect_rc() {
  local want=$1; shift
  local got=0
  "$@" >"$T/out" 2>"$T/err" || got=$?
  [ "$got" = "$want" ] || fail "'$*' exited $got, want $want: $(cat "$T/err")"
  if [ "$want" != 0 ]; then
    grep -q '^visiond: ' "$T/err" || fail "'$*' gave no 'visiond: ' error line"
  fi
}

# --help everywhere
for c in "jobs --help" "jobs enqueue --help" "jobs list -h" "jobs show --help" \
         "jobs cancel --help" "jobs requeue --help" "jobs purge --help" "queue --help" \
         "queue stats --help"; do
  $V $c | grep -q usage || fail "$c printed no usage"
done
expect_rc 2 $V jobs
expect_rc 2 $V jobs frobnicate
expect_rc 2 $V queue
expect_rc 2 $V queue frobnicate
$V --help | grep -q '^  jobs' || fail "jobs missing from the command list"

# enqueue: ids, payloads, options
id1=$($V jobs enqueue image.describe --any-type --payload '{"path": "/x.jpg"}' --priority 2 --retries 3 --timeout 30)
[[ "$id1" =~ ^[0-9a-f]{32}$ ]] || fail "enqueue printed '$id1', not an id"
[ -f "$T/data/sub/queue.db" ] || fail "the database file was not created"
show=$($V jobs show "$id1")
[ "$(jq -r .state <<<"$show")" = queued ] || fail "new job not queued: $show"
[ "$(jq -r .payload.path <<<"$show")" = /x.jpg ] || fail "payload lost: $show"
[ "$(jq -r .priority <<<"$show")" = 2 ] || fail "priority lost"
[ "$(jq -r .max_retries <<<"$show")" = 3 ] || fail "retries lost"
[ "$(jq -r .timeout_ms <<<"$show")" = 30000 ] || fail "timeout not in ms"

ids=$($V jobs enqueue thumb --any-type --count 5)
[ "$(wc -l <<<"$ids")" = 5 ] || fail "--count 5 printed $(wc -l <<<"$ids") ids"
[ "$(sort -u <<<"$ids" | wc -l)" = 5 ] || fail "--count gave duplicate ids"

echo '{"from": "file", "n": [1, 2, 3]}' >"$T/p.json"
idf=$($V jobs enqueue thumb --any-type --payload "@$T/p.json")
[ "$($V jobs show "$idf" | jq -c .payload.n)" = "[1,2,3]" ] || fail "@FILE payload not read"
idd=$($V jobs enqueue later --any-type --delay 3600)
[ "$($V jobs show "$idd" | jq -r .state)" = scheduled ] || fail "--delay did not schedule"
$V jobs enqueue named --any-type --id my-job-7 >/dev/null
[ "$($V jobs show my-job-7 | jq -r .type)" = named ] || fail "--id not used"

# enqueue errors
expect_rc 2 $V jobs enqueue noop --payload '{"unterminated": '
grep -q 'not valid JSON' "$T/err" || fail "bad payload message: $(cat "$T/err")"
expect_rc 2 $V jobs enqueue 'has space'
expect_rc 2 $V jobs enqueue no-such-type
msg=$($V jobs enqueue no-such-type 2>&1 || true)
grep -q "unknown job type 'no-such-type' (known: noop," <<<"$msg" || fail "unknown type message: $msg"
expect_rc 2 $V jobs enqueue 'semi;colon'
expect_rc 2 $V jobs enqueue
expect_rc 2 $V jobs enqueue a b
expect_rc 2 $V jobs enqueue noop --priority high
expect_rc 2 $V jobs enqueue noop --retries -1
expect_rc 2 $V jobs enqueue noop --delay -3
expect_rc 2 $V jobs enqueue noop --count 0
expect_rc 2 $V jobs enqueue noop --frobnicate 1
expect_rc 2 $V jobs enqueue noop --priority
expect_rc 1 $V jobs enqueue named --any-type --id my-job-7        # duplicate id
grep -q 'already exists' "$T/err" || fail "duplicate id message: $(cat "$T/err")"
expect_rc 1 $V jobs enqueue thumb --any-type --payload "@$T/no-such-file"

# list and stats
[ "$($V jobs list --json | jq length)" = 9 ] || fail "list --json length"
[ "$($V jobs list --json | jq -r '.[0].id')" = my-job-7 ] || fail "list is not newest first"
[ "$($V jobs list --type thumb --json | jq length)" = 6 ] || fail "list --type"
[ "$($V jobs list --state scheduled --json | jq -r '.[0].id')" = "$idd" ] || fail "list --state"
[ "$($V jobs list --limit 3 --json | jq length)" = 3 ] || fail "list --limit"
[ "$($V jobs list --limit 3 --offset 8 --json | jq length)" = 1 ] || fail "list --offset"
$V jobs list | head -1 | grep -q '^ID ' || fail "list table has no header"
[ "$($V jobs list | wc -l)" = 10 ] || fail "list table rows"
expect_rc 2 $V jobs list --state running
expect_rc 2 $V jobs list --limit 0
stats=$($V queue stats)
[ "$(jq -r .backend <<<"$stats")" = sqlite ] || fail "stats backend: $stats"
[ "$(jq -r .counts.queued <<<"$stats")" = 8 ] || fail "stats queued: $stats"
[ "$(jq -r .counts.scheduled <<<"$stats")" = 1 ] || fail "stats scheduled: $stats"
[ "$(jq -r .total <<<"$stats")" = 9 ] || fail "stats total: $stats"
$V queue maintain | jq -e '.changed == 0' >/dev/null || fail "maintain changed something"

# cancel, requeue, wrong states, unknown ids
[ "$($V jobs cancel "$id1" | jq -r .state)" = canceled ] || fail "cancel"
expect_rc 1 $V jobs cancel "$id1"
grep -q 'canceled' "$T/err" || fail "cancel of a canceled job: $(cat "$T/err")"
[ "$($V jobs requeue "$id1" | jq -r '.state + " " + (.attempts|tostring)')" = "queued 0" ] ||
  fail "requeue"
expect_rc 1 $V jobs requeue "$id1"
grep -q 'only failed or canceled' "$T/err" || fail "requeue message: $(cat "$T/err")"
expect_rc 1 $V jobs show 0123456789abcdef0123456789abcdef
grep -q 'no job' "$T/err" || fail "unknown id message: $(cat "$T/err")"
expect_rc 1 $V jobs cancel nope
expect_rc 1 $V jobs requeue nope
expect_rc 2 $V jobs show
expect_rc 2 $V jobs show a b

# purge: only ended jobs, by state and age
$V jobs cancel "$idd" >/dev/null
$V jobs cancel "$idf" >/dev/null
[ "$($V jobs purge --older-than 3600 | jq .deleted)" = 0 ] || fail "purge --older-than deleted young jobs"
expect_rc 2 $V jobs purge --state queued
expect_rc 2 $V jobs purge --older-than soon
[ "$($V jobs purge --state finished | jq .deleted)" = 0 ] || fail "purge --state finished"
[ "$($V jobs purge --state canceled | jq .deleted)" = 2 ] || fail "purge --state canceled"
expect_rc 1 $V jobs show "$idd"
[ "$($V queue stats | jq .total)" = 7 ] || fail "purge deleted the wrong jobs"

# --queue overrides the environment; --queue=URL form
alt="sqlite:$T/alt.db"
$V jobs enqueue elsewhere --any-type --queue "$alt" >/dev/null
[ "$($V queue stats --queue="$alt" | jq .total)" = 1 ] || fail "--queue ignored"
[ "$($V queue stats | jq .total)" = 7 ] || fail "--queue leaked into the default queue"

# unusable databases
head -c 8192 /dev/urandom >"$T/garbage.db"
expect_rc 1 $V jobs list --queue "sqlite:$T/garbage.db"
grep -q 'not a usable queue database' "$T/err" || fail "garbage db message: $(cat "$T/err")"
expect_rc 1 $V queue stats --queue "sqlite:$T/garbage.db"
: >"$T/afile"
expect_rc 1 $V jobs list --queue "sqlite:$T/afile/sub/q.db"
expect_rc 1 $V queue stats --queue "$T"
expect_rc 2 $V queue stats --queue "sqlite:$T/x.db?sync=sometimes"
if [ "$(id -u)" != 0 ]; then
  cp "$T/data/sub/queue.db" "$T/locked.db"; chmod 000 "$T/locked.db"
  expect_rc 1 $V jobs list --queue "sqlite:$T/locked.db"
fi

echo "ok"
