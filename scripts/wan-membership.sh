#!/usr/bin/env bash
# The membership soak on namespaced hosts (README "Test hosts"): 5 cloud nodes on 5 hosts 100 ms apart
# (25 ms one way on each link, +-5 ms jitter each: 100 ms round trip +-20 ms), 1% loss on each link
# (2% on a path), for MINUTES (default 10); every 5 s it asks every node for its membership and counts
# any member declared dead. Then it kills one node with SIGKILL and reports how long until every other
# node declared it dead (polled, and each node's own detection time). Needs root (or CAP_NET_ADMIN),
# nftables and python3; builds distri-node in debug mode if needed.
#
#   scripts/wan-membership.sh [MINUTES]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
[[ $minutes =~ ^[0-9]+$ ]] && ((minutes >= 1 && minutes <= 120)) || { echo "MINUTES: 1 to 120" >&2; exit 2; }
scripts/testnet.sh check
[ -x .build/debug/distri-node ] || swift build --product distri-node
node=$PWD/.build/debug/distri-node
run="soak$$"
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  scripts/testnet.sh down "$run" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

"$node" certs init --dir "$work/certs" >/dev/null
scripts/testnet.sh init "$run" --owner $$ >/dev/null
addresses=()
for i in 1 2 3 4 5; do
  addresses+=("$(scripts/testnet.sh host "$run" "m$i" --delay 25 --jitter 5 --loss 1)")
  "$node" certs node --name "node-$i" --dir "$work/certs" >/dev/null
done
for i in 1 2 3 4 5; do
  seeds=()
  ((i > 1)) && seeds=(--seeds "${addresses[0]}:7000")
  scripts/testnet.sh exec "$run" "m$i" "$node" run --listen 0.0.0.0:7000 --id "node-$i" "${seeds[@]}" \
    --ca "$work/certs/ca.pem" --cert "$work/certs/node-$i.pem" --key "$work/certs/node-$i.key" \
    --log-level warning >"$work/node-$i.log" 2>&1 &
  pids+=($!)
  disown $!
done
cloud=$(printf '%s:7000,' "${addresses[@]}"); cloud=${cloud%,}
members() {
  scripts/testnet.sh exec "$run" m1 "$node" members --cloud "$1" --ca "$work/certs/ca.pem" --json 2>/dev/null || true
}
count() { # count STATUS MEMBER? in the JSON on stdin
  python3 -c 'import json,sys
views=json.load(sys.stdin) if sys.stdin.readable() else []
status, member = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
print(sum(1 for v in views for m in (v.get("members") or []) if m["status"] == status and (member is None or m["id"] == member)))' "$@" 2>/dev/null || echo 0
}
echo "waiting for the cloud to form across the hosts ($cloud)"
for _ in $(seq 1 120); do
  [ "$(members "$cloud" | count alive)" = 25 ] && break
  sleep 1
done
[ "$(members "$cloud" | count alive)" = 25 ] || { echo "the cloud did not form" >&2; exit 1; }
echo "formed; soaking for $minutes minute(s): 100 ms RTT, 20 ms jitter, 2% loss"
deaths=0
checks=0
end=$((SECONDS + minutes * 60))
while ((SECONDS < end)); do
  dead=$(members "$cloud" | count dead)
  suspect=$(members "$cloud" | count suspect)
  checks=$((checks + 1))
  deaths=$((deaths + dead))
  ((dead > 0)) && echo "  $(date +%T): $dead member(s) seen dead"
  ((checks % 12 == 0)) && echo "  $(date +%T): $checks checks, false deaths so far: $deaths (suspect now: $suspect)"
  sleep 5
done
echo "soak: $checks checks over $minutes minute(s), $deaths false death(s)"
kill -9 "${pids[4]}"
killed=$(date +%s.%N)
others=$(printf '%s:7000,' "${addresses[@]:0:4}"); others=${others%,}
for _ in $(seq 1 240); do
  [ "$(members "$others" | count dead node-5)" = 4 ] && break
  sleep 0.25
done
elapsed=$(python3 -c "import time; print(f'{time.time() - $killed:.1f}')")
detections=$(members "$others" | python3 -c 'import json,sys
print(sorted(m.get("detectionMillis") for v in json.load(sys.stdin) for m in (v.get("members") or []) if m["id"] == "node-5"))')
echo "node-5 killed -9: dead at all 4 others within ${elapsed} s (polled); each node's detection time (ms): $detections"
((deaths == 0))
