#!/usr/bin/env bash
# Hot-path micro-benchmarks (ordo-one/package-benchmark, Benchmarks/HotPaths), in one command.
#
#   scripts/benchmarks.sh [...]      build in release, run every benchmark once, print its p0-p100 table,
#                                    check the run against the committed p90 thresholds in
#                                    Benchmarks/Thresholds (exit 0: within tolerance); extra arguments go
#                                    to the run, for example `--filter "Wire.*"`
#   scripts/benchmarks.sh update     run and rewrite Benchmarks/Thresholds from this run (commit the result)
#   scripts/benchmarks.sh run [...]  only run and print the p0-p100 tables; extra arguments go to the
#                                    plugin, for example `run --filter "Wire.*"`
#
# The tolerances are in Benchmarks/HotPaths/HotPaths.swift (HotPathThresholds): allocations tight,
# wall-clock loose. See BENCHMARKS.md, "Micro-benchmarks (package-benchmark)".
set -euo pipefail
cd "$(dirname "$0")/.."

thresholds=Benchmarks/Thresholds
mode="${1:-check}"
[[ $# -gt 0 ]] && shift

case "$mode" in
  check)
    # One run, kept as the baseline `current` under .benchmarkBaselines/ (not committed); its p0-p100
    # tables printed, then checked against the committed thresholds without running again.
    swift package --allow-writing-to-package-directory benchmark baseline update current --no-progress "$@"
    swift package benchmark baseline read current --no-progress
    # `swift package` turns the tool's exit codes (2: worse, 4: only better) into 1, so the verdict is
    # read from the tool's last line.
    report="$(mktemp)"
    trap 'rm -f "$report"' EXIT
    status=0
    swift package benchmark thresholds check current --path "$thresholds" --no-progress 2>&1 | tee "$report" \
      || status=$?
    if [[ $status -eq 0 ]]; then
      echo "benchmarks: every hot path is within its thresholds"
    elif grep -q "is BETTER than the defined thresholds" "$report"; then
      echo "benchmarks: within thresholds, and better than them past the tolerance on some metrics" \
        "(lock the gain in with 'scripts/benchmarks.sh update' and commit Benchmarks/Thresholds)"
      status=0
    elif grep -q "is WORSE than the defined thresholds" "$report"; then
      echo "benchmarks: a hot path regressed past its thresholds (see 'Deviations worse than threshold')" >&2
    else
      echo "benchmarks: the threshold check failed (exit $status)" >&2
    fi
    exit "$status"
    ;;
  update)
    swift package --allow-writing-to-package-directory benchmark thresholds update --path "$thresholds" \
      --no-progress "$@"
    ;;
  run)
    swift package benchmark --no-progress "$@"
    ;;
  *)
    echo "usage: $0 [check|update|run [plugin arguments...]]" >&2
    exit 64
    ;;
esac
