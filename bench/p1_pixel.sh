#!/usr/bin/env bash
# P1 (PERFORMANCE.md): pixel beacons/s on Playhead. `wrk` sends
# `GET /icon.gif?type=check&...` (plus the view/play beacons that open the
# sessions, see bench/pixel_check.lua) over 64 keep-alive connections.
# Playhead only: the side-by-side run against nginx, which gives P1's ratio,
# is not part of this script yet.
#
# Usage: bench/p1_pixel.sh [ROUNDS] [SECONDS] [AUDIENCE]
#   defaults: 5 rounds of 20 s, AUDIENCE=auto: the sessions already watching
#   when a round starts are 6 x the requests/s of a 5-s warm-up round (not
#   counted), so every session's checks come about 6 s apart, as a real
#   player's every 5 s of playing do.
# Each round starts `playhead serve` zero-config (fresh data dir, embedded
# store, fsync always) pinned to CPU 0, and runs wrk (1 thread, 64
# connections) pinned to CPU 1. Prints a table of requests/s per round, the
# median and the non-2xx answers, and writes it to bench/out/p1.md; raw wrk
# outputs go to bench/out/p1-*.txt. Not a test: it asserts nothing.
# Needs wrk: installed with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
SECS=${2:-20}
AUDIENCE=${3:-auto}
ARGS="$ROUNDS $SECS $AUDIENCE"
CONNECTIONS=64
OUT=bench/out
mkdir -p "$OUT"
command -v taskset >/dev/null || { echo "taskset (util-linux) is required" >&2; exit 1; }
if ! command -v wrk >/dev/null; then
  echo "wrk is missing: installing it with apt-get" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
  $SUDO apt-get update
  $SUDO apt-get install -y wrk
fi
cargo build --release -q -p playhead
BIN=target/release/playhead

SERVER_PID=""
ROUND_DIR=""
cleanup() {
  if [[ -n $SERVER_PID ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
  if [[ -n $ROUND_DIR ]]; then
    rm -rf "$ROUND_DIR"
    ROUND_DIR=""
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# One round against a fresh server: $1 = label, $2 = seconds, $3 = audience.
# Sets RPS, P50, P99, NON2XX, SOCKET_ERRORS, MIX.
run_round() {
  local round=$1 secs=$2 audience=$3 port raw
  port=$(free_port)
  ROUND_DIR=$(mktemp -d)
  PLAYHEAD_FSYNC=always RUST_LOG=warn \
    taskset -c 0 "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$ROUND_DIR/data" \
    > "$ROUND_DIR/stdout" 2> "$ROUND_DIR/stderr" &
  SERVER_PID=$!
  for _ in $(seq 100); do grep -q '^listening on' "$ROUND_DIR/stdout" 2>/dev/null && break; sleep 0.1; done
  if ! grep -q '^listening on' "$ROUND_DIR/stdout"; then
    echo "playhead did not start:" >&2
    cat "$ROUND_DIR/stderr" >&2
    exit 1
  fi
  raw="$OUT/p1-round$round-$(date +%s).txt"
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${secs}s" --latency \
    -s bench/pixel_check.lua "http://127.0.0.1:$port" -- "$audience" > "$raw"
  cleanup
  RPS=$(awk '/^Requests\/sec:/ {print $2}' "$raw")
  P50=$(awk '$1 == "50%" {print $2}' "$raw")
  P99=$(awk '$1 == "99%" {print $2}' "$raw")
  NON2XX=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$raw")
  NON2XX=${NON2XX:-0}
  SOCKET_ERRORS=$(awk -F': ' '/Socket errors:/ {print $2}' "$raw")
  SOCKET_ERRORS=${SOCKET_ERRORS:-none}
  MIX=$(grep '^beacons:' "$raw" || true)
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

if [[ $AUDIENCE == auto ]]; then
  run_round warmup 5 10000
  AUDIENCE=$(awk -v r="$RPS" 'BEGIN {a = int(6 * r); print (a < 1000 ? 1000 : a)}')
  echo "warm-up: $RPS requests/s, so an audience of $AUDIENCE sessions" >&2
fi

rows=(); rates=()
for r in $(seq "$ROUNDS"); do
  run_round "$r" "$SECS" "$AUDIENCE"
  rates+=("$RPS")
  rows+=("| $r | $RPS | $P50 | $P99 | $NON2XX | $SOCKET_ERRORS |")
  echo "round $r: $RPS requests/s, non-2xx $NON2XX, socket errors $SOCKET_ERRORS" >&2
done
med=$(printf '%s\n' "${rates[@]}" | median)
{
  echo "| round | requests/s | latency p50 | latency p99 | non-2xx answers | socket errors |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo "| **median** | **$med** | | | | |"
  echo
  echo "Playhead \`serve\` (zero-config, fresh data dir, fsync always) on CPU 0; wrk -t1 -c$CONNECTIONS keep-alive with bench/pixel_check.lua on CPU 1, an audience of $AUDIENCE sessions watching at the start of each round. No nginx reference in this run."
  echo "Last round's mix: ${MIX:-not reported}"
  echo
  echo "Command: \`bench/p1_pixel.sh $ARGS\`, commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates Cargo.lock || echo ' with uncommitted changes'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2 || true)"
} | tee "$OUT/p1.md"
