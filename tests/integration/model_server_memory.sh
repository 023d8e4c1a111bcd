#!/usr/bin/env bash
# model_server_memory.sh: the model server's allocator policy (docs/model-server.md, "Memory").
# `visiond model-server` keeps freed ONNX Runtime activations in glibc's heap while busy and
# gives them back with malloc_trim once idle. A batch-heavy load (mobilenet_v2, batches of 32)
# through a real server must raise its RSS well above the post-preload RSS (or the test proves
# nothing), and then, once the server reports an idle trim in its HEALTH answer, its RSS must be
# back below a bound derived from the post-preload RSS. Without the idle trim the server keeps
# the batch's peak for good (printed as a control with --trim-idle-ms 0, not asserted).
# Under a sanitizer (VISIOND_TEST_SANITIZED=1) the allocator is ASan's, so only the trim itself
# (HEALTH's allocator.trims) is checked, with a lighter load.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
command -v python3 >/dev/null || skip "python3 is needed for the protocol client"
. "$VISIOND_SOURCE_DIR/tests/lib/pipeline.sh"
PY="python3 $VISIOND_SOURCE_DIR/tests/lib/infer_client.py"
pl_models
S=$T/ms.sock
sanitized=${VISIOND_TEST_SANITIZED:-}
if [ -z "$sanitized" ]; then batch=32 rounds=4; else batch=4 rounds=2; fi

# health FIELD...: one number from the HEALTH answer (a python path: process.rss_bytes)
health() {
  $PY "$S" health | python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[k]
print(v)' "$1"
}
mib() { python3 -c "print('%.1f' % ($1 / 1048576))"; }

# start ARGS...: a model server with mobilenet_v2 preloaded; sets $pid
start() {
  rm -f "$T/ready"
  VISIOND_LOG_LEVEL=warn "$VISIOND" model-server --models "$MODELS" --socket "$S" --threads 2 \
    --preload mobilenet_v2 --idle-ttl 0 "$@" >"$T/ready" 2>>"$T/server.log" &
  pid=$!
  track "$pid"
  wait_for 120 grep -q '"ready"' "$T/ready" || { tail "$T/server.log" >&2; fail "the server did not start"; }
}
stop() {
  kill -TERM "$pid"
  local rc=0; wait "$pid" || rc=$?
  [ "$rc" = 0 ] || { tail -20 "$T/server.log" >&2; fail "the model server exited $rc on SIGTERM"; }
}
load() {
  local i
  for ((i = 0; i < rounds; i++)); do
    $PY "$S" infer mobilenet_v2 "$batch" 224 224 3 0.5 | grep -q '"status": 0' ||
      fail "a batch of $batch through mobilenet_v2 failed"
  done
}
hwm_bytes() { echo $(($(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status") * 1024)); }

"$VISIOND" model-server --help | grep -q -- "--trim-idle-ms" || fail "--help does not list --trim-idle-ms"
set +e
"$VISIOND" model-server --malloc-reuse -1 2>"$T/err"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q -- "--malloc-reuse" "$T/err" || fail "--malloc-reuse -1: rc $rc, $(cat "$T/err")"

# 1. the default policy: heap reuse while busy, the idle trim after 1 s
start
[ "$(health allocator.trim_idle_ms)" = 1000 ] || fail "the default trim_idle_ms is not 1000"
# loading the model is allocator activity too: the post-preload size is the one after its trim
trims_at_least() { python3 -c "import sys; sys.exit(0 if $(health allocator.trims) >= $1 else 1)"; }
wait_for 60 trims_at_least 1 || fail "no idle trim after the preload"
rss0=$(health process.rss_bytes)
trims0=$(health allocator.trims)
load
hwm=$(hwm_bytes)
rss_busy=$(health process.rss_bytes)
# the idle trim happens once the server has run no batch for trim_idle_ms (the wait is a bound
# on a hung server, not a timing assertion)
wait_for 60 trims_at_least $((trims0 + 1)) ||
  fail "no idle trim: HEALTH allocator.trims stayed $trims0 after the load"
rss1=$(health process.rss_bytes)
freed=$(health allocator.last_trim_freed_bytes)
echo "default policy: RSS after preload $(mib "$rss0") MiB, peak $(mib "$hwm") MiB, after the load" \
  "$(mib "$rss_busy") MiB, after the idle trim $(mib "$rss1") MiB (the trim gave back $(mib "$freed") MiB)"
if [ -z "$sanitized" ]; then
  [ $((hwm - rss0)) -gt $((128 << 20)) ] ||
    fail "the load raised the peak RSS by only $(mib $((hwm - rss0))) MiB: too light to test the trim"
  # back near the post-preload size: within a quarter of it plus 32 MiB of heap left in use
  bound=$((rss0 + rss0 / 4 + (32 << 20)))
  [ "$rss1" -le "$bound" ] ||
    fail "after the idle trim the RSS is $(mib "$rss1") MiB, above $(mib "$bound") MiB (post-preload $(mib "$rss0") MiB)"
fi
stop

# 2. the control: heap reuse without the idle trim keeps the batch's memory (printed only)
if [ -z "$sanitized" ]; then
  start --trim-idle-ms 0
  rss0=$(health process.rss_bytes)
  load
  sleep 2
  echo "control, --trim-idle-ms 0: RSS after preload $(mib "$rss0") MiB, 2 s after the load" \
    "$(mib "$(health process.rss_bytes)") MiB, trims $(health allocator.trims)"
  [ "$(health allocator.trims)" = 0 ] || fail "--trim-idle-ms 0 still trimmed"
  stop
fi
echo "PASS"
