#!/usr/bin/env bash
# Runs the original system's experiments over a grid on local clouds (`distri-bench sweep`), then
# draws the charts the original drew with gnuplot (installed from Debian if missing): average response
# time and failed tasks by number of clients, one line per server count, for each test.
# Arguments go to `distri-bench sweep` (e.g. --servers 1,2,3,4,5,6,7 --clients 5,100,500,1000,2500).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-system-packages.sh gnuplot-nox
out="sweep-results"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [ "${args[$i]}" = "--out" ]; then out="${args[$((i + 1))]}"; fi
done
swift build -c release --product distri-node >/dev/null
bin="$(swift build -c release --show-bin-path)"
status=0
"$bin/distri-bench" sweep --out "$out" "$@" || status=$?
csv="$out/sweep.csv"
# One chart per test and measure: x = clients (log scale), one line per server count.
for test in test-client-encrypt test-client-db; do
  grep -q "^$test," "$csv" || continue
  for measure in avg_s failed_tasks; do
    column=$([ "$measure" = avg_s ] && echo 6 || echo 5)
    label=$([ "$measure" = avg_s ] && echo "average response time (s)" || echo "failed tasks")
    png="$out/${test#test-client-}-${measure%_s}.png"
    servers=$(awk -F, -v t="$test" '$1 == t { print $2 }' "$csv" | sort -n -u | tr '\n' ' ')
    plot=""
    for s in $servers; do
      awk -F, -v t="$test" -v s="$s" -v c="$column" '$1 == t && $2 == s { print $3, $c }' "$csv" >"$out/.$test-$s.dat"
      plot="$plot${plot:+, }'$out/.$test-$s.dat' using 1:2 with linespoints title '$s server$([ "$s" = 1 ] || echo s)'"
    done
    gnuplot <<PLOT
set terminal png size 800,500
set output '$png'
set title '$test: $label by number of clients'
set xlabel 'clients'
set ylabel '$label'
set logscale x
set key left top
set grid
plot $plot
PLOT
    echo "drew $png"
  done
done
rm -f "$out"/.*.dat
exit $status
