# api_jobs.sh: `visiond serve` end to end with curl: the job routes, healthz,
# metrics, a table of bad requests (each with its status and error code, and
# the server still answering after each), bearer tokens, restarts and SIGTERM.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
command -v curl >/dev/null || skip "curl is not installed"

mkdir -p "$T/media" "$T/data"
api_start --data "$T/data" --media-root "$T/media" --max-body 0.01 --threads 3 --model-server none

# ---- healthz ----
req GET /healthz
[ "$STATUS" = 200 ] || fail "healthz: $STATUS $BODY"
[ "$(jget status)" = ok ] && [ "$(jget queue.backend)" = sqlite ] || fail "healthz body: $BODY"

# ---- enqueue, get ----
J=(-H 'Content-Type: application/json')
req POST /jobs "${J[@]}" -d '{"any_type":true,"type":"demo.echo","payload":{"n":1,"s":"héllo"},"priority":5,"max_retries":2,"timeout_ms":30000}'
[ "$STATUS" = 201 ] || fail "enqueue: $STATUS $BODY"
ID=$(jget id)
[ "$(jget state)" = queued ] && [ "$(jget priority)" = 5 ] && [ "$(jget max_retries)" = 2 ] || fail "enqueued job: $BODY"
[ "$(jget payload.s)" = "héllo" ] || fail "payload did not round-trip: $BODY"
grep -qi "^location: /jobs/$ID" <<<"$HDRS" || fail "no Location header: $HDRS"

req GET "/jobs/$ID"
[ "$STATUS" = 200 ] && [ "$(jget id)" = "$ID" ] && [ "$(jget type)" = demo.echo ] || fail "get: $STATUS $BODY"
[ "$(jget timeout_ms)" = 30000 ] && [ "$(jget payload.n)" = 1 ] || fail "get fields: $BODY"

req POST /jobs "${J[@]}" -d '{"any_type":true,"type":"demo.later","delay_ms":3600000}'
[ "$STATUS" = 201 ] && [ "$(jget state)" = scheduled ] || fail "delayed enqueue: $STATUS $BODY"
LATER=$(jget id)
req POST /jobs "${J[@]}" -d '{"any_type":true,"type":"demo.echo"}'
[ "$STATUS" = 201 ] && [ "$(jget payload)" = '{}' ] || fail "enqueue without payload: $STATUS $BODY"

# A caller-chosen id, then a conflict on it.
req POST /jobs "${J[@]}" -d '{"any_type":true,"type":"demo.echo","id":"my-job-1"}'
[ "$STATUS" = 201 ] && [ "$(jget id)" = my-job-1 ] || fail "enqueue with id: $STATUS $BODY"
expect_error 409 job_exists POST /jobs "${J[@]}" -d '{"any_type":true,"type":"demo.echo","id":"my-job-1"}'

# Enqueues from many clients at once (each API thread has its own queue handle).
pids=()
for i in $(seq 1 24); do
  r=$(vd_openapi_record POST /jobs) # checked against api/openapi.json at exit, like req's
  curl -s -o "$r.body" -D "$r.hdr" -w '%{http_code}\n' "${J[@]}" -d "{\"any_type\":true,\"type\":\"demo.bulk\",\"payload\":{\"i\":$i}}" "$API/jobs" >>"$T/bulk" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
[ "$(grep -c '^201$' "$T/bulk")" = 24 ] || fail "parallel enqueues: $(sort "$T/bulk" | uniq -c)"

# ---- list ----
req GET "/jobs?type=demo.bulk&limit=1000"
[ "$STATUS" = 200 ] && [ "$(jget count)" = 24 ] || fail "list by type: $STATUS $(jget count)"
req GET "/jobs?state=scheduled"
[ "$(jget count)" = 1 ] && [ "$(jget jobs.0.id)" = "$LATER" ] || fail "list scheduled: $BODY"
req GET "/jobs?state=queued&type=demo.echo"
[ "$(jget count)" = 3 ] || fail "list queued demo.echo: $(jget count)"
req GET "/jobs?limit=2"
[ "$(jget count)" = 2 ] && [ "$(jget limit)" = 2 ] || fail "limit: $BODY"
FIRST=$(jget jobs.1.id)
req GET "/jobs?limit=1&offset=1"
[ "$(jget jobs.0.id)" = "$FIRST" ] && [ "$(jget offset)" = 1 ] || fail "offset: $BODY"
req GET "/jobs?state=all&limit=1000"
[ "$(jget count)" = 28 ] || fail "list all: $(jget count)"

# ---- cancel and requeue ----
req DELETE "/jobs/$ID"
[ "$STATUS" = 200 ] && [ "$(jget state)" = canceled ] || fail "cancel: $STATUS $BODY"
expect_error 409 invalid_state DELETE "/jobs/$ID"
req POST "/jobs/$ID/requeue"
[ "$STATUS" = 200 ] && [ "$(jget state)" = queued ] && [ "$(jget attempts)" = 0 ] || fail "requeue: $STATUS $BODY"
expect_error 409 invalid_state POST "/jobs/$ID/requeue"
req DELETE "/jobs/$LATER"
[ "$(jget state)" = canceled ] || fail "cancel scheduled: $BODY"

# ---- bad requests: each its status and code; the server keeps answering ----
printf '{"any_type":true,"type":"demo","payload":"%s"}' "$(head -c 20000 /dev/zero | tr '\0' x)" >"$T/big.json"
LONGID=$(head -c 300 /dev/zero | tr '\0' a)
while IFS='|' read -r status code method path args; do
  [ -n "$status" ] || continue
  eval "extra=($args)"
  expect_error "$status" "$code" "$method" "$path" "${extra[@]}"
  req GET /healthz
  [ "$STATUS" = 200 ] || fail "server stopped answering after $method $path $args"
done <<EOF
400|invalid_json|POST|/jobs|-H 'Content-Type: application/json' -d '{"type":'
400|invalid_json|POST|/jobs|-H 'Content-Type: application/json' -d '{"any_type":true,"type":"a","any_type":true,"type":"b"}'
400|invalid_type|POST|/jobs|-H 'Content-Type: application/json' -d '"demo"'
400|invalid_type|POST|/jobs|-H 'Content-Type: application/json' -d '{"type":42}'
400|invalid_type|POST|/jobs|-H 'Content-Type: application/json' -d '{"any_type":true,"type":"demo","priority":"high"}'
400|invalid_type|POST|/jobs|-H 'Content-Type: application/json' -d '{"any_type":true,"type":"demo","max_retries":1.5}'
400|empty_body|POST|/jobs|-H 'Content-Type: application/json'
422|missing_field|POST|/jobs|-H 'Content-Type: application/json' -d '{"payload":{}}'
422|unknown_job_type|POST|/jobs|-H 'Content-Type: application/json' -d '{"type":"demo"}'
400|invalid_type|POST|/jobs|-H 'Content-Type: application/json' -d '{"type":"noop","any_type":"yes"}'
422|invalid_value|POST|/jobs|-H 'Content-Type: application/json' -d '{"type":"no spaces allowed"}'
422|invalid_value|POST|/jobs|-H 'Content-Type: application/json' -d '{"any_type":true,"type":"demo","max_retries":-1}'
422|invalid_value|POST|/jobs|-H 'Content-Type: application/json' -d '{"any_type":true,"type":"demo","priority":99999999}'
422|unknown_field|POST|/jobs|-H 'Content-Type: application/json' -d '{"any_type":true,"type":"demo","retries":3}'
415|unsupported_media_type|POST|/jobs|-d '{"any_type":true,"type":"demo"}'
415|unsupported_media_type|POST|/jobs|-H 'Content-Type: text/plain' -d '{"any_type":true,"type":"demo"}'
415|unsupported_media_type|POST|/jobs|-F type=demo
413|body_too_large|POST|/jobs|-H 'Content-Type: application/json' --data-binary @$T/big.json
413|body_too_large|POST|/jobs|-H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @$T/big.json
404|job_not_found|GET|/jobs/0123456789abcdef0123456789abcdef|
404|job_not_found|DELETE|/jobs/nosuchjob|
404|job_not_found|POST|/jobs/nosuchjob/requeue|
404|job_not_found|GET|/jobs/$LONGID|
404|not_found|GET|/nowhere|
404|not_found|GET|/jobs/$ID/nothing|
404|not_found|GET|/jobs//|
405|method_not_allowed|PUT|/jobs|
405|method_not_allowed|PATCH|/jobs/$ID|
405|method_not_allowed|GET|/jobs/$ID/requeue|
405|method_not_allowed|POST|/healthz|
400|invalid_parameter|GET|/jobs?state=running|
400|invalid_parameter|GET|/jobs?limit=0|
400|invalid_parameter|GET|/jobs?limit=abc|
400|invalid_parameter|GET|/jobs?limit=100000|
400|invalid_parameter|GET|/jobs?offset=-1|
EOF
req PUT /jobs
grep -qi '^allow: POST, GET' <<<"$HDRS" || fail "405 without Allow: $HDRS"
# One trailing slash is the same resource.
req GET "/jobs/$ID/"
[ "$STATUS" = 200 ] && [ "$(jget id)" = "$ID" ] || fail "GET /jobs/$ID/: $STATUS $BODY"

# ---- metrics ----
req GET /metrics
[ "$STATUS" = 200 ] || fail "metrics: $STATUS"
grep -qi '^content-type: text/plain; version=0.0.4' <<<"$HDRS" || fail "metrics content type: $HDRS"
grep -q '^visiond_queue_up 1$' <<<"$BODY" || fail "metrics: no visiond_queue_up 1"
for g in process_resident_memory_bytes process_open_fds process_threads visiond_sqlite_memory_bytes; do
  grep -Eq "^$g [0-9]" <<<"$BODY" || fail "metrics: no $g"
done
grep -q '^visiond_jobs{state="queued"} 27$' <<<"$BODY" || fail "metrics: queued count: $(grep visiond_jobs <<<"$BODY")"
grep -q '^visiond_jobs{state="canceled"} 1$' <<<"$BODY" || fail "metrics: canceled count"
grep -q '^visiond_http_requests_total{method="POST",route="/jobs",status="201"} 28$' <<<"$BODY" ||
  fail "metrics: POST /jobs 201: $(grep 'route="/jobs"' <<<"$BODY" | head -5)"
grep -q '^visiond_http_requests_total{method="GET",route="/jobs/{id}",status="404"} 2$' <<<"$BODY" ||
  fail "metrics: GET /jobs/{id} 404"
grep -q '^visiond_http_requests_total{method="GET",route="unmatched",status="404"} 3$' <<<"$BODY" ||
  fail "metrics: unmatched 404"
grep -q '^visiond_http_request_duration_seconds_count{method="GET",route="/healthz"} ' <<<"$BODY" ||
  fail "metrics: no latency histogram"
grep -q 'le="+Inf"' <<<"$BODY" || fail "metrics: no +Inf bucket"

# ---- one log line per request ----
grep -q "GET /jobs/$ID 200 [0-9]*B [0-9.]*ms" "$API_LOG" || fail "no request log line"
grep -q "POST /jobs 413 " "$API_LOG" || fail "no log line for a refused request"

api_stop

# ---- restart: jobs persist; with a token now ----
echo "tok-$RANDOM-$RANDOM-secret" >"$T/token"
TOKEN=$(cat "$T/token")
api_start --data "$T/data" --media-root "$T/media" --token-file "$T/token" --model-server none
req GET /healthz
[ "$STATUS" = 200 ] || fail "healthz must stay public with a token: $STATUS"
expect_error 401 unauthorized GET "/jobs/$ID"
grep -qi '^www-authenticate: Bearer' <<<"$HDRS" || fail "401 without WWW-Authenticate"
expect_error 401 unauthorized GET "/jobs/$ID" -H "Authorization: Bearer wrong-$TOKEN"
expect_error 401 unauthorized GET "/jobs/$ID" -H "Authorization: Basic $TOKEN"
expect_error 401 unauthorized GET /metrics
expect_error 401 unauthorized GET /nowhere
expect_error 401 unauthorized POST /jobs "${J[@]}" -d '{"any_type":true,"type":"demo"}'
req GET "/jobs/$ID" -H "Authorization: Bearer $TOKEN"
[ "$STATUS" = 200 ] && [ "$(jget id)" = "$ID" ] || fail "authorized get after restart: $STATUS $BODY"
req POST /jobs -H "Authorization: Bearer $TOKEN" "${J[@]}" -d '{"any_type":true,"type":"demo.auth"}'
[ "$STATUS" = 201 ] || fail "authorized enqueue: $STATUS"
grep -q "$TOKEN" "$API_LOG" && fail "the token appears in the log"
api_stop

# ---- the token from the environment ----
VISIOND_TOKEN=env-token api_start --data "$T/data" --model-server none
expect_error 401 unauthorized GET /jobs
req GET /jobs -H "Authorization: Bearer env-token"
[ "$STATUS" = 200 ] || fail "VISIOND_TOKEN: $STATUS"
api_stop

# ---- refusals at start ----
rc=0
"$VISIOND" serve --listen 0.0.0.0:0 --data "$T/data" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q "without a token" "$T/err" || fail "non-loopback without token: rc=$rc $(cat "$T/err")"
rc=0
"$VISIOND" serve --listen 127.0.0.1:0 --data "$T/data" --media-root "$T/no-such-dir" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q "no-such-dir" "$T/err" || fail "bad media root: rc=$rc $(cat "$T/err")"
rc=0
"$VISIOND" serve --listen nowhere:80 >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q "numeric IP" "$T/err" || fail "bad listen address: rc=$rc $(cat "$T/err")"
rc=0
"$VISIOND" serve --bogus >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 2 ] || fail "unknown option: rc=$rc"
rc=0
"$VISIOND" serve --max-body -3 >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 2 ] || fail "bad --max-body: rc=$rc"
echo "PASS api_jobs"
