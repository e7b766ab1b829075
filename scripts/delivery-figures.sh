#!/usr/bin/env bash
# Deliveries at link speed (issue 27): a ~35 MB sealed image sent between two peers' daemons on loopback,
# against a plain TCP copy of the same bytes, in alternated pairs in one window. Prints every pair and the
# ratios min/median/max:
#
#   transfer / copy   the transfer as the sender times it (`distri-peer send --json`: from the recipient's
#                     answer to the empty first call, when the first chunk goes out, to its answer that
#                     the verified file is in place), in bytes/s, over the copy's bytes/s
#   command / copy    the same bytes over the whole `distri-peer send` command's wall time (process start,
#                     cloud calls, reading and hashing the image, the transfer), over the copy's bytes/s
#
# The copy: a Python sender that holds the image's bytes in memory connects to a Python receiver on
# loopback, sends them (1 MiB writes) and waits for the receiver's acknowledgement, sent once it has
# written them all to a file (as a delivery does; neither side syncs). Timed in the sender, connect to
# acknowledgement (no process start).
#
#   scripts/delivery-figures.sh [--pairs 8] [--mb 31] [--no-build] [--bin DIR] [--keep]
#
# --mb: size of the file encrypted (random bytes; the cover is ~1.15x that: 31 MB makes ~35.6 MB).
# Builds the release products first (under /tmp/distri-build.lock) unless --no-build; --bin DIR takes
# distri-node and distri-peer from DIR instead (another build, to compare). A local cloud of
# 3 nodes over TLS (`distri-node local`), peers alice and bob (`distri-peer init`, `serve`), everything
# under a temporary DISTRI_HOME, removed at the end unless --keep.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
pairs=8 mb=31 build=1 keep=0 bin=""
while (($#)); do
  case $1 in
    --pairs) pairs=$2; shift 2 ;;
    --mb) mb=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --bin) bin=$2; build=0; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: $0 [--pairs N] [--mb N] [--no-build] [--bin DIR] [--keep]" >&2; exit 2 ;;
  esac
done
[[ $pairs =~ ^[0-9]+$ && $mb =~ ^[0-9]+$ && $pairs -ge 1 && $mb -ge 1 ]] || { echo "numbers only" >&2; exit 2; }

if ((build)); then
  flock /tmp/distri-build.lock swift build -c release --product distri-node >&2
  flock /tmp/distri-build.lock swift build -c release --product distri-peer >&2
fi
[[ -n $bin ]] || bin="$(swift build -c release --show-bin-path)"

work="$(mktemp -d /tmp/distri-delivery.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if ((keep)); then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
export DISTRI_HOME="$work/home"
unset DISTRI_CLOUD DISTRI_CA DISTRI_PEER_HOME
mkdir -p "$DISTRI_HOME"

# `wait_for FILE PATTERN NAME`: waits (at most 60 s) for PATTERN in FILE.
wait_for() {
  for _ in $(seq 600); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$3 did not start:" >&2
  cat "$1" "${1%.out}.err" >&2 || true
  exit 1
}

"$bin/distri-node" local --nodes 3 >"$work/cloud.out" 2>"$work/cloud.err" &
pids+=("$!")
wait_for "$work/cloud.out" '^cloud: ' "the local cloud"
echo "$(grep '^cloud: ' "$work/cloud.out") (distri-node local --nodes 3, TLS)" >&2

peer() {
  local name="$1"
  shift
  DISTRI_PEER_HOME="$DISTRI_HOME/peers/$name" "$bin/distri-peer" "$@"
}
for name in alice bob; do
  peer "$name" init --name "$name" >/dev/null
  DISTRI_PEER_HOME="$DISTRI_HOME/peers/$name" "$bin/distri-peer" serve --refresh 5 \
    >"$work/$name.out" 2>"$work/$name.err" &
  pids+=("$!")
  wait_for "$work/$name.out" '^reachable: ' "$name's daemon"
  echo "$name: $(grep 'listening on' "$work/$name.out"); $(grep '^reachable: ' "$work/$name.out")" >&2
done

head -c "$((mb * 1000 * 1000))" /dev/urandom >"$work/big.bin"
peer alice encrypt "$work/big.bin" --as big --json >"$work/encrypt.json"
image="$DISTRI_HOME/peers/alice/images/big.png"
bytes=$(stat -c %s "$image")
echo "sealed image: $bytes bytes (distri-peer encrypt of $mb MB of random bytes)" >&2

cat >"$work/copy.py" <<'EOF'
import socket, sys, threading, time

def sink(server, target):
    while True:
        connection, _ = server.accept()
        with connection:
            length = int.from_bytes(connection.recv(8, socket.MSG_WAITALL), "big")
            with open(target, "wb") as out:
                view = memoryview(bytearray(1 << 20))
                left = length
                while left > 0:
                    count = connection.recv_into(view, min(left, len(view)))
                    if count == 0:
                        raise ConnectionError("closed early")
                    out.write(view[:count])
                    left -= count
            connection.sendall(b"k")

data = open(sys.argv[1], "rb").read()
target = sys.argv[2]
rounds = int(sys.argv[3])
server = socket.create_server(("127.0.0.1", 0))
threading.Thread(target=sink, args=(server, target), daemon=True).start()
port = server.getsockname()[1]
for line in sys.stdin:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(len(data).to_bytes(8, "big"))
        view = memoryview(data)
        for offset in range(0, len(data), 1 << 20):
            connection.sendall(view[offset:offset + (1 << 20)])
        if connection.recv(1) != b"k":
            raise ConnectionError("no acknowledgement")
    seconds = time.monotonic() - started
    print(f"{len(data)} {seconds:.6f}", flush=True)
EOF
# The copier runs for the whole window (its process start is not timed): a line on its input starts a copy.
coproc COPY { exec python3 "$work/copy.py" "$image" "$work/copy.out" "$pairs"; }
pids+=("$COPY_PID")
copy() {
  echo go >&"${COPY[1]}"
  read -r copied seconds <&"${COPY[0]}"
  echo "$copied $seconds"
}
copy >/dev/null # warm-up

received="$DISTRI_HOME/peers/bob/received/alice/big.png"
send() {
  rm -f "$received"
  local start end
  start=$(date +%s%N)
  peer alice send big --to bob --views 1 --json >"$work/send.json"
  end=$(date +%s%N)
  python3 - "$work/send.json" "$start" "$end" <<'EOF'
import json, sys
result = json.load(open(sys.argv[1]))
assert result["status"] == "delivered" and result["path"] == "direct", result
transfer = result["transfer"]
print(transfer["bytes"], transfer["seconds"], (int(sys.argv[3]) - int(sys.argv[2])) / 1e9)
EOF
}
send >/dev/null # warm-up

results="$work/pairs.txt"
: >"$results"
printf '%-5s %12s %14s %14s %14s\n' pair 'copy MB/s' 'transfer MB/s' 'command MB/s' 'command s' >&2
for i in $(seq "$pairs"); do
  # Alternated: the copy first in odd pairs, the send first in even ones.
  if ((i % 2)); then
    read -r cb cs < <(copy)
    read -r tb ts ws < <(send)
  else
    read -r tb ts ws < <(send)
    read -r cb cs < <(copy)
  fi
  echo "$i $cb $cs $tb $ts $bytes $ws" >>"$results"
  python3 -c "
import sys
i, cb, cs, tb, ts, wb, ws = sys.argv[1:]
print(f'{i:<5} {float(cb)/float(cs)/1e6:12.1f} {float(tb)/float(ts)/1e6:14.1f} {float(wb)/float(ws)/1e6:14.1f} {float(ws):14.3f}')
" "$i" "$cb" "$cs" "$tb" "$ts" "$bytes" "$ws" >&2
done

python3 - "$results" <<'EOF'
import statistics, sys
rows = [list(map(float, line.split())) for line in open(sys.argv[1])]
transfer = [(tb / ts) / (cb / cs) for _, cb, cs, tb, ts, wb, ws in rows]
command = [(wb / ws) / (cb / cs) for _, cb, cs, tb, ts, wb, ws in rows]
copy = [cb / cs / 1e6 for _, cb, cs, *_ in rows]
def line(name, values):
    return f"{name}: min {min(values):.2f}x  median {statistics.median(values):.2f}x  max {max(values):.2f}x"
print(f"{len(rows)} alternated pairs; copy {min(copy):.0f}-{max(copy):.0f} MB/s (median {statistics.median(copy):.0f})")
print(line("transfer / copy", transfer))
print(line("command / copy ", command))
EOF
