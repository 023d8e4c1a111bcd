#!/usr/bin/env bash
# openapi_contract.sh: the API's contract (api/openapi.json) is well-formed, served, rendered,
# and its checker catches drift.
#
# 1. @redocly/cli 2.77.0 (scripts/setup.sh) lints it: no error and no warning (api/redocly.yaml).
# 2. GET /openapi.json serves exactly the file; GET /docs serves the Swagger UI page and its
#    files (ETag, 304, CSP); a token does not hide them; every response here is validated.
# 3. The checker (tests/lib/openapi_check.py) fails on an undocumented field, status, media
#    type and a missing required header: responses doctored from real ones.
# 4. With chromium: the page renders the operations in a real browser (tests/docs/docs.test.js).
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
DOC="$VISIOND_SOURCE_DIR/api/openapi.json"
DEPS=${VISIOND_PREFIX:-/opt/visiond}/deps

REDOCLY="$DEPS/redocly/node_modules/.bin/redocly"
[ -x "$REDOCLY" ] || fail "@redocly/cli is not under $DEPS/redocly: run scripts/setup.sh"
"$REDOCLY" lint --config "$VISIOND_SOURCE_DIR/api/redocly.yaml" --format=stylish "$DOC" >"$T/lint.log" 2>&1 ||
  { cat "$T/lint.log" >&2; fail "redocly lint found errors"; }
if grep -Eq '(warning|error) ' "$T/lint.log"; then cat "$T/lint.log" >&2; fail "redocly lint found warnings"; fi
echo "redocly lint: $(grep -E 'valid|validated' "$T/lint.log" | head -2 | tr '\n' ' ')"

printf 'tok-%s\n' "$RANDOM$RANDOM" >"$T/token"
api_start --data "$T/data" --model-server none --token-file "$T/token"
req GET /openapi.json
[ "$STATUS" = 200 ] || fail "GET /openapi.json: $STATUS"
curl -s "$API/openapi.json" | cmp -s - "$DOC" || fail "GET /openapi.json is not api/openapi.json"  # byte for byte
etag=$(sed -nE 's/^ETag: (.*)\r?$/\1/Ip' <<<"$HDRS" | tr -d '\r')
req GET /openapi.json -H "If-None-Match: $etag"
[ "$STATUS" = 304 ] || fail "GET /openapi.json with its ETag: $STATUS"
req GET /docs
[ "$STATUS" = 200 ] || fail "GET /docs: $STATUS (was swagger-ui-dist installed when this was built?)"
grep -qi '^Content-Security-Policy: .*script-src\|^Content-Security-Policy: default-src .self.' <<<"$HDRS" || fail "/docs has no CSP"
grep -q 'swagger-ui-bundle.js' <<<"$BODY" || fail "/docs is not the Swagger UI page"
for f in swagger-ui-bundle.js swagger-ui.css docs-init.js; do
  req GET "/docs/$f"
  [ "$STATUS" = 200 ] || fail "GET /docs/$f: $STATUS"
done
expect_error 404 not_found GET /docs/nope.js
expect_error 404 not_found GET /docs/docs.html
expect_error 401 unauthorized POST /openapi.json
expect_error 405 method_not_allowed POST /openapi.json -H "Authorization: Bearer $(cat "$T/token")"
expect_error 401 unauthorized GET /jobs
expect_error 404 not_found GET /no/such/route -H "Authorization: Bearer $(cat "$T/token")"

# The checker catches drift: doctored copies of real responses must each fail.
mk="$T/drift"; mkdir -p "$mk"
one() { # NAME METHOD PATH HDRFILE BODY: a record set of one response in $mk/NAME
  mkdir -p "$mk/$1"; printf '%s %s\n' "$2" "$3" >"$mk/$1/1.req"; cp "$4" "$mk/$1/1.hdr"; printf '%s' "$5" >"$mk/$1/1.body"
}
H="$T/h"; curl -s -D "$H.ok" -o "$H.okbody" "$API/healthz"
curl -s -D "$H.401" -o /dev/null "$API/jobs"
one extra_field GET /healthz "$H.ok" "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["surprise"]=1; print(json.dumps(d))' "$H.okbody")"
sed 's/^HTTP\/1.1 200 OK/HTTP\/1.1 202 Accepted/' "$H.ok" >"$H.202"
one bad_status GET /healthz "$H.202" "$(cat "$H.okbody")"
sed 's/^Content-Type: application\/json/Content-Type: text\/plain/I' "$H.ok" >"$H.text"
one bad_type GET /healthz "$H.text" "$(cat "$H.okbody")"
grep -vi '^WWW-Authenticate' "$H.401" >"$H.401b"
one missing_header GET /jobs "$H.401b" '{"error":{"code":"unauthorized","message":"x"}}'
one unknown_code GET /jobs "$H.401" '{"error":{"code":"no_such_code","message":"x"}}'
one wrong_type GET /healthz "$H.ok" "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["uptime_ms"]="soon"; print(json.dumps(d))' "$H.okbody")"
for c in extra_field bad_status bad_type missing_header unknown_code wrong_type; do
  if /usr/bin/python3 "$VISIOND_SOURCE_DIR/tests/lib/openapi_check.py" "$DOC" "$mk/$c" 2>"$T/drift.$c"; then
    cat "$T/drift.$c" >&2; fail "the checker passed a doctored response ($c)"
  fi
  grep -q 'openapi: FAIL' "$T/drift.$c" || fail "the checker failed without saying why ($c)"
done
echo "the checker caught 6 of 6 doctored responses"

CHROMIUM=${VISIOND_CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
PLAYWRIGHT=$DEPS/npm/playwright-core@1.65.1
if [ -n "$CHROMIUM" ] && [ -f "$PLAYWRIGHT/index.js" ] && command -v node >/dev/null; then
  ART=${VISIOND_ARTIFACTS:-$VISIOND_BUILD_DIR/artifacts}/docs
  mkdir -p "$ART"
  DOCS_PLAYWRIGHT=$PLAYWRIGHT DOCS_URL=$API DOCS_CHROMIUM=$CHROMIUM DOCS_SHOT=$ART/docs.png \
    timeout 180 node "$VISIOND_SOURCE_DIR/tests/docs/docs.test.js" || fail "the /docs page does not render"
else
  echo "no chromium or playwright-core: the browser check of /docs is skipped"
fi
api_stop
echo "PASS openapi_contract"
