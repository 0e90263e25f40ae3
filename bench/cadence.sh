#!/usr/bin/env bash
# Server CPU per event at a protocol's real cadence (not a throughput run):
# `playhead load` simulates VIEWERS viewers sending at their player's real
# rate (`--speed 1`: Adobe pings every 10 s, pixel checks every 5 s, ...),
# and the server's CPU time over the run is divided by the events sent.
# Two binaries (before and after a change) in alternating rounds, each
# server on CPU 0 with a fresh zero-config data dir (fsync always), the
# generator on CPU 1.
#
# Usage: bench/cadence.sh OLD_BIN NEW_BIN [PROTOCOL] [VIEWERS] [SECONDS] [ROUNDS]
#   defaults: media_collection, 20000 viewers, 45 s, 2 rounds.
# Prints events/s, server CPU and µs of server CPU per event per round.
# Not a test: it asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
OLD=${1:?usage: bench/cadence.sh OLD_BIN NEW_BIN [PROTOCOL] [VIEWERS] [SECONDS] [ROUNDS]}
NEW=${2:?new binary}
PROTOCOL=${3:-media_collection}
VIEWERS=${4:-20000}
SECS=${5:-45}
ROUNDS=${6:-2}
cargo build --release -q -p playhead
LOAD=target/release/playhead
echo "cadence: $(machine_line)"
echo "$PROTOCOL, $VIEWERS viewers at real cadence (--speed 1), $SECS s a round"
echo "| round | binary | events/s | server CPU | µs of server CPU per event |"
echo "|---|---|---|---|---|"

round() {
  local bin=$1 r=$2 c0 c1 t0 t1 events
  new_tmp
  serve_playhead "$bin" "$TMP_DIR/data" "$TMP_DIR/server"
  c0=$(cpu_ticks "$SERVER"); t0=$(date +%s.%N)
  taskset -c 1 "$LOAD" load --target "http://127.0.0.1:$PORT" --protocol "$PROTOCOL" \
    --viewers "$VIEWERS" --duration "$SECS" --speed 1 --ingest-key "$BENCH_INGEST_KEY" \
    --admin-key "$BENCH_ADMIN_KEY" > "$TMP_DIR/load.txt"
  c1=$(cpu_ticks "$SERVER"); t1=$(date +%s.%N)
  stop_bg "$SERVER"
  events=$(awk '/^events/ {print $2}' "$TMP_DIR/load.txt")
  awk -v r="$r" -v b="$bin" -v n="$events" -v c="$((c1 - c0))" -v hz="$CLK_TCK" -v a="$t0" -v z="$t1" \
    'BEGIN {printf "| %s | %s | %.0f | %.0f %% | %.1f |\n", r, b, n / (z - a), 100 * c / hz / (z - a), 1e6 * c / hz / n}'
}

# In two runs of three the first round delivered a tenth of the events or
# less, whichever binary ran it (both runs came right after other heavy
# runs; not understood), so one round with NEW comes first, shown but left
# out of the comparison.
round "$NEW" "warm-up"
for r in $(seq "$ROUNDS"); do
  round "$OLD" "$r"
  round "$NEW" "$r"
done
