#!/usr/bin/env bash
# Builds and runs the hot-path micro-benchmarks in release mode, with the malloc interposer preloaded.
set -euo pipefail
cd "$(dirname "$0")"
swift build -c release --product hotpaths
bin="$(swift build -c release --show-bin-path)"
LD_PRELOAD="$bin/libMallocInterposerSwift.so" "$bin/hotpaths"
