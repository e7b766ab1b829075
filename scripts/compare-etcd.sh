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
swift build -c release --product distri-bench >/dev/null
swift build -c release --product distri-node >/dev/null
bin="$(swift build -c release --show-bin-path)/distri-bench"
work="$(mktemp -d)"
shm="$(mktemp -d /dev/shm/distri-etcd.XXXXXX)"
# shellcheck source=scripts/etcd-cluster.sh
source scripts/etcd-cluster.sh
trap 'stop_etcd; rm -rf "$work" "$shm"' EXIT

for round in $(seq 1 "$rounds"); do
  echo "round $round"
  etcd_run "$work/etcd"
  disk=$puts disk_p99=$p99
  etcd_run "$shm/etcd"
  mem=$puts mem_p99=$p99
  distri="$("$bin" db --seconds 4 --warmup 0.5 --modes majority --writes-only | grep '^majority')"
  echo "$distri" >&2
  read -r ops p99 <<<"$(awk '{ print $4, $6 }' <<<"$distri")"
  awk -v o="$ops" -v p="$p99" -v d="$disk" -v dp="$disk_p99" -v m="$mem" -v mp="$mem_p99" 'BEGIN {
    printf "  Distri majority writes: %.1fx the puts/s of etcd on disk, %.1fx of etcd in memory; p99 %.2fx and %.2fx\n",
      o / d, o / m, p / dp, p / mp }'
done
