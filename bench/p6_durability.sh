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
KEY=bench-ingest-key
READ=bench-read-key-0123456789abcdef

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_round() { # $1 = always|off ; prints events/s
  local fsync=$1 port dir pid line eps
  port=$(free_port)
  dir=$(mktemp -d)
  PLAYHEAD_FSYNC=$fsync PLAYHEAD_INGEST_KEY=$KEY PLAYHEAD_READ_KEY=$READ RUST_LOG=warn \
    taskset -c 0 "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$dir" > "$dir/stdout" 2> "$dir/stderr" &
  pid=$!
  for _ in $(seq 100); do grep -q '^listening on' "$dir/stdout" 2>/dev/null && break; sleep 0.1; done
  taskset -c 1 "$BIN" load --target "http://127.0.0.1:$port" --protocol native \
    --viewers "$VIEWERS" --duration "$SECS" --speed "$SPEED" --ingest-key "$KEY" > "$dir/load.txt"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  eps=$(awk '/^events/ {print $3}' "$dir/load.txt" | tr -d '/s')
  cp "$dir/load.txt" "$OUT/p6-$fsync-$(date +%s).txt"
  rm -rf "$dir"
  echo "$eps"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

on=(); off=()
for r in $(seq "$ROUNDS"); do
  on+=("$(run_round always)")
  off+=("$(run_round off)")
  echo "round $r: fsync=always ${on[-1]} events/s, fsync=off ${off[-1]} events/s" >&2
done
m_on=$(printf '%s\n' "${on[@]}" | median)
m_off=$(printf '%s\n' "${off[@]}" | median)
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
