#!/usr/bin/env bash
# Test hosts: a small network of Linux network namespaces, with latency, jitter, loss, link cuts and NAT
# gateways, for end-to-end tests across "hosts" on one machine (root or CAP_NET_ADMIN; README "Test
# hosts (network namespaces)").
#
#   testnet.sh check                         exit 0 when namespaces can be made here, else say why (1)
#   testnet.sh up RUN [--hosts N] [--delay MS] [--jitter MS] [--loss PCT]
#                                            init + hosts h1..hN (default 3), prints "NAME ADDRESS" lines
#   testnet.sh init RUN [--owner PID]        the wan namespace, its bridge, nftables and the delay relay
#   testnet.sh host RUN NAME [--delay MS] [--jitter MS] [--loss PCT] [--behind GATEWAY]
#                                            a host; prints its address
#   testnet.sh gateway RUN NAME [--delay MS] [--jitter MS] [--loss PCT]
#                                            a NAT gateway on the wan (its own LAN behind); prints its
#                                            wan address
#   testnet.sh set RUN NAME [--delay MS] [--jitter MS] [--loss PCT]
#   testnet.sh rate RUN NAME MBIT            the host's link limited to MBIT Mbit/s each way (0: unlimited)
#   testnet.sh cut RUN NAME | restore RUN NAME   the host's link down / up
#   testnet.sh exec RUN NAME CMD [ARG...]    runs CMD on the host (ip netns exec execs it: same PID)
#   testnet.sh addr RUN NAME | list RUN | ns RUN NAME
#   testnet.sh down RUN                      kills what runs in RUN's namespaces (by PID), deletes them
#
# What it builds (RUN: [a-z0-9]{1,12}, unique per run; NAME: [a-z][a-z0-9]{0,10}):
#   - namespace RUN-wan: bridge br0 with 10.77.0.1/24, the router between hosts (ip_forward on,
#     no ICMP redirects), and the delay relay (scripts/delay-relay.py) on port 10999;
#   - namespace RUN-NAME per host: eth0 = one end of a veth pair, the other end (v-NAME) a port of br0;
#     address 10.77.0.10 and up as a /32 with the default route via 10.77.0.1, so all host-to-host
#     traffic is routed by the wan namespace (not bridged straight through) and passes its nftables;
#   - latency + jitter: nftables in RUN-wan redirects TCP between 10.77.0.0/24 addresses to the relay,
#     which delays each direction by the two links' delays +- jitter (user space: this kernel has no
#     netem, fq or etf qdisc);
#   - loss: nftables (bridge family) in the link's parent namespace drops `numgen random mod 100 < PCT`
#     of the frames crossing the link's port, in each direction;
#   - rate: a tbf qdisc on each end of the link's veth pair (v-NAME egress towards the host, the
#     host's eth0 or wan0 egress away from it);
#   - cut / restore: ip link set v-NAME down / up in the parent namespace (the host's eth0 loses carrier);
#   - NAT gateway k: namespace RUN-NAME with wan0 (address on br0 like a host) and a LAN bridge lan0
#     10.78.k.1/24; hosts behind it get 10.78.k.10 and up, default route via the gateway, which
#     masquerades them to its wan address and drops new connections from the wan. They can dial out; no
#     one can dial in (the wan has no route to 10.78.0.0/16). The relay sees their connections as coming
#     from the gateway, so their latency is the gateway's link's (--delay on such a host is refused).
# Nothing outside these namespaces is addressed or touched. State (and the relay's log) lives in
# ${DISTRI_TESTNET_STATE:-/tmp/distri-testnet}/RUN; runs whose --owner process is gone are removed by
# the next init, as is an earlier run with the same RUN.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
state_root=${DISTRI_TESTNET_STATE:-/tmp/distri-testnet}
relay_port=10999
wan_prefix=10.77.0
lan_prefix=10.78

die() { echo "testnet: $*" >&2; exit 1; }
wan_ns() { echo "$1-wan"; }
check_run() { [[ $1 =~ ^[a-z0-9]{1,12}$ ]] || die "run id must be [a-z0-9]{1,12}: '$1'"; }
check_name() { [[ $1 =~ ^[a-z][a-z0-9]{0,10}$ ]] || die "host name must be [a-z][a-z0-9]{0,10}: '$1'"; }
check_number() { [[ $2 =~ ^[0-9]+$ ]] && (($2 <= $3)) || die "$1 must be a whole number <= $3: '$2'"; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# hosts file: NAME KIND ADDRESS PARENT_NS DELAY JITTER LOSS (KIND: host, nat-host, gateway)
record() { grep -E "^$2 " "$state_root/$1/hosts" 2>/dev/null || true; }
field() { echo "$1" | awk "{print \$$2}"; }

write_links() {
  local run=$1 dir=$state_root/$1 tmp
  tmp=$(mktemp "$dir/links.XXXXXX")
  {
    echo '{"links": {'
    awk '$2 != "nat-host" { printf "%s\"%s\": {\"delay_ms\": %s, \"jitter_ms\": %s}\n", (n++ ? "," : ""), $3, $5, $6 }' \
      "$dir/hosts"
    echo '}}'
  } >"$tmp"
  mv "$tmp" "$dir/links.json" # atomic: the relay never reads half a file
}

set_loss() { # parent_ns name pct
  local ns=$1 name=$2 pct=$3
  in_ns "$ns" nft flush chain bridge distri_loss "l_$name"
  if ((pct >= 100)); then
    in_ns "$ns" nft add rule bridge distri_loss "l_$name" drop
  elif ((pct > 0)); then
    in_ns "$ns" nft add rule bridge distri_loss "l_$name" numgen random mod 100 '<' "$pct" drop
  fi
}

make_loss_table() { # ns bridge
  in_ns "$1" nft -f - <<EOF
table bridge distri_loss {
  chain pre { type filter hook prerouting priority 0; policy accept; }
  chain post { type filter hook postrouting priority 0; policy accept; }
}
EOF
}

# A veth pair: eth0 (or wan0) in host_ns, v-NAME in parent_ns as a port of its bridge, with a loss chain.
attach() { # parent_ns bridge host_ns name inner_if
  local parent=$1 bridge=$2 ns=$3 name=$4 inner=$5
  ip -n "$parent" link add "v-$name" type veth peer name "$inner" netns "$ns"
  ip -n "$parent" link set "v-$name" master "$bridge" up
  ip -n "$ns" link set "$inner" up
  in_ns "$parent" nft add chain bridge distri_loss "l_$name"
  in_ns "$parent" nft add rule bridge distri_loss pre iifname "v-$name" jump "l_$name"
  in_ns "$parent" nft add rule bridge distri_loss post oifname "v-$name" jump "l_$name"
}

new_ns() {
  ip netns add "$1"
  ip -n "$1" link set lo up
  in_ns "$1" sysctl -qw net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0
}

options() { # sets delay jitter loss behind from --flags
  delay=${delay:-0} jitter=${jitter:-0} loss=${loss:-0} behind=${behind:-}
  while (($#)); do
    case $1 in
      --delay) delay=$2; shift 2 ;;
      --jitter) jitter=$2; shift 2 ;;
      --loss) loss=$2; shift 2 ;;
      --behind) behind=$2; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  check_number --delay "$delay" 10000
  check_number --jitter "$jitter" 10000
  check_number --loss "$loss" 100
}

cmd_check() {
  local probe="distri-check-$$"
  local missing=()
  for tool in ip nft python3; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  ((${#missing[@]} == 0)) || die "missing ${missing[*]} (scripts/install-system-packages.sh installs them)"
  local error
  if ! error=$(ip netns add "$probe" 2>&1); then die "cannot create a network namespace: $error"; fi
  if ! error=$(ip netns exec "$probe" nft add table inet probe 2>&1); then
    ip netns del "$probe" || true
    die "nftables does not work in a namespace: $error"
  fi
  ip netns del "$probe"
  echo "network namespaces: ok"
}

cmd_down() {
  local run=$1 dir=$state_root/$1
  if [[ -f $dir/relay.pid ]]; then kill "$(cat "$dir/relay.pid")" 2>/dev/null || true; fi
  local namespaces
  namespaces=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$run-" || true)
  local ns pids
  for ns in $namespaces; do
    # Only processes inside this run's own namespaces: the ones the run started.
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [[ -n $pids ]]; then
      kill $pids 2>/dev/null || true
      for _ in $(seq 20); do # up to 2 s, then SIGKILL
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        [[ -z $pids ]] && break
        sleep 0.1
      done
      [[ -n $pids ]] && kill -9 $pids 2>/dev/null || true
    fi
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$dir"
}

gc() { # removes runs whose owner process is gone
  [[ -d $state_root ]] || return 0
  local dir owner
  for dir in "$state_root"/*/; do
    [[ -f $dir/owner ]] || continue
    owner=$(cat "$dir/owner")
    if [[ $owner =~ ^[0-9]+$ ]] && ! kill -0 "$owner" 2>/dev/null; then
      echo "testnet: removing stale run $(basename "$dir") (owner $owner gone)" >&2
      cmd_down "$(basename "$dir")"
    fi
  done
}

cmd_init() {
  local run=$1; shift
  local owner=none
  while (($#)); do
    case $1 in
      --owner) owner=$2; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  gc
  cmd_down "$run" # a stale run with the same id
  local dir=$state_root/$run ns
  ns=$(wan_ns "$run")
  mkdir -p "$dir"
  echo "$owner" >"$dir/owner"
  : >"$dir/hosts"
  new_ns "$ns"
  in_ns "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 \
    net.ipv4.conf.default.send_redirects=0
  add_bridge "$ns" br0 "$wan_prefix.1/24"
  make_loss_table "$ns"
  in_ns "$ns" nft -f - <<EOF
table ip distri_relay {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    meta l4proto tcp ip saddr $wan_prefix.0/24 ip daddr $wan_prefix.0/24 ip daddr != $wan_prefix.1 redirect to :$relay_port
  }
}
EOF
  write_links "$run"
  # The subshell, nohup and ip netns exec all exec, so $! is the relay's own PID. It closes every
  # inherited descriptor first: Foundation's Process (the Swift tests) learns that its child exited when
  # a socket the child inherited closes, so a relay holding it would make the script never "exit".
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-"; fi
    done
    exec nohup ip netns exec "$ns" python3 "$here/delay-relay.py" --port "$relay_port" \
      --links "$dir/links.json" --log "$dir/relay.log" </dev/null >>"$dir/relay.out" 2>&1
  ) &
  echo $! >"$dir/relay.pid"
  for _ in $(seq 100); do # up to 10 s for the relay to listen
    grep -q "listening on" "$dir/relay.log" 2>/dev/null && return 0
    kill -0 "$(cat "$dir/relay.pid")" 2>/dev/null || die "the delay relay exited: $(cat "$dir/relay.out")"
    sleep 0.1
  done
  die "the delay relay did not start within 10 s"
}

next_wan_address() {
  local n
  n=$(awk '$2 != "nat-host"' "$state_root/$1/hosts" | wc -l)
  ((n < 200)) || die "no more wan addresses"
  echo "$wan_prefix.$((10 + n))"
}

# add_bridge NS NAME CIDR: a bridge, up, with the router's address on it.
add_bridge() {
  ip -n "$1" link add "$2" type bridge forward_delay 0
  ip -n "$1" addr add "$3" dev "$2"
  ip -n "$1" link set "$2" up
}

# wan_route NS DEV ADDRESS: ADDRESS/32 on DEV, routed through the wan router.
wan_route() {
  ip -n "$1" addr add "$3/32" dev "$2"
  ip -n "$1" route add "$wan_prefix.1" dev "$2"
  ip -n "$1" route add default via "$wan_prefix.1"
}

# check_new RUN NAME: NAME is a valid name not yet in RUN, which exists.
check_new() {
  check_name "$2"
  [[ -d $state_root/$1 ]] || die "no run $1 (testnet.sh init $1 first)"
  [[ -z $(record "$1" "$2") ]] || die "$2 exists in $1"
}

cmd_host() {
  local run=$1 name=$2; shift 2
  check_new "$run" "$name"
  local delay jitter loss behind
  options "$@"
  local ns=$run-$name address parent
  if [[ -n $behind ]]; then
    local gateway
    gateway=$(record "$run" "$behind")
    [[ $(field "$gateway" 2) == gateway ]] || die "$behind is not a gateway of $run"
    ((delay == 0 && jitter == 0)) || die "a host behind a gateway has its gateway's delay (set it there)"
    parent=$run-$behind
    local k n
    k=$(cat "$state_root/$run/lan-$behind")
    n=$(awk -v p="$parent" '$2 == "nat-host" && $4 == p' "$state_root/$run/hosts" | wc -l)
    ((n < 200)) || die "no more addresses behind $behind"
    address=$lan_prefix.$k.$((10 + n))
    new_ns "$ns"
    attach "$parent" lan0 "$ns" "$name" eth0
    ip -n "$ns" addr add "$address/24" dev eth0
    ip -n "$ns" route add default via "$lan_prefix.$k.1"
    echo "$name nat-host $address $parent $delay $jitter $loss" >>"$state_root/$run/hosts"
  else
    parent=$(wan_ns "$run")
    address=$(next_wan_address "$run")
    new_ns "$ns"
    attach "$parent" br0 "$ns" "$name" eth0
    wan_route "$ns" eth0 "$address"
    echo "$name host $address $parent $delay $jitter $loss" >>"$state_root/$run/hosts"
    write_links "$run"
  fi
  set_loss "$parent" "$name" "$loss"
  echo "$address"
}

cmd_gateway() {
  local run=$1 name=$2; shift 2
  check_new "$run" "$name"
  local delay jitter loss behind
  options "$@"
  [[ -z $behind ]] || die "a gateway is on the wan"
  local ns=$run-$name parent address k
  parent=$(wan_ns "$run")
  address=$(next_wan_address "$run")
  k=$(($(awk '$2 == "gateway"' "$state_root/$run/hosts" | wc -l) + 1))
  echo "$k" >"$state_root/$run/lan-$name"
  new_ns "$ns"
  in_ns "$ns" sysctl -qw net.ipv4.ip_forward=1
  attach "$parent" br0 "$ns" "$name" wan0
  wan_route "$ns" wan0 "$address"
  add_bridge "$ns" lan0 "$lan_prefix.$k.1/24"
  make_loss_table "$ns"
  in_ns "$ns" nft -f - <<EOF
table ip distri_nat {
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "wan0" ct state established,related accept
    iifname "wan0" drop
  }
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" ip saddr $lan_prefix.$k.0/24 masquerade
  }
}
EOF
  echo "$name gateway $address $parent $delay $jitter $loss" >>"$state_root/$run/hosts"
  write_links "$run"
  set_loss "$parent" "$name" "$loss"
  echo "$address"
}

cmd_set() {
  local run=$1 name=$2; shift 2
  local line
  line=$(record "$run" "$name")
  [[ -n $line ]] || die "no host $name in $run"
  local delay jitter loss behind
  delay=$(field "$line" 5) jitter=$(field "$line" 6) loss=$(field "$line" 7)
  options "$@"
  if [[ $(field "$line" 2) == nat-host ]] && ((delay != 0 || jitter != 0)); then
    die "a host behind a gateway has its gateway's delay (set it there)"
  fi
  local parent tmp
  parent=$(field "$line" 4)
  tmp=$(mktemp "$state_root/$run/hosts.XXXXXX")
  awk -v n="$name" -v d="$delay" -v j="$jitter" -v l="$loss" \
    '$1 == n { $5 = d; $6 = j; $7 = l } { print }' "$state_root/$run/hosts" >"$tmp"
  mv "$tmp" "$state_root/$run/hosts"
  write_links "$run"
  set_loss "$parent" "$name" "$loss"
}

cmd_rate() { # run name mbit
  local line
  line=$(record "$1" "$2")
  [[ -n $line ]] || die "no host $2 in $1"
  check_number rate "$3" 100000
  local parent inner=eth0
  parent=$(field "$line" 4)
  [[ $(field "$line" 2) == gateway ]] && inner=wan0
  local end
  for end in "$parent v-$2" "$1-$2 $inner"; do
    set -- "$1" "$2" "$3" $end
    if (($3 == 0)); then
      ip -n "$4" link show "$5" >/dev/null && { tc -n "$4" qdisc del dev "$5" root 2>/dev/null || true; }
    else
      # burst: 10 ms at the rate (at least 64 KiB); latency bounds the queue to 100 ms.
      local burst=$(( $3 * 1250 > 65536 ? $3 * 1250 : 65536 ))
      tc -n "$4" qdisc replace dev "$5" root tbf rate "${3}mbit" burst "$burst" latency 100ms
    fi
  done
}

cmd_link() { # run name up|down
  local line
  line=$(record "$1" "$2")
  [[ -n $line ]] || die "no host $2 in $1"
  ip -n "$(field "$line" 4)" link set "v-$2" "$3"
}

main() {
  (($#)) || die "usage: testnet.sh check|up|init|host|gateway|set|rate|cut|restore|exec|addr|list|ns|down ..."
  local command=$1; shift
  case $command in
    check) cmd_check ;;
    init) check_run "${1:-}"; cmd_init "$@" ;;
    up)
      check_run "${1:-}"
      local run=$1; shift
      local count=3 delay jitter loss behind rest=()
      while (($#)); do
        case $1 in
          --hosts) count=$2; shift 2 ;;
          *) rest+=("$1"); shift ;;
        esac
      done
      check_number --hosts "$count" 50
      cmd_init "$run"
      for i in $(seq "$count"); do echo "h$i $(cmd_host "$run" "h$i" "${rest[@]}")"; done
      ;;
    host) check_run "${1:-}"; cmd_host "$@" ;;
    gateway) check_run "${1:-}"; cmd_gateway "$@" ;;
    set) check_run "${1:-}"; cmd_set "$@" ;;
    rate) check_run "${1:-}"; cmd_rate "$1" "$2" "${3:-}" ;;
    cut) check_run "${1:-}"; cmd_link "$1" "$2" down ;;
    restore) check_run "${1:-}"; cmd_link "$1" "$2" up ;;
    exec)
      check_run "${1:-}"
      local run=$1 name=$2; shift 2
      [[ -n $(record "$run" "$name") ]] || die "no host $name in $run"
      exec ip netns exec "$run-$name" "$@"
      ;;
    addr)
      check_run "${1:-}"
      local line
      line=$(record "$1" "$2")
      [[ -n $line ]] || die "no host $2 in $1"
      field "$line" 3
      ;;
    ns) check_run "${1:-}"; [[ -n $(record "$1" "$2") ]] || die "no host $2 in $1"; echo "$1-$2" ;;
    list) check_run "${1:-}"; cat "$state_root/$1/hosts" ;;
    down) check_run "${1:-}"; cmd_down "$1" ;;
    *) die "unknown command $command" ;;
  esac
}

main "$@"
