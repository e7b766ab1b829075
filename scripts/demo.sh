#!/usr/bin/env bash
# The README's main job, on the embedded default (no flags): a tour of a local cloud (`distri-bench
# demo`), then the peer story with the real tools: three `distri-node run` processes and peers alice,
# bob and carol using `distri-peer`. Every command is printed before it runs. Exits non-zero when a
# step does not do what it says. Stops only the processes it started, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-system-packages.sh
echo "== building (release) =="
if ! swift build -c release >/tmp/distri-demo-build.log 2>&1; then
  cat /tmp/distri-demo-build.log >&2
  exit 1
fi
tail -1 /tmp/distri-demo-build.log
bin="$(swift build -c release --show-bin-path)"
sample="$PWD/sample-images/rgb8.png"

"$bin/distri-bench" demo

work="$(mktemp -d /tmp/distri-demo.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

step=0
step() {
  step=$((step + 1))
  printf '\n== peer story %d. %s ==\n' "$step" "$1"
}

# Starts a background process writing to $work/NAME.out; waits (at most 30 s) for "listening on
# ADDR" and sets $address.
start() {
  local name="$1"
  shift
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=("$!")
  for _ in $(seq 300); do
    address="$(sed -n 's/.*listening on \([0-9.]*:[0-9]*\).*/\1/p' "$work/$name.out" | head -1)"
    [ -n "$address" ] && return 0
    sleep 0.1
  done
  echo "$name did not start:" >&2
  cat "$work/$name.err" >&2
  exit 1
}

# `run_as NAME ARGS...`: prints the command, runs it as peer NAME, fails the demo if it fails.
run_as() {
  local name="$1"
  shift
  echo "[$name] \$ distri-peer $*"
  DISTRI_PEER_HOME="$work/peers/$name" "$bin/distri-peer" "$@"
}

# `refused NAME ARGS...`: the same, for a command that must fail; prints its error.
refused() {
  local name="$1"
  shift
  echo "[$name] \$ distri-peer $*"
  if DISTRI_PEER_HOME="$work/peers/$name" "$bin/distri-peer" "$@" 2>"$work/refused.err"; then
    echo "expected a refusal, but it succeeded" >&2
    exit 1
  fi
  echo "refused (exit code non-zero): $(cat "$work/refused.err")"
}

step "A cluster CA and a certificate for each node (the node's id is its certificate's name)"
certs="$work/certs"
echo "\$ distri-node certs init --dir $certs"
"$bin/distri-node" certs init --dir "$certs" >/dev/null
for n in 1 2 3; do
  echo "\$ distri-node certs node --name node-$n --dir $certs"
  "$bin/distri-node" certs node --name "node-$n" --dir "$certs" >/dev/null
done
ls "$certs"
export DISTRI_CA="$certs/ca.pem"
echo "clients and peers trust $DISTRI_CA (DISTRI_CA)"

step "Three cloud nodes, each its own process, over mutual TLS, sharing the cloud's deposit key"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/deposit.key"
chmod 600 "$work/deposit.key"
tls() { echo --ca "$certs/ca.pem" --cert "$certs/$1.pem" --key "$certs/$1.key"; }
start node-1 "$bin/distri-node" run --listen 127.0.0.1:0 $(tls node-1) --deposit-key-file "$work/deposit.key"
seed="$address"
cloud="$seed"
for n in 2 3; do
  start "node-$n" "$bin/distri-node" run --listen 127.0.0.1:0 $(tls "node-$n") --seeds "$seed" \
    --deposit-key-file "$work/deposit.key"
  cloud="$cloud,$address"
  if [ "$n" = 2 ]; then node2_pid="${pids[-1]}"; else live="$seed,$address"; fi
done
export DISTRI_CLOUD="$cloud"
echo "cloud: $cloud (DISTRI_CLOUD)"

step "Alice, bob and carol make their key pairs and start their daemons; dave is behind a NAT"
mkdir -p "$work/peers"
for name in alice bob carol dave; do
  run_as "$name" init --name "$name"
  # Dave advertises an address nobody can dial (port 1: nothing listens), as a laptop behind a home
  # router does: the cloud's reachability check finds it unreachable, so others reach him through
  # the relay link his daemon keeps to a cloud node.
  extra=()
  if [ "$name" = dave ]; then extra=(--advertise 127.0.0.1:1); fi
  start "$name" env DISTRI_PEER_HOME="$work/peers/$name" "$bin/distri-peer" serve --refresh 1 "${extra[@]}"
  if [ "$name" = bob ]; then bob_pid="${pids[-1]}"; fi
  if [ "$name" = alice ]; then alice_pid="${pids[-1]}"; fi
  echo "$name's daemon listens on $address; $(grep reachable "$work/$name.out" || echo 'reachable: (checking)')"
done
sleep 1.5
run_as alice list peers --refresh 1

step "Alice encrypts an image on an elected cloud node; her front end verifies it"
run_as alice encrypt "$sample"

step "Alice sends it straight to bob with 2 views"
run_as alice send rgb8 --to bob --views 2
run_as bob inbox

step "Bob views it twice (one cloud node is killed in between); the third view is refused"
run_as bob view rgb8 --from alice --out "$work/first.png"
cmp "$work/first.png" "$sample" && echo "byte-exact: the original image"
echo "\$ kill -9 node-2 (pid $node2_pid)"
{ kill -9 "$node2_pid" && wait "$node2_pid"; } 2>/dev/null || true
run_as bob view rgb8 --from alice --out "$work/second.png"
cmp "$work/second.png" "$sample" && echo "byte-exact again, with one node of three gone"
refused bob view rgb8 --from alice

step "Carol copies what bob received: she cannot open it"
run_as alice send rgb8 --to bob --views 1
mkdir -p "$work/peers/carol/received/alice"
cp "$work/peers/bob/received/alice/rgb8.png" "$work/peers/carol/received/alice/"
refused carol view rgb8 --from alice

step "A node with a certificate from another CA cannot join"
"$bin/distri-node" certs init --dir "$work/other" >/dev/null
"$bin/distri-node" certs node --name intruder --dir "$work/other" >/dev/null
echo "\$ distri-node run --ca other/ca.pem --cert other/intruder.pem --key other/intruder.key --seeds $seed"
start intruder "$bin/distri-node" run --listen 127.0.0.1:0 --ca "$work/other/ca.pem" \
  --cert "$work/other/intruder.pem" --key "$work/other/intruder.key" --seeds "$seed"
sleep 2
if "$bin/distri-node" members --cloud "$seed" | grep -q intruder; then
  echo "the intruder joined" >&2
  exit 1
fi
"$bin/distri-node" members --cloud "$seed"

step "Carol cannot write herself a grant through the plain DB"
echo "\$ distri-node db add permissions '{\"owner\":\"alice\",\"recipient\":\"carol\",\"views\":99}' --cloud \$DISTRI_CLOUD"
if "$bin/distri-node" db add permissions '{"owner":"alice","recipient":"carol","views":99}' --cloud "$cloud" \
  2>"$work/db.err"; then
  echo "the DB accepted a forged grant" >&2
  exit 1
fi
echo "refused: $(cat "$work/db.err")"

step "Alice revokes bob's views, then grants again"
run_as alice permissions rgb8 --to bob --views 0
refused bob view rgb8 --from alice
run_as alice send rgb8 --to bob --views 1
run_as bob view rgb8 --from alice --out "$work/again.png"

step "Dave is behind a NAT: alice's send goes through the cloud's relay, and dave views it"
run_as alice send rgb8 --to dave --views 1
run_as dave view rgb8 --from alice --out "$work/dave.png"
cmp "$sample" "$work/dave.png" && echo "dave's view is byte-exact"

step "Bob goes offline; alice's send waits in the cloud's mailbox; alice leaves; bob comes back and collects it"
echo "\$ stop bob's daemon (pid $bob_pid)"
kill "$bob_pid"
wait "$bob_pid" 2>/dev/null || true
run_as alice encrypt "$PWD/sample-images/rgba8.png"
run_as alice send rgba8 --to bob --views 1
run_as alice outbox
echo "\$ stop alice's daemon (pid $alice_pid): she need not stay online"
kill "$alice_pid"
wait "$alice_pid" 2>/dev/null || true
start bob-again env DISTRI_PEER_HOME="$work/peers/bob" "$bin/distri-peer" serve --refresh 1
echo "bob's daemon is back on $address"
for _ in $(seq 60); do
  [ -f "$work/peers/bob/received/alice/rgba8.png" ] && break
  sleep 0.5
done
run_as bob view rgba8 --from alice --out "$work/mailbox.png"
cmp "$PWD/sample-images/rgba8.png" "$work/mailbox.png" && echo "bob's view of the mailbox delivery is byte-exact"
start alice-again env DISTRI_PEER_HOME="$work/peers/alice" "$bin/distri-peer" serve --refresh 1

step "Requests: carol asks and is turned down; bob asks and is granted"
run_as carol request rgb8 --from alice --views 2
run_as bob request rgb8 --from alice --views 3
run_as alice inbox
run_as alice reject rgb8 --to carol
run_as alice grant rgb8 --to bob
run_as carol inbox
run_as bob view rgb8 --from alice --show --columns 64

step "The two nodes left: their stats (relay links and relayed bytes among them)"
"$bin/distri-node" stats --cloud "$live"
printf '\nThe peer story ran to the end.\n'
