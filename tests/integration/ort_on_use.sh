#!/usr/bin/env bash
# ort_on_use.sh: ONNX Runtime is opened on first use (src/infer/ort_session.c), not linked:
# visiond does not list it in NEEDED, a worker and the API server never map it, the model
# server does (found through the build rpath), and one that finds a libonnxruntime.so.1
# without ONNX Runtime's API in it first (LD_LIBRARY_PATH is searched before the rpath)
# stops at start with one line saying so, not a crash.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
command -v readelf >/dev/null || skip "readelf (binutils) is needed"
# the sanitized builds link it (CMakeLists.txt: their dlopen interceptor ignores the rpath)
[ -z "${VISIOND_TEST_SANITIZED:-}" ] || skip "the sanitized build links ONNX Runtime"

readelf -d "$VISIOND" >"$T/dyn.txt"
if grep -q 'libonnxruntime' "$T/dyn.txt"; then fail "visiond links ONNX Runtime: $(grep onnx "$T/dyn.txt")"; fi

maps_ort() { grep -c 'libonnxruntime' "/proc/$1/maps" || true; }

# a worker and the API server run without it
mkdir -p "$T/data"
"$VISIOND" worker --data "$T/data" --queue "sqlite:$T/data/q.db" >"$T/worker.log" 2>&1 &
w=$!
track "$w"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$VISIOND" serve --data "$T/data" --queue "sqlite:$T/data/q.db" --listen "127.0.0.1:$port" \
  >"$T/serve.log" 2>&1 &
a=$!
track "$a"
wait_for 30 curl -sf "http://127.0.0.1:$port/healthz" >/dev/null ||
  { cat "$T/serve.log"; fail "the API server did not start"; }
wait_for 10 grep -q 'ready\|started\|waiting' "$T/worker.log" || sleep 1
kill -0 "$w" || { cat "$T/worker.log"; fail "the worker exited"; }
[ "$(maps_ort "$w")" = 0 ] || fail "the worker maps ONNX Runtime"
[ "$(maps_ort "$a")" = 0 ] || fail "the API server maps ONNX Runtime"
kill -TERM "$w" "$a"
wait "$w" "$a" 2>/dev/null || true

# the model server loads it, through the rpath
mkdir -p "$T/ms/models"
"$VISIOND" model-server --data "$T/ms" --socket "$T/ms/m.sock" >"$T/ms.log" 2>&1 &
m=$!
track "$m"
wait_for 30 test -S "$T/ms/m.sock" || { cat "$T/ms.log"; fail "the model server did not start"; }
[ "$(maps_ort "$m")" -gt 0 ] || fail "the model server does not map ONNX Runtime"
kill -TERM "$m"
wait "$m" || fail "the model server did not stop cleanly"

# a libonnxruntime.so.1 that is not ONNX Runtime (found first through LD_LIBRARY_PATH)
mkdir -p "$T/fake"
cp "$(find /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu -name 'libz.so.1*' -type f | head -1)" \
  "$T/fake/libonnxruntime.so.1"
set +e
LD_LIBRARY_PATH=$T/fake "$VISIOND" model-server --data "$T/ms" --socket "$T/ms/f.sock" \
  >"$T/fake.out" 2>"$T/fake.err"
rc=$?
set -e
[ "$rc" != 0 ] || fail "a model server without ONNX Runtime started"
[ "$rc" -lt 128 ] || fail "a model server without ONNX Runtime crashed (exit $rc)"
grep -q 'ONNX Runtime (libonnxruntime.so.1) cannot be loaded.*OrtGetApiBase' "$T/fake.err" ||
  { cat "$T/fake.err"; fail "the error does not say ONNX Runtime cannot be loaded, and why"; }
echo "ort_on_use: ok (not linked; worker and API without it; model server with it; a wrong library refused: $(head -c 160 "$T/fake.err"))"
