#!/usr/bin/env bash
# pg_bad_url.sh: a PostgreSQL URL that waiting cannot fix (a wrong password, a database that
# does not exist) is one clear error that names the URL without its password, and exit 1, for
# every command that opens the store or the queue: serve, worker, jobs. Nothing retries.
# Skipped (77) without $VISIOND_TEST_PG.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pg.sh"
[ -n "${VISIOND_TEST_PG:-}" ] || skip "VISIOND_TEST_PG is not set (scripts/test.sh starts PostgreSQL)"
GOOD=$(pg_newdb pg_bad_url)
# postgres://USER:PASSWORD@HOST:PORT/DB
rest=${GOOD#postgres://}
user=${rest%%:*}
hostdb=${rest#*@}
WRONGPW="postgres://$user:Wr0ngSecretPw@$hostdb"
NODB="${GOOD%/*}/no_such_db_$$"
shown_wrong="postgres://$user:***@$hostdb"

# SHOWN PW CMD...: must exit 1 at once (no retrying), in one or two lines that name SHOWN and
# say what is wrong, never printing the password PW
expect_refusal() {
  local shown=$1 pw=$2; shift 2
  local out=$T/out.$RANDOM rc=0 t0
  t0=$(date +%s)
  timeout 30 "$@" >"$out" 2>&1 </dev/null || rc=$?
  local took=$(( $(date +%s) - t0 ))
  [ "$rc" = 1 ] || { cat "$out" >&2; fail "$*: exit $rc, want 1"; }
  grep -qF -- "$shown" "$out" || { cat "$out" >&2; fail "$*: the message does not name $shown"; }
  if [ -n "$pw" ] && grep -qF -- "$pw" "$out"; then cat "$out" >&2; fail "$*: the password is printed"; fi
  local n
  n=$(grep -c . "$out" || true)
  [ "$n" -ge 1 ] && [ "$n" -le 2 ] || { cat "$out" >&2; fail "$*: $n lines, want one clear error"; }
  grep -qiE 'password authentication failed|does not exist' "$out" ||
    { cat "$out" >&2; fail "$*: the message does not say what is wrong"; }
  [ "$took" -le 10 ] || fail "$*: took $took s (retried something waiting cannot fix)"
  echo "ok ($took s): $(basename "$1") $2: $(head -1 "$out" | cut -c1-220)"
}
D=$T/data
mkdir -p "$D"
export VISIOND_LOG_LEVEL=info
expect_refusal "$shown_wrong" Wr0ngSecretPw "$VISIOND" serve --listen 127.0.0.1:0 --data "$D" --model-server none --store "$WRONGPW"
expect_refusal "$shown_wrong" Wr0ngSecretPw "$VISIOND" worker --data "$D" --store "$WRONGPW" --burst
expect_refusal "$shown_wrong" Wr0ngSecretPw "$VISIOND" worker --data "$D" --queue "$WRONGPW" --burst
expect_refusal "$shown_wrong" Wr0ngSecretPw "$VISIOND" jobs list --queue "$WRONGPW"
expect_refusal "$shown_wrong" Wr0ngSecretPw "$VISIOND" queue stats --queue "$WRONGPW"
expect_refusal "no_such_db_$$" "" "$VISIOND" serve --listen 127.0.0.1:0 --data "$D" --model-server none --store "$NODB"
expect_refusal "no_such_db_$$" "" "$VISIOND" worker --data "$D" --queue "$NODB" --burst
expect_refusal "no_such_db_$$" "" "$VISIOND" jobs list --queue "$NODB"
# the same through the environment (the way `up` passes it on: never on a command line)
VISIOND_STORE=$WRONGPW expect_refusal "$shown_wrong" Wr0ngSecretPw "$VISIOND" serve --listen 127.0.0.1:0 --data "$D" --model-server none
echo "pg_bad_url: ok"
