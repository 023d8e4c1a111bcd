#!/usr/bin/env bash
# up.sh: `visiond up` runs the model server, workers and api under one supervisor,
# restarts a child killed with SIGKILL, runs jobs, and stops everything cleanly on
# SIGTERM, leaving no process behind and no job lost.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
data="$T/data"
Q="sqlite:$data/visiond.db"

# Settings: the env beats the config file, a flag beats both; --print-config says where each came from.
mkdir -p "$data"
printf 'workers = 3\nconcurrency = 1\n' >"$data/visiond.conf"
cfg=$(VISIOND_CONCURRENCY=2 "$VISIOND" up --data "$data" --workers 2 --print-config)
echo "$cfg" | grep -Eq '^workers += 2 +# from flag' || fail "workers not from flag: $cfg"
echo "$cfg" | grep -Eq '^concurrency += 2 +# from env' || fail "concurrency not from env: $cfg"
rm "$data/visiond.conf"
# The store's password is never printed (it reaches children through VISIOND_STORE only).
cfg=$("$VISIOND" up --data "$data" --store 'postgres://u:Sekret9@127.0.0.1:1/x' --print-config)
echo "$cfg" | grep -Eq '^store += postgres://u:\*\*\*@127.0.0.1:1/x +# from flag' || fail "store: $cfg"
! echo "$cfg" | grep -q Sekret9 || fail "--print-config shows the store's password"
"$VISIOND" up --data "$data" --workers nope 2>/dev/null && fail "bad --workers accepted"

"$VISIOND" up --data "$data" --listen "127.0.0.1:$port" --workers 2 --concurrency 2 >"$T/up.log" 2>&1 &
up=$!
track "$up"
# If the test fails midway, kill up's children too (every one names $data in its argv).
trap 'pkill -9 -f -- "$data" 2>/dev/null || true; _vd_cleanup' EXIT
wait_for 30 curl -sf "http://127.0.0.1:$port/healthz" || { cat "$T/up.log"; fail "api did not come up"; }

# Kill one worker supervisor with SIGKILL: up says so and starts another.
w=$(pgrep -P "$up" -f ' worker ' | head -1)
[ -n "$w" ] || fail "no worker child"
kill -9 "$w"
wait_for 20 grep -q "worker-[0-9] (pid $w) killed by SIGKILL" "$T/up.log" || { cat "$T/up.log"; fail "no restart line"; }
two_workers() { [ "$(pgrep -P "$up" -f ' worker ' | wc -l)" -eq 2 ]; }
wait_for 20 two_workers || fail "worker not restarted"

for i in $(seq 1 20); do "$VISIOND" jobs enqueue sleep --payload '{"ms":50}' --queue "$Q" >/dev/null; done
all_done() { [ "$("$VISIOND" queue stats --queue "$Q" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"]["finished"])')" = 20 ]; }
wait_for 60 all_done || { "$VISIOND" queue stats --queue "$Q"; fail "jobs not finished"; }

# A long job is running when up is stopped: it is finished within the grace period or handed back
# (released to queued, the attempt not counted), never lost.
id=$("$VISIOND" jobs enqueue sleep --payload '{"ms":1500}' --queue "$Q")
started() { "$VISIOND" jobs show "$id" --queue "$Q" | grep -q '"state": *"started"'; }
wait_for 20 started || fail "long job did not start"
kids=$(pgrep -P "$up" | tr '\n' ' ')
kill -TERM "$up"
rc=0; wait "$up" || rc=$?
[ "$rc" = 0 ] || { cat "$T/up.log"; fail "up exited $rc"; }
grep -q "stopped$" "$T/up.log" || fail "no clean stop line"
state=$("$VISIOND" jobs show "$id" --queue "$Q" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
case "$state" in finished|queued) ;; *) fail "long job left in state $state (a stop hands it back to queued)";; esac
for k in $kids; do kill -0 "$k" 2>/dev/null && [ "$(awk '{print $3}' /proc/$k/stat)" != Z ] && fail "child $k still runs"; done
sqlite3 "$data/visiond.db" 'PRAGMA integrity_check' | grep -qx ok || fail "integrity_check"
echo "up: ok (restart seen, 20 jobs done, long job $state after stop)"
