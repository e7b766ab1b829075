#!/usr/bin/env bash
# Durable writes (issue 27): Distri's `majority` writes with --data-dir against a 3-member etcd on disk,
# in alternated runs on this machine, with the in-memory path of the same build and, if given, the
# on-disk path of another build in the same rounds.
#
# usage: scripts/compare-durable-etcd.sh [ROUNDS] [BASELINE_DIR]   (default 3 rounds)
#   BASELINE_DIR: a directory holding distri-bench and distri-node of another build (e.g. copied from
#   .build/release before a change), measured with --data-dir in each round too.
#   DISTRI_BIN_DIR=DIR: measure the binaries in DIR instead of building this tree's release products.
#
# Each round runs, one after another, with 64 writers and a 100-byte value, 4 s after 0.5 s warm-up:
#   1. etcd 3.4, 3 members on loopback, data on disk (ext4 here); etcd's default: its WAL fdatasyncs
#      every batch of raft entries before they count, on every member;
#   2. `distri-bench db --modes majority --writes-only --data-dir DIR` (3 nodes, TLS, each with its
#      write-ahead log on the same disk): a write is acknowledged once a majority of replicas hold it
#      in their log after an fdatasync (group commit: one write + one fdatasync per group);
#   3. the same build in memory (no --data-dir);
#   4. the baseline build with --data-dir, when given.
# and prints writes/s and p99 as ratios to etcd's, the on-disk/in-memory ratio and the cloud's CPU per
# write (µs, all 3 nodes). etcd's clients talk plain HTTP (no TLS) through scripts/etcd-load.py.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
baseline="${2:-}"
./scripts/install-system-packages.sh etcd-server etcd-client python3
build() {  # through the shared tree's build lock when there is one
  if command -v flock >/dev/null; then flock /tmp/distri-build.lock swift build "$@"; else swift build "$@"; fi
}
if [ -n "${DISTRI_BIN_DIR:-}" ]; then
  bin="$DISTRI_BIN_DIR"
else
  build -c release --product distri-bench >/dev/null
  build -c release --product distri-node >/dev/null
  bin="$(swift build -c release --show-bin-path)"
fi
work="$(mktemp -d)"
# shellcheck source=scripts/etcd-cluster.sh
source scripts/etcd-cluster.sh
trap 'stop_etcd; rm -rf "$work"' EXIT

# Sets puts and p99 (ms) of one etcd run on disk.
durable_etcd_run() { etcd_run "$work/etcd"; }

# One Distri run of the bench in $1 (disk or mem): sets ops, p99 (ms) and cpu (the cloud's µs per write).
distri_run() {
  local dir="$1" mode="$2" extra=() line
  if [ "$mode" = disk ]; then
    rm -rf "$work/distri" && mkdir -p "$work/distri"
    extra=(--data-dir "$work/distri")
  fi
  line="$("$dir/distri-bench" db --seconds 4 --warmup 0.5 --modes majority --writes-only "${extra[@]}" | grep '^majority')"
  echo "  $(basename "$dir") $mode: $line" >&2
  read -r ops p99 cpu <<<"$(awk '{ split($9, c, "+"); print $4, $6, c[1] }' <<<"$line")"
}

for round in $(seq 1 "$rounds"); do
  echo "round $round"
  durable_etcd_run
  etcd_puts=$puts etcd_p99=$p99
  distri_run "$bin" disk
  disk=$ops disk_p99=$p99 disk_cpu=$cpu
  distri_run "$bin" mem
  mem=$ops mem_cpu=$cpu
  awk -v o="$disk" -v p="$disk_p99" -v e="$etcd_puts" -v ep="$etcd_p99" -v m="$mem" -v dc="$disk_cpu" -v mc="$mem_cpu" 'BEGIN {
    printf "  on disk: %.2fx the puts/s of etcd on disk, p99 %.3fx of etcd'"'"'s; %.2fx the in-memory writes/s; CPU per write %s µs on disk, %s in memory (%.2fx)\n",
      o / e, p / ep, o / m, dc, mc, dc / mc }'
  if [ -n "$baseline" ]; then
    distri_run "$baseline" disk
    awk -v o="$disk" -v b="$ops" -v e="$etcd_puts" -v bp="$p99" -v ep="$etcd_p99" -v bc="$cpu" -v dc="$disk_cpu" 'BEGIN {
      printf "  baseline on disk: %.2fx etcd'"'"'s puts/s, p99 %.3fx; this build %.2fx the baseline'"'"'s writes/s, CPU per write %.2fx\n",
        b / e, bp / ep, o / b, dc / bc }'
  fi
done
