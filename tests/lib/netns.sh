# netns.sh: "hosts" for multi-host tests, made of Linux network namespaces. Source after
# common.sh. Needs root and iproute2 (`ip netns`); a test skips (77) without them.
#
# Every host is a network namespace of its own, named vdt<PID>r<RAND>-<host> (unique per test
# run), with its loopback up and one veth link "eth0" whose other end sits in a bridge "br0"
# inside one more namespace of its own (…-sw, the switch). Addresses exist only on those
# links: 10.231.N.H/24, N picked per run, H per host from 2 up. The machine's own interfaces,
# routes and firewall are never touched: no link is ever created in the initial namespace (the
# veth pair is made inside the host's namespace with its peer moved straight into the switch's).
# Files are shared (all hosts see the same file system, $T included); only the network is
# not, so tests must connect hosts over TCP to their addresses, never through a Unix socket path.
#
#   netns_init                 checks the prerequisites, removes what a killed earlier run of
#                              this harness left behind (namespaces whose creating process is
#                              gone), makes the switch; sets NETNS_NET (10.231.N)
#   netns_host NAME            makes host NAME; prints nothing; sets NETNS_ADDR_<NAME>
#   host_addr NAME             prints NAME's address
#   on NAME CMD [ARGS...]      runs CMD (a program, not a shell function) in host NAME,
#                              in the foreground; `on NAME bash -c '...'` for a pipeline
#   on_bg NAME LOG CMD [ARGS...]  the same in the background, stdout+stderr appended to LOG,
#                              tracked (killed at exit); sets ON_PID
#   host_pids NAME             prints the pids of every process in host NAME
#   host_kill NAME [SIG]       sends SIG (default KILL) to every process of host NAME
#   netns_cleanup              kills every process of every host and deletes the namespaces
#                              (runs at exit by itself, also when the test fails)
NETNS_HOSTS=()
NETNS_PREFIX=""
NETNS_NET=""

netns_init() {
  [ "$(id -u)" = 0 ] || skip "network namespaces need root"
  command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
  NETNS_PREFIX="vdt$$r$RANDOM"
  # leftovers of runs that were killed before their cleanup: the creator's pid is in the name
  local ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^vdt[0-9]+r[0-9]+-' || true); do
    pid=${ns#vdt}
    pid=${pid%%r*}
    kill -0 "$pid" 2>/dev/null && continue
    _netns_del "$ns"
  done
  ip netns add "$NETNS_PREFIX-sw" 2>/dev/null || skip "cannot create a network namespace (ip netns add)"
  NETNS_HOSTS=(sw)
  trap 'netns_cleanup; _vd_cleanup' EXIT
  ip -n "$NETNS_PREFIX-sw" link set lo up
  ip -n "$NETNS_PREFIX-sw" link add br0 type bridge
  ip -n "$NETNS_PREFIX-sw" link set br0 up
  NETNS_NET="10.231.$(( ($$ + RANDOM) % 250 + 1 ))"
  _netns_next=2
}

netns_host() {
  local name=$1 ns="$NETNS_PREFIX-$1"
  [ -n "$NETNS_PREFIX" ] || fail "netns_host before netns_init"
  case "$name" in *[!a-z0-9]* | "") fail "host names are [a-z0-9]+ (got '$name')" ;; esac
  ip netns add "$ns" || fail "ip netns add $ns"
  NETNS_HOSTS+=("$name")
  local addr="$NETNS_NET.$_netns_next"
  _netns_next=$((_netns_next + 1))
  ip -n "$ns" link set lo up
  # made inside the host, the peer moved straight into the switch: nothing in the initial namespace
  ip -n "$ns" link add eth0 type veth peer name "p-$name" netns "$NETNS_PREFIX-sw" ||
    fail "cannot make the veth link of host $name"
  ip -n "$NETNS_PREFIX-sw" link set "p-$name" master br0
  ip -n "$NETNS_PREFIX-sw" link set "p-$name" up
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
  printf -v "NETNS_ADDR_$name" '%s' "$addr"
}

host_addr() { local v="NETNS_ADDR_$1"; [ -n "${!v:-}" ] || fail "no host $1"; echo "${!v}"; }

on() {
  local name=$1; shift
  ip netns exec "$NETNS_PREFIX-$name" "$@"
}

on_bg() {
  local name=$1 log=$2; shift 2
  ip netns exec "$NETNS_PREFIX-$name" "$@" >>"$log" 2>&1 </dev/null &
  ON_PID=$!
  track "$ON_PID"
}

host_pids() { ip netns pids "$NETNS_PREFIX-$1" 2>/dev/null || true; }

host_kill() {
  local name=$1 sig=${2:-KILL} p
  for p in $(host_pids "$name"); do kill -"$sig" "$p" 2>/dev/null || true; done
}

_netns_del() { # NS: kill what runs in it, then delete it (its links go with it)
  local p i
  for i in 1 2 3; do
    p=$(ip netns pids "$1" 2>/dev/null || true)
    [ -n "$p" ] || break
    kill -KILL $p 2>/dev/null || true
    sleep 0.1
  done
  ip netns del "$1" 2>/dev/null || true
}

netns_cleanup() {
  local h
  [ -n "$NETNS_PREFIX" ] || return 0
  for h in "${NETNS_HOSTS[@]}"; do _netns_del "$NETNS_PREFIX-$h"; done
  NETNS_HOSTS=()
}
