#!/usr/bin/env bash
# bench/multihost: the same training work with two worker hosts against one, in the same run.
# Hosts are network namespaces (tests/lib/netns.sh, tests/lib/multihost.sh: db with PostgreSQL
# (+ Redis), api, ms, w1, w2, cl), the store on PostgreSQL. The work: SESSIONS folder sessions
# of 2 labels x PER images each, every session its own Fashion-MNIST labels (no image is shared,
# so no session rides on another's cache). Each run has a fresh store database (a cold embedding
# cache) and queue; the model server is warmed up once before both. Timed: from the first POST
# to the last session succeeded. Prints both wall times, images/s and the ratio.
#   bench/multihost/run.sh [SESSIONS (4, at most 5)] [PER (24)] [QUEUE redis|postgres (redis)]
# Needs root (ip netns), PostgreSQL 15, redis-server, the models (scripts/models.sh) and the
# Fashion-MNIST files (scripts/setup.sh). On a machine whose cores are all busy the second
# host adds no CPU: the ratio shows what the hosts share (here, the model server's cores).
here=$(cd "$(dirname "$0")/../.." && pwd)
export VISIOND=${VISIOND:-$here/build/visiond} VISIOND_SOURCE_DIR=$here VISIOND_BUILD_DIR=$here/build
SESSIONS=${1:-4} PER=${2:-24} QUEUE=${3:-redis}
. "$here/tests/lib/common.sh"
. "$here/tests/lib/api.sh"
. "$here/tests/lib/pipeline.sh"
. "$here/tests/lib/multihost.sh"
export VISIOND_LOG_LEVEL=warn
mh_init "$QUEUE"
pl_models
PAIRS=("trouser bag" "sneaker dress" "sandal shirt" "coat ankle_boot" "pullover tshirt_top")
[ "$SESSIONS" -le ${#PAIRS[@]} ] || fail "at most ${#PAIRS[@]} sessions (Fashion-MNIST has 10 labels)"
for i in $(seq 0 $((SESSIONS - 1))); do pl_dataset "$T/media/s$i" "$PER" train ${PAIRS[$i]}; done
pl_dataset "$T/media/warm" 2 test trouser bag
NIMG=$(find "$T"/media/s* -type f | wc -l)
mh_db
mh_ms
QN=0
fresh_backends() { # a fresh store database and queue for the next run
  QN=$((QN + 1))
  STORE=$(mh_newdb "vd_store_$QN") || fail "newdb"
  if [ "$MH_QUEUE" = postgres ]; then QURL=$(mh_newdb "vd_queue_$QN") || fail "newdb"; else QURL="redis://$DB:6379/$QN"; fi
}
stop_all() {
  kill -TERM "$API_PID" "${WPID[@]}" 2>/dev/null || true
  wait "$API_PID" "${WPID[@]}" 2>/dev/null || true
  WPID=()
}
all_done() {
  local s st
  for s in "$@"; do
    st=$(session_field "$s" state) || return 1
    [ "$st" = succeeded ] || { [ "$st" = failed ] && fail "session $s failed: $BODY"; return 1; }
  done
}
run() { # WORKERS...: sets RUN_S, the wall seconds of the run
  fresh_backends
  mh_api
  local w ids=() s
  for w in "$@"; do worker_up "$w"; done
  local t0; t0=$(date +%s.%N)
  for i in $(seq 0 $((SESSIONS - 1))); do
    post_json /training/sessions "{\"name\": \"s$i\", \"folder\": \"$T/media/s$i\"}"
    [ "$STATUS" = 202 ] || fail "create: $STATUS $BODY"
    ids+=("$(jget id)")
  done
  wait_for 1800 all_done "${ids[@]}" || fail "the sessions did not all succeed"
  local t1; t1=$(date +%s.%N)
  stop_all
  RUN_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b - a}')
}
# warm-up: the model loaded, the page cache filled
fresh_backends
mh_api
worker_up w1
post_json /training/sessions "{\"name\": \"warm\", \"folder\": \"$T/media/warm\"}"
wid=$(jget id)
wait_for 300 all_done "$wid" || fail "warm-up"
stop_all
load0=$(cut -d' ' -f1-3 /proc/loadavg)
run w1
one=$RUN_S
run w1 w2
two=$RUN_S
awk -v n="$NIMG" -v s="$SESSIONS" -v a="$one" -v b="$two" -v q="$QUEUE" 'BEGIN {
  printf "bench/multihost (%s queue, PostgreSQL store): %d sessions, %d images\n", q, s, n
  printf "  one worker host:  %6.2f s  %6.1f images/s\n", a, n / a
  printf "  two worker hosts: %6.2f s  %6.1f images/s\n", b, n / b
  printf "  ratio (one / two): %.2f\n", a / b }'
echo "  load average before: $load0, after: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
