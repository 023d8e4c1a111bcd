#!/usr/bin/env bash
# netns_harness.sh: the network-namespace hosts of tests/lib/netns.sh, checked on their own:
# two hosts reach each other over their link, not over loopback (each host's loopback is its
# own); the machine's interfaces and addresses are the same before and after; a test that
# fails still removes its namespaces and kills what ran in them; a run killed with SIGKILL
# (no cleanup) is cleaned up by the next run's netns_init. Skipped (77) without root or ip.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/netns.sh"
[ "$(id -u)" = 0 ] || skip "network namespaces need root"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
before_links=$(ip -o link show | awk -F': ' '{print $2}' | sort)
before_addrs=$(ip -o addr show | awk '{print $2, $4}' | sort)

netns_init
netns_host a
netns_host b
A=$(host_addr a)
B=$(host_addr b)
echo "hosts: a $A, b $B (namespaces $NETNS_PREFIX-*)"
[ "$(on a ip -o -4 addr show dev eth0 | awk '{print $4}')" = "$A/24" ] || fail "host a has no $A"
on a ip -o link show lo | grep -q 'UP' || fail "loopback of host a is down"

# a TCP server on b's address, reached from a
SRV='import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], 7777)); s.listen(4)
while True:
    c,_=s.accept(); c.sendall(sys.argv[2].encode()); c.close()'
CLI='import socket,sys
c=socket.create_connection((sys.argv[1], 7777), timeout=2); print(c.recv(64).decode())'
on_bg b "$T/srv_b.log" python3 -c "$SRV" "$B" from-b
on_bg a "$T/srv_a.log" python3 -c "$SRV" 127.0.0.1 loopback-of-a
got() { [ "$(on "$1" python3 -c "$CLI" "$2" 2>/dev/null)" = "$3" ]; }
wait_for 20 got a "$B" from-b || fail "host a cannot reach host b at $B: $(cat "$T/srv_b.log")"
wait_for 20 got a 127.0.0.1 loopback-of-a || fail "host a cannot reach its own loopback"
got b 127.0.0.1 loopback-of-a && fail "host b reached host a's loopback"
got b "$B" from-b || fail "host b cannot reach itself at $B"
echo "a reaches b over the link; each loopback is its own"
[ -n "$(host_pids b)" ] || fail "host_pids b lists nothing"
host_kill b
wait_for 10 bash -c "[ -z \"\$(ip netns pids $NETNS_PREFIX-b)\" ]" || fail "host_kill b left processes"
got a "$B" from-b && fail "host b's server still answers after host_kill b"
echo "host_kill b: every process of b is gone"

# a test that fails still cleans up (its namespaces and its processes)
set +e
bash -c '
  . "$VISIOND_SOURCE_DIR/tests/lib/common.sh"; . "$VISIOND_SOURCE_DIR/tests/lib/netns.sh"
  netns_init; netns_host x; echo "$NETNS_PREFIX" >"$1"
  on_bg x /dev/null sleep 300; echo "$ON_PID" >"$1.pid"
  fail "on purpose"' _ "$T/failed_prefix" 2>/dev/null
rc=$?
set -e
[ "$rc" = 1 ] || fail "the failing test exited $rc"
p=$(cat "$T/failed_prefix")
ip netns list | grep -q "^$p-" && fail "a failed test left its namespaces: $(ip netns list | grep "^$p-")"
kill -0 "$(cat "$T/failed_prefix.pid")" 2>/dev/null && fail "a failed test left a process running"
echo "a failing test removed its namespaces and processes"

# a test killed with SIGKILL leaves them; the next netns_init removes them
bash -c '
  . "$VISIOND_SOURCE_DIR/tests/lib/common.sh"; . "$VISIOND_SOURCE_DIR/tests/lib/netns.sh"
  netns_init; netns_host y; echo "$NETNS_PREFIX" >"$1"; exec sleep 300' _ "$T/killed_prefix" &
kp=$!
wait_for 20 test -s "$T/killed_prefix" || fail "the victim run did not start"
wait_for 20 bash -c "ip netns list | grep -q '^$(cat "$T/killed_prefix")-y'" || fail "no host y"
kill -KILL "$kp"
wait "$kp" 2>/dev/null || true
p=$(cat "$T/killed_prefix")
ip netns list | grep -q "^$p-" || fail "the killed run left nothing (the check proves nothing)"
bash -c '. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"; . "$VISIOND_SOURCE_DIR/tests/lib/netns.sh"; netns_init'
ip netns list | grep -q "^$p-" && fail "netns_init did not remove a killed run's namespaces"
echo "a killed run's namespaces are removed by the next run"

netns_cleanup
ip netns list | grep -q "^$NETNS_PREFIX-" && fail "netns_cleanup left namespaces"
[ "$(ip -o link show | awk -F': ' '{print $2}' | sort)" = "$before_links" ] || fail "the machine's links changed"
[ "$(ip -o addr show | awk '{print $2, $4}' | sort)" = "$before_addrs" ] || fail "the machine's addresses changed"
echo "netns_harness: ok (the machine's links and addresses unchanged)"
