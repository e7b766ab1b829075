# A 3-member etcd on loopback for the comparison scripts (scripts/compare-etcd.sh,
# scripts/compare-durable-etcd.sh): source it; it defines stop_etcd, free_ports, start_etcd DIR (sets
# client_ports) and etcd_run DIR (sets puts and p99 in ms). The caller traps EXIT to call stop_etcd.
# shellcheck shell=bash
pids=()
stop_etcd() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  pids=()
}

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
