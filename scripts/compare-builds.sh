#!/usr/bin/env bash
# Alternates two builds' small-call throughput: before, after, after, before, ROUNDS times (3 s
# apart, so the previous run's child cloud is gone), and prints after / before for each pair with
# the min, median and max. Each directory holds a release `distri-bench` and `distri-node`.
# Usage: scripts/compare-builds.sh BEFORE_DIR AFTER_DIR [ROUNDS] [CALLS]
set -euo pipefail
before=$1 after=$2 rounds=${3:-4} calls=${4:-300000}
run() {
  sleep 3
  "$1/distri-bench" calls --calls "$calls" --concurrency 50 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["distri"]["callsPerSecond"])'
}
ratios=()
for round in $(seq 1 "$rounds"); do
  b1=$(run "$before"); a1=$(run "$after"); a2=$(run "$after"); b2=$(run "$before")
  echo "round $round: before $b1 $b2, after $a1 $a2"
  ratios+=("$(python3 -c "print($a1/$b1)")" "$(python3 -c "print($a2/$b2)")")
done
printf '%s\n' "${ratios[@]}" | python3 -c '
import statistics, sys
r = sorted(float(x) for x in sys.stdin)
print("after / before throughput: " + ", ".join(f"{x:.3f}" for x in r))
print(f"min {r[0]:.3f}, median {statistics.median(r):.3f}, max {r[-1]:.3f}")'
