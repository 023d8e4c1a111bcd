#!/usr/bin/env bash
# dashboard.sh: the web dashboard in a real browser against a real system.
#
# Starts `visiond up` (model server, a worker, the api with a token) on a free loopback
# port with a temporary data directory, makes real data through the API (jobs that finish,
# fail, run, wait and are never claimed; a training session on Fashion-MNIST images when
# the training routes exist, on easily confused labels; faces in a photo), then drives headless Chromium
# (tests/dashboard/dashboard.test.js, playwright-core) through every panel and checks that
# each shows that data, and that its buttons change the queue. Screenshots (PNG) go to
# $VISIOND_ARTIFACTS/dashboard (default: BUILD_DIR/artifacts/dashboard).
# Skips (77) only when chromium is not installed.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"

CHROMIUM=${VISIOND_CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$CHROMIUM" ] && [ -x "$CHROMIUM" ] || skip "chromium is not installed (scripts/setup.sh installs Debian's chromium)"
PLAYWRIGHT=${VISIOND_PREFIX:-/opt/visiond}/deps/npm/playwright-core@1.65.1
[ -f "$PLAYWRIGHT/index.js" ] || fail "playwright-core is not under $PLAYWRIGHT: run scripts/setup.sh"
command -v node >/dev/null || fail "node is not installed: run scripts/setup.sh"
ARTIFACTS=${VISIOND_ARTIFACTS:-$VISIOND_BUILD_DIR/artifacts}/dashboard
mkdir -p "$ARTIFACTS"
rm -f "$ARTIFACTS"/*.png

data="$T/data"
media="$T/media"
mkdir -p "$data" "$media"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
API="http://127.0.0.1:$port"
TOKEN="dash-$RANDOM-$RANDOM-$RANDOM"
printf '%s\n' "$TOKEN" >"$T/token"
Q="sqlite:$data/visiond.db"

"$VISIOND_SOURCE_DIR/scripts/models.sh" --visiond "$VISIOND" --out "$data/models" >"$T/models.log" 2>&1 ||
  { cat "$T/models.log" >&2; fail "scripts/models.sh failed"; }

# The photo for the faces panel, and Fashion-MNIST images for a training session.
DEMO=${VISIOND_PREFIX:-/opt/visiond}/deps/npm/@vladmandic+face-api@1.7.15/demo
[ -f "$DEMO/sample1.jpg" ] || fail "face-api demo photos missing: run scripts/setup.sh"
cp "$DEMO/sample1.jpg" "$media/group.jpg"
"$VISIOND" dataset fashion-mnist --out "$media/fashion" --per-label 8 >"$T/dataset.log" 2>&1 ||
  { cat "$T/dataset.log" >&2; fail "visiond dataset failed"; }
for l in "$media/fashion"/*; do
  case "$(basename "$l")" in tshirt_top|shirt|pullover) ;; *) rm -rf "$l" ;; esac
done

VISIOND_LOG_LEVEL=warn "$VISIOND" up --data "$data" --listen "127.0.0.1:$port" --workers 1 --concurrency 2 \
  --media-root "$media" --token-file "$T/token" --model-threads 1 >"$T/up.log" 2>&1 &
up=$!
track "$up"
# On a failure midway: stop up (it stops its children), then kill by pid whatever it left.
stop_all() {
  local kids; kids=$(pgrep -P "$up" 2>/dev/null | tr '\n' ' ' || true)
  kill -TERM "$up" 2>/dev/null || true
  wait "$up" 2>/dev/null || true
  for k in $kids; do kill -9 "$k" 2>/dev/null || true; done
  _vd_cleanup
}
trap stop_all EXIT
wait_for 60 curl -sf "$API/healthz" || { cat "$T/up.log" >&2; fail "api did not come up"; }

auth=(-H "Authorization: Bearer $TOKEN")
post() { curl -s --max-time 120 "${auth[@]}" -H 'Content-Type: application/json' --data-binary "$2" "$API$1"; }
field() { /usr/bin/python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v=v[int(k)] if isinstance(v,list) else v[k]
print(v)' "$1"; }

# ---- the static files: content types, caching, auth rules -------------------
hdr=$(curl -s -D - -o "$T/index.html" "$API/")
echo "$hdr" | grep -qi '^content-type: text/html; charset=utf-8' || fail "/: content type: $hdr"
echo "$hdr" | grep -qi '^cache-control: no-cache' || fail "/: no Cache-Control"
echo "$hdr" | grep -qi "^content-security-policy: default-src 'self'" || fail "/: no CSP"
cmp -s "$T/index.html" "$VISIOND_SOURCE_DIR/web/index.html" || fail "/ is not web/index.html"
etag=$(curl -s -D - -o /dev/null "$API/dashboard/app.js" | tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p')
[ -n "$etag" ] || fail "app.js has no ETag"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$API/dashboard/app.js")" = 304 ] || fail "no 304 for a matching ETag"
[ "$(curl -s -o /dev/null -w '%{content_type}' "$API/dashboard/style.css")" = "text/css; charset=utf-8" ] || fail "style.css type"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$API/dashboard/nope.js")" = 404 ] || fail "unknown asset not 404"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$API/dashboard/")" = 200 ] || fail "/dashboard/ (trailing slash) is not the page"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$API/jobs")" = 401 ] || fail "GET /jobs without the token is not 401"
# /media: the same path confinement as every path route; images only.
[ "$(curl -s -o /dev/null -w '%{http_code}' "$API/media?path=$media/group.jpg")" = 401 ] || fail "/media without the token"
[ "$(curl -s -o "$T/m.jpg" -w '%{http_code} %{content_type}' "${auth[@]}" "$API/media?path=$media/group.jpg")" = "200 image/jpeg" ] || fail "/media of a photo"
cmp -s "$T/m.jpg" "$media/group.jpg" || fail "/media bytes differ"
[ "$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" "$API/media?path=/etc/passwd")" = 422 ] || fail "/media outside the roots"
[ "$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" "$API/media?path=$media/../token")" = 422 ] || fail "/media with .."
echo "not an image" >"$media/notes.txt"
[ "$(curl -s "${auth[@]}" "$API/media?path=$media/notes.txt" | field error.code)" = not_an_image ] || fail "/media of a text file"

# ---- real jobs ---------------------------------------------------------------
for i in 1 2 3 4; do post /jobs '{"type":"noop"}' >/dev/null; done
FAILED_MSG="dashboard test: the disk is on fire ($RANDOM)"
FAILED_ID=$(post /jobs "{\"type\":\"fail\",\"payload\":{\"message\":\"$FAILED_MSG\",\"retryable\":false}}" | field id)
RUNNING_ID=$(post /jobs '{"type":"sleep","payload":{"ms":600000}}' | field id)
SCHEDULED_ID=$(post /jobs '{"type":"noop","delay_ms":3600000}' | field id)
UNCLAIMED_ID=$(post /jobs '{"type":"dashboard.unclaimed","any_type":true}' | field id)
state_of() { "$VISIOND" jobs show "$1" --queue "$Q" | field state; }
job_is() { [ "$(state_of "$1")" = "$2" ]; }
finished_is() { [ "$("$VISIOND" queue stats --queue "$Q" | field counts.finished)" = "$1" ]; }
wait_for 120 job_is "$FAILED_ID" failed || fail "the fail job did not fail: $(state_of "$FAILED_ID")"
wait_for 120 job_is "$RUNNING_ID" started || fail "the sleep job did not start"
wait_for 120 finished_is 4 || fail "the noop jobs did not finish"
[ "$(state_of "$UNCLAIMED_ID")" = queued ] || fail "a job of an unknown type was claimed"

# ---- a training session, when this build has the routes ----------------------
code=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" "$API/training/sessions")
SESSION_ID=""
if [ "$code" = 200 ]; then
  SESSION_ID=$(post /training/sessions "{\"name\":\"fashion: t-shirt, shirt, pullover\",\"folder\":\"$media/fashion\"}" | field id)
  sess_state() { curl -s "${auth[@]}" "$API/training/sessions/$SESSION_ID" | field state; }
  sess_done() { case "$(sess_state)" in succeeded|failed|canceled) return 0 ;; esac; return 1; }
  wait_for 600 sess_done || fail "session $SESSION_ID did not end: $(sess_state)"
  [ "$(sess_state)" = succeeded ] || fail "session $SESSION_ID: $(curl -s "${auth[@]}" "$API/training/sessions/$SESSION_ID")"
  echo "training session $SESSION_ID succeeded"
else
  echo "GET /training/sessions answered $code: checking the panel's 'not available' state"
fi
FACES_CODE=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" -X POST "$API/faces")
# the library (docs/search.md): the group photo, two copies of it and a few others, indexed
LIBRARY=""
if [ "$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" "$API/assets")" = 200 ]; then
  LIBRARY="$media/library"
  mkdir -p "$LIBRARY"
  cp "$media/group.jpg" "$LIBRARY/group.jpg"
  vips resize "$media/group.jpg" "$LIBRARY/group-half.jpg" 0.5
  vips copy "$media/group.jpg" "$LIBRARY/group-q60.jpg[Q=60]"
  cp "$DEMO/sample2.jpg" "$DEMO/sample3.jpg" "$LIBRARY/"
  post /assets "{\"folder\":\"$LIBRARY\"}" >/dev/null
  lib_indexed() { [ "$(curl -s "${auth[@]}" "$API/assets?state=indexed&limit=100" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["assets"]))')" = 5 ]; }
  wait_for 600 lib_indexed || fail "the library was not indexed"
  lib_found() { [ "$(post /search "{\"path\":\"$LIBRARY/group.jpg\",\"k\":10}" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["results"]))')" = 5 ]; }
  wait_for 60 lib_found || fail "the index owner did not catch up"
fi

# ---- the browser ---------------------------------------------------------------
t0=$(date +%s)
DASH_URL="$API" DASH_TOKEN="$TOKEN" DASH_QUEUE="$Q" DASH_MEDIA="$media" DASH_ARTIFACTS="$ARTIFACTS" \
DASH_FAILED_ID="$FAILED_ID" DASH_FAILED_MSG="$FAILED_MSG" DASH_RUNNING_ID="$RUNNING_ID" \
DASH_SCHEDULED_ID="$SCHEDULED_ID" DASH_UNCLAIMED_ID="$UNCLAIMED_ID" DASH_SESSION_ID="$SESSION_ID" \
DASH_FACES_CODE="$FACES_CODE" DASH_LIBRARY="$LIBRARY" DASH_CHROMIUM="$CHROMIUM" DASH_PLAYWRIGHT="$PLAYWRIGHT" \
  node "$VISIOND_SOURCE_DIR/tests/dashboard/dashboard.test.js" || { tail -20 "$T/up.log" >&2; fail "browser checks failed"; }
echo "browser checks took $(( $(date +%s) - t0 )) s; screenshots in $ARTIFACTS:"
ls "$ARTIFACTS"
n=$(ls "$ARTIFACTS"/*.png | wc -l)
[ "$n" -ge 4 ] || fail "only $n screenshots"

kill -TERM "$up"
rc=0; wait "$up" || rc=$?
[ "$rc" = 0 ] || { tail -20 "$T/up.log" >&2; fail "up exited $rc"; }
echo "dashboard: ok"
