#!/usr/bin/env bash
# settings_logs.sh: docs/configuration.md stays true, and --log-format json writes JSON lines.
#
# 1. The "Every setting" table lists every flag of every command's --help, and nothing else
#    (tests/lib/settings_table.py); the annotated config file example is a valid config.
# 2. --log-format json (before or after the command), $VISIOND_LOG_FORMAT=json and up's
#    config key log_format: every stderr line is one JSON object with time, level, pid,
#    component and message; the api's request lines carry fields; a control character in a
#    request path stays inside the JSON string; a bad format is a usage error (exit 2).
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"

/usr/bin/python3 "$VISIOND_SOURCE_DIR/tests/lib/settings_table.py" "$VISIOND" \
  "$VISIOND_SOURCE_DIR/docs/configuration.md" || fail "docs/configuration.md's table does not match --help"

# The example config file in docs/configuration.md parses, and up takes log_format from it.
sed -n '/^```ini$/,/^```$/p' "$VISIOND_SOURCE_DIR/docs/configuration.md" | sed '1d;$d' >"$T/example.conf"
[ -s "$T/example.conf" ] || fail "no config example in docs/configuration.md"
"$VISIOND" up --config "$T/example.conf" --print-config >"$T/printed.conf" 2>"$T/printed.err" ||
  { cat "$T/printed.err" >&2; fail "the example config file is refused"; }
grep -Eq '^log_format += json +# from file' "$T/printed.conf" || { cat "$T/printed.conf" >&2; fail "log_format not read from the file"; }
env VISIOND_LOG_FORMAT=text "$VISIOND" up --config "$T/example.conf" --print-config | grep -Eq '^log_format += text +# from env' ||
  fail "VISIOND_LOG_FORMAT does not override the file"
printf 'log_format = yaml\n' >"$T/bad.conf"
rc=0; "$VISIOND" up --config "$T/bad.conf" --print-config >/dev/null 2>"$T/bad.err" || rc=$?
[ "$rc" != 0 ] && grep -q "log_format" "$T/bad.err" || fail "a bad log_format is accepted (rc $rc)"

# A bad format is a usage error, from the flag or the environment.
rc=0; "$VISIOND" --log-format yaml version >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "--log-format yaml: exit $rc, want 2"
rc=0; VISIOND_LOG_FORMAT=xml "$VISIOND" version >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "VISIOND_LOG_FORMAT=xml: exit $rc, want 2"
rc=0; "$VISIOND" version --log-format >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "--log-format without a value: exit $rc, want 2"

# check_json FILE COMPONENT: every line is a JSON object with the fields; prints the count.
check_json() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import json, os, re, sys
path, component = sys.argv[1], sys.argv[2]
lines = open(path, encoding="utf-8").read().splitlines()
if os.environ.get("VISIOND_TEST_SANITIZED"):  # LeakSanitizer's own report of suppressions
    sanitizer = re.compile(r"^(-+|Suppressions used:|\s+count\s+bytes\s+template|\s+\d+\s+\d+\s+\S+)$")
    lines = [ln for ln in lines if ln and not sanitizer.match(ln)]
assert lines, "no log lines in %s" % path
n = 0
for ln in lines:
    o = json.loads(ln)
    assert isinstance(o, dict), ln
    for k, t in (("time", str), ("level", str), ("pid", int), ("component", str), ("message", str)):
        assert isinstance(o.get(k), t), "%s: %s missing or not %s" % (ln, k, t.__name__)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", o["time"]), ln
    assert o["level"] in ("debug", "info", "warn", "error"), ln
    assert set(o) <= {"time", "level", "pid", "component", "message", "fields"}, ln
    if "fields" in o:
        assert isinstance(o["fields"], dict) and all(isinstance(v, str) for v in o["fields"].values()), ln
    n += 1
assert any(o for o in map(json.loads, lines) if json.loads(json.dumps(o))["component"] == component), \
    "no line from %s" % component
print(n)
PY
}

# serve, with the flag after the command name; a request with a newline and a quote in its path.
VISIOND_LOG_LEVEL=info api_start --log-format json --data "$T/d1" --model-server none
req GET /jobs/abc
curl -s -o /dev/null "$API/jobs/x%0Ay%22z" || true
req GET /healthz
api_stop
n=$(check_json "$API_LOG" api) || { cat "$API_LOG" >&2; fail "serve --log-format json wrote a line that is not a log object"; }
echo "serve: $n JSON log lines"
/usr/bin/python3 - "$API_LOG" <<'PY' || fail "the request lines do not carry their fields"
import json, sys
reqs = [o for o in map(json.loads, open(sys.argv[1])) if "fields" in o]
f = {o["fields"]["path"]: o["fields"] for o in reqs}
assert f["/jobs/abc"] == {**f["/jobs/abc"], "method": "GET", "status": "404", "route": "/jobs/{id}"}, f
assert f["/healthz"]["status"] == "200" and float(f["/healthz"]["ms"]) >= 0 and int(f["/healthz"]["bytes"]) > 0, f
assert '/jobs/x\ny"z' in f, "the escaped path did not round-trip: %r" % list(f)
PY

# The variable, before the command name; a command that fails logs JSON too (worker, bad queue).
rc=0; VISIOND_LOG_FORMAT=json "$VISIOND" worker --queue "sqlite:/dev/null/q.db" --burst 2>"$T/worker.log" || rc=$?
[ "$rc" != 0 ] || fail "a worker on an unreachable queue exited 0"
check_json "$T/worker.log" worker >/dev/null || { cat "$T/worker.log" >&2; fail "worker's log is not JSON lines"; }

# up passes the format to its children: the api's lines (component api) are JSON too.
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$VISIOND" --log-format json up --data "$T/d2" --listen "127.0.0.1:$port" --workers 0 >"$T/up.out" 2>"$T/up.log" &
up=$!
track "$up"
wait_for 60 curl -sf "http://127.0.0.1:$port/healthz" || { cat "$T/up.log" >&2; fail "up did not come up"; }
kill -TERM "$up"; wait "$up" || true
check_json "$T/up.log" up >/dev/null || { cat "$T/up.log" >&2; fail "up --log-format json: not JSON lines"; }
grep -q '"component":"api"' "$T/up.log" || { cat "$T/up.log" >&2; fail "up's api child did not log JSON"; }
echo "PASS settings_logs"
