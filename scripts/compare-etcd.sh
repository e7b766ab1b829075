#!/usr/bin/env bash
# Distri's `majority` writes against a 3-member etcd, in alternated runs on this machine: the issue's
# anchor, measured in the same window instead of quoted (the machine's speed swings 2x over a day).
# Installs Debian's etcd-server, etcd-client (etcdctl, for the health checks) and python3 if missing.
#
# usage: scripts/compare-etcd.sh [ROUNDS]   (default 3)
#
# Each round runs, one after another, with 64 writers and a 100-byte value, 4 s after 0.5 s warm-up:
#   1. etcd, 3 members on loopback, data on disk (etcd's default: every put fsyncs);
#   2. the same etcd with its data in /dev/shm (fsync costs nothing: both sides in memory);
#   3. `distri-bench db --modes majority --writes-only` (3 nodes, TLS, in memory).
# and prints Distri's writes/s and p99 as ratios to each etcd's. etcd's clients talk plain HTTP (no
# TLS) through scripts/etcd-load.py.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
./scripts/install-system-packages.sh etcd-server etcd-client python3
swift build -c release --product distri-node >/dev/null
bin="$(swift build -c release --show-bin-path)/distri-node"
work="$(mktemp -d)"
shm="$(mktemp -d /dev/shm/distri-etcd.XXXXXX)"
pids=()
stop_etcd() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  pids=()
}
trap 'stop_etcd; rm -rf "$work" "$shm"' EXIT

free_ports() {  # six free loopback ports
  python3 -c 'import socket
s=[socket.socket() for _ in range(6)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))'
}

# Starts 3 members with their data under $1; sets client_ports. Runs in this shell (not in a command
# substitution), so that the exit trap knows every member to stop.
start_etcd() {
  rm -rf "$1" && mkdir -p "$1"
  read -r c1 c2 c3 p1 p2 p3 <<<"$(free_ports)"
  client_ports="$c1 $c2 $c3"
  local cluster="e1=http://127.0.0.1:$p1,e2=http://127.0.0.1:$p2,e3=http://127.0.0.1:$p3"
  local i=0
  for pair in "$c1:$p1" "$c2:$p2" "$c3:$p3"; do
    i=$((i + 1))
    etcd --name "e$i" --data-dir "$1/e$i" --log-level error \
      --listen-client-urls "http://127.0.0.1:${pair%%:*}" --advertise-client-urls "http://127.0.0.1:${pair%%:*}" \
      --listen-peer-urls "http://127.0.0.1:${pair##*:}" --initial-advertise-peer-urls "http://127.0.0.1:${pair##*:}" \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token distri-bench \
      >"$1/e$i.log" 2>&1 &
    pids+=($!)
  done
  local endpoints="127.0.0.1:$c1,127.0.0.1:$c2,127.0.0.1:$c3"
  for _ in $(seq 1 80); do
    ETCDCTL_API=3 etcdctl --endpoints="$endpoints" endpoint health >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  echo "etcd did not become healthy; the end of its logs (removed on exit):" >&2
  tail -n 5 "$1"/e*.log >&2
  exit 1
}

# One etcd run with its data under $1: sets puts and p99 (ms).
etcd_run() {
  start_etcd "$1"
  local line
  # shellcheck disable=SC2086
  line="$(python3 scripts/etcd-load.py 4 0.5 64 $client_ports)"
  stop_etcd
  echo "$line" >&2
  read -r puts p99 <<<"$(awk '{for (i = 1; i <= NF; i++) { if ($i ~ /\/s$/) r = $i; if ($i == "p99") p = $(i + 1) }} END { sub("/s", "", r); print r, p }' <<<"$line")"
}

for round in $(seq 1 "$rounds"); do
  echo "round $round"
  etcd_run "$work/etcd"
  disk=$puts disk_p99=$p99
  etcd_run "$shm/etcd"
  mem=$puts mem_p99=$p99
  distri="$("$bin" bench db --seconds 4 --warmup 0.5 --modes majority --writes-only | grep '^majority')"
  echo "$distri" >&2
  read -r ops p99 <<<"$(awk '{ print $4, $6 }' <<<"$distri")"
  awk -v o="$ops" -v p="$p99" -v d="$disk" -v dp="$disk_p99" -v m="$mem" -v mp="$mem_p99" 'BEGIN {
    printf "  Distri majority writes: %.1fx the puts/s of etcd on disk, %.1fx of etcd in memory; p99 %.2fx and %.2fx\n",
      o / d, o / m, p / dp, p / mp }'
done
