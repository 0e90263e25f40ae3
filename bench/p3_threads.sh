#!/usr/bin/env bash
# Where the server's time goes at a paced Adobe load (P3's conditions):
# each thread's CPU seconds over the run (from /proc), the latency `paced`
# measured, and the change of the commit, group-size and fsync histograms
# of /metrics.
#
# Usage: bench/p3_threads.sh [RATE] [SECONDS] [SESSIONS] [BINARY]
#   defaults: 7000 events/s for 15 s (after 3 s of warm-up) over 20,000
#   open Adobe sessions. Server on CPU 0, generator on CPU 1.
#   BINARY: another Playhead binary to run (one built before a change);
#   default target/release/playhead, built first. `bare` runs the P2/P3
#   reference (bench/bare, which answers any sid) at the same rate instead,
#   on made-up sids: what the same load costs the bare stack.
# Prints to stdout and asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
RATE=${1:-7000}
SECS=${2:-15}
SESSIONS=${3:-20000}
BIN=${4:-target/release/playhead}
cargo build --release -q -p playhead -p playhead-bench -p playhead-bench-bare
new_tmp
dir=$TMP_DIR
if [ "$BIN" = bare ]; then
  BIN=target/release/bare-handler
  PORT=$(free_port)
  start_bg taskset -c 0 "$BIN" "127.0.0.1:$PORT" > "$dir/server.out" 2> "$dir/server.err"
  SERVER=$BG_PID
  wait_listening "$dir/server.out"
  for i in $(seq "$SESSIONS"); do printf '%064x\n' "$i"; done > "$dir/sids.txt"
  histograms() { :; }
else
  serve_playhead "$BIN" "$dir/data" "$dir/server"
  taskset -c 1 target/release/open-sessions --target "127.0.0.1:$PORT" --protocol adobe \
    --count "$SESSIONS" --sids-out "$dir/sids.txt" > /dev/null 2>&1
  histograms() {
    curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^playhead_(fsync_seconds|commit_seconds|commit_group_size)_(bucket|sum|count)'
  }
fi
# Per thread name: user and system ticks, voluntary and involuntary context switches.
threads() {
  local t
  for t in /proc/"$SERVER"/task/*; do
    echo "$(tr ' ' _ < "$t/comm") $(awk '{print $14, $15}' "$t/stat")" \
      "$(awk '/^voluntary_ctxt_switches/ {v = $2} /^nonvoluntary_ctxt_switches/ {n = $2} END {print v, n}' "$t/status")"
  done | awk '{u[$1] += $2; s[$1] += $3; v[$1] += $4; n[$1] += $5}
    END {for (k in u) print k, u[k], s[k], v[k], n[k]}' | sort
}
histograms > "$dir/m0"
threads > "$dir/t0"
taskset -c 1 target/release/paced --target "127.0.0.1:$PORT" --sids "$dir/sids.txt" --rate "$RATE" \
  --duration "$SECS" --warmup 3 --connections 64
threads > "$dir/t1"
histograms > "$dir/m1"
echo "CPU seconds by thread over the run (warm-up included):"
join "$dir/t0" "$dir/t1" | awk -v hz="$CLK_TCK" '{u = ($6 - $2) / hz; s = ($7 - $3) / hz
  printf "  %-20s %.2f s (user %.2f s, system %.2f s), context switches: %d voluntary, %d involuntary\n",
    $1, u + s, u, s, $8 - $4, $9 - $5}'
echo "Histograms (change over the run):"
paste -d' ' "$dir/m0" "$dir/m1" | awk '{printf "  %s %g\n", $1, $4 - $2}'
stop_bg "$SERVER"
echo "Command: \`bench/p3_threads.sh $RATE $SECS $SESSIONS\` on $BIN; $(machine_line)"
