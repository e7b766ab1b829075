#!/usr/bin/env bash
# Delivery figures across NAT gateways on namespaced test hosts (root or CAP_NET_ADMIN): bytes/s of a
# delivery sent directly and through the cloud's relay, each against a plain TCP copy of the same bytes
# over the same links (netprobe.py), alternated in rounds. Prints the figures and ratios.
#
#   scripts/nat-figures.sh [--mb 30] [--mbit 100] [--rounds 3]
#
# --mbit limits every link to that rate each way (0: as fast as the delaying relay goes). Builds the
# debug products first (the figures are of the debug build, as the tests run it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mb=30 mbit=100 rounds=3
while (($#)); do
  case $1 in
    --mb) mb=$2; shift 2 ;;
    --mbit) mbit=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "usage: $0 [--mb N] [--mbit N] [--rounds N]" >&2; exit 2 ;;
  esac
done
[[ $mb =~ ^[0-9]+$ && $mbit =~ ^[0-9]+$ && $rounds =~ ^[0-9]+$ ]] || { echo "numbers only" >&2; exit 2; }
bash scripts/testnet.sh check
swift build --build-tests
DISTRI_NAT_FIGURES=1 DISTRI_NAT_MB="$mb" DISTRI_NAT_MBIT="$mbit" DISTRI_NAT_ROUNDS="$rounds" \
  swift test --skip-build --no-parallel --filter 'NATProcessTests/deliveryFigures' 2>&1 |
  grep -E '^(NAT delivery|  )|✘|error'
