#!/usr/bin/env bash
# python_client.sh: the Python client (clients/python, standard library only) against a
# live `visiond up` with the shipped models (data/models, else scripts/models.sh):
# its unittest module covers every method (sessions from a folder, from (path, label)
# pairs and from uploads, waiting with progress, list, predict by path and by upload,
# embeddings, faces, jobs enqueue/get/list/cancel/requeue/wait, models, health) and the
# exceptions raised for the API's error codes (404 job_not_found, session_not_found,
# path_not_found; 409 invalid_state, job_exists; 422 path_outside_media_roots,
# one_label, model_kind_mismatch, model_task_mismatch, invalid_value, invalid_payload,
# no_paths; 400 invalid_parameter; 401 unauthorized from a second api with a token; a
# refused connection), with mypy --strict when it is installed.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pipeline.sh"
PY=/usr/bin/python3

if [ -f "$VISIOND_SOURCE_DIR/data/models/mobilenet_v2.onnx" ] &&
   [ -f "$VISIOND_SOURCE_DIR/data/models/faceres.onnx" ]; then
  MODELS="$T/models"   # a copy: the test never writes into the source tree
  cp -r "$VISIOND_SOURCE_DIR/data/models" "$MODELS"
else
  pl_models
fi
# typed: mypy --strict on the package, its tests and the example (Debian's python3-mypy)
if $PY -m mypy --version >/dev/null 2>&1; then
  (cd "$VISIOND_SOURCE_DIR/clients/python" && $PY -m mypy --strict --cache-dir "$T/mypy" \
    visiond_client tests/test_client.py examples/demo.py) || fail "mypy --strict"
else
  echo "mypy missing: typing not checked"
fi
media="$T/media"
pl_dataset "$media/train" 6 train trouser bag
pl_dataset "$media/test" 2 test trouser bag
face=${VISIOND_PREFIX:-/opt/visiond}/deps/npm/@vladmandic+face-api@1.7.15/demo/sample1.jpg
[ -f "$face" ] || skip "face-api sample photo missing (scripts/setup.sh)"
mkdir -p "$media/faces" && cp "$face" "$media/faces/"

# Workers open a session's files only under the media roots, and uploads are staged under
# DATA/uploads: with a media root, a session from uploads fails ("path is outside the media
# roots") unless DATA/uploads is one too. A defect of the server (reported; uploads are
# moving into the store), worked around here so the client's upload methods are tested.
mkdir -p "$T/data/uploads"
port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$VISIOND" up --data "$T/data" --models "$MODELS" --listen "127.0.0.1:$port" \
  --media-root "$media" --media-root "$T/data/uploads" --workers 1 --concurrency 2 --model-threads 2 >"$T/up.log" 2>&1 &
up=$!
track "$up"
trap 'kill -TERM "$up" 2>/dev/null; wait "$up" 2>/dev/null; _vd_cleanup' EXIT
UP_API="http://127.0.0.1:$port"
ms_ok() { curl -sf "$UP_API/healthz" | $PY -c 'import json,sys; sys.exit(json.load(sys.stdin)["status"] != "ok")'; }
wait_for 60 ms_ok || { tail -20 "$T/up.log"; fail "visiond up did not become healthy"; }

# a second api with a token, for the client's Authorization header and 401 unauthorized
printf 's3cret-%s\n' "$RANDOM" >"$T/token"
api_start --data "$T/data2" --model-server none --token-file "$T/token"

VISIOND_URL=$UP_API VD_MEDIA=$media VD_TEST_JOBS=1 VD_TOKEN_URL="http://127.0.0.1:$API_PORT" \
  VD_TOKEN="$(head -1 "$T/token")" \
  $PY "$VISIOND_SOURCE_DIR/clients/python/tests/test_client.py" 2>&1 |
  tee "$T/unittest.log" || true
grep -q '^OK' "$T/unittest.log" || { tail -30 "$T/up.log"; fail "the Python client's tests failed"; }
grep -q 'skipped' "$T/unittest.log" && fail "a client test was skipped"
api_stop
# the README's example (examples/demo.py) runs as written
PYTHONPATH="$VISIOND_SOURCE_DIR/clients/python" $PY "$VISIOND_SOURCE_DIR/clients/python/examples/demo.py" \
  "$UP_API" "$media/train" "$media/test" "$media/faces" >"$T/demo.log" 2>&1 || { cat "$T/demo.log"; fail "examples/demo.py failed"; }
cat "$T/demo.log"
grep -q '^cv_accuracy' "$T/demo.log" && grep -q 'sample1.jpg: [1-9]' "$T/demo.log" || fail "examples/demo.py: unexpected output"
rc=0
kill -TERM "$up"; wait "$up" || rc=$?
[ "$rc" = 0 ] || { tail -20 "$T/up.log"; fail "visiond up exited $rc"; }
trap _vd_cleanup EXIT
echo "python_client: ok ($(grep -Eo 'Ran [0-9]+ tests' "$T/unittest.log"))"
