#!/usr/bin/env bash
# P6 (PERFORMANCE.md): the cost of durability. Playhead with fsync group
# commit (`fsync = "always"`, the default) against Playhead with fsync off,
# same load from `playhead load` (native protocol), alternating rounds.
#
# Usage: bench/p6_durability.sh [ROUNDS] [SECONDS] [VIEWERS] [SPEED]
#   defaults: 5 rounds of 20 s, 2000 viewers at 100x their real cadence.
# The server is pinned to CPU 0 and the load generator to CPU 1 (taskset).
# Prints a table of events/s per round, the medians and the ratio, and
# writes it to bench/out/p6.md. Not a test: it asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
SECS=${2:-20}
VIEWERS=${3:-2000}
SPEED=${4:-100}
OUT=bench/out
mkdir -p "$OUT"
command -v taskset >/dev/null || { echo "taskset (util-linux) is required" >&2; exit 1; }
cargo build --release -q -p playhead
BIN=target/release/playhead
source bench/lib.sh

run_round() { # $1 = always|off ; prints events/s
  local fsync=$1 dir eps
  dir=$(mktemp -d)
  PLAYHEAD_FSYNC=$fsync serve_playhead "$BIN" "$dir/data" "$dir/server" >&2
  taskset -c 1 "$BIN" load --target "http://127.0.0.1:$PORT" --protocol native \
    --viewers "$VIEWERS" --duration "$SECS" --speed "$SPEED" --ingest-key "$BENCH_INGEST_KEY" > "$dir/load.txt"
  stop_bg "$SERVER"
  eps=$(awk '/^events/ {print $3}' "$dir/load.txt" | tr -d '/s')
  cp "$dir/load.txt" "$OUT/p6-$fsync-$(date +%s).txt"
  rm -rf "$dir"
  echo "$eps"
}

on=(); off=()
for r in $(seq "$ROUNDS"); do
  on+=("$(run_round always)")
  off+=("$(run_round off)")
  echo "round $r: fsync=always ${on[-1]} events/s, fsync=off ${off[-1]} events/s" >&2
done
m_on=$(median_of on)
m_off=$(median_of off)
ratio=$(awk -v a="$m_on" -v b="$m_off" 'BEGIN {printf "%.2f", a/b}')
{
  echo "| round | fsync always (events/s) | fsync off (events/s) |"
  echo "|---|---|---|"
  for i in "${!on[@]}"; do echo "| $((i+1)) | ${on[$i]} | ${off[$i]} |"; done
  echo "| **median** | **$m_on** | **$m_off** |"
  echo
  echo "P6 ratio (always / off): **$ratio** (target ≥ 0.8)"
  echo
  echo "Command: \`bench/p6_durability.sh $ROUNDS $SECS $VIEWERS $SPEED\`, commit $(git rev-parse --short HEAD), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
} | tee "$OUT/p6.md"
