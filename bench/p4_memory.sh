#!/usr/bin/env bash
# P4 (PERFORMANCE.md): memory per open session, native and Adobe sessions.
#
# Usage: bench/p4_memory.sh [STEPS] [TIME_LIMIT_S]
#   defaults: STEPS="10000 100000 250000 500000 1000000", TIME_LIMIT_S=600.
#
# For each protocol (native, then Adobe Media Collection) a fresh
# `playhead serve` (release, zero-config, fsync always) runs on CPU 0.
# `open-sessions` (bench/tools, 64 connections, CPU 1) first opens 1,000
# warm-up sessions (the runtime, the connections and SQLite's caches reach
# their working size), then RSS_0 is read from /proc/PID/status (VmRSS).
# Then it opens sessions up to each step N (one request each: a native batch
# of one `viewinit` with the SDK's session metadata, or an Adobe
# `sessionStart`; 500 videos, a viewer each, eight user agents in turn),
# waits 2 s, checks `playhead_open_sessions` on /metrics,
# and reads RSS_N. Memory per open session = (RSS_N - RSS_0) / N.
# Sessions close after 10 min without events, so a protocol's steps stop
# when TIME_LIMIT_S have passed since its first session (the table says
# which N was reached).
#
# P4_BIN=PATH runs another Playhead binary (one built before a change);
# P4_PROTOCOLS="adobe" (or "native") runs one protocol only.
#
# Prints a table and writes it to bench/out/p4.md. Asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
STEPS=${1:-"10000 100000 250000 500000 1000000"}
LIMIT=${2:-600}
OUT=bench/out
mkdir -p "$OUT"
command -v taskset >/dev/null || { echo "taskset (util-linux) is required" >&2; exit 1; }
cargo build --release -q -p playhead -p playhead-bench
BIN=${P4_BIN:-target/release/playhead}
OPEN=target/release/open-sessions
WARMUP=1000

open_gauge() {
  curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^playhead_open_sessions / {print $2}'
}

rows=()
for proto in ${P4_PROTOCOLS:-native adobe}; do
  new_tmp
  dir=$TMP_DIR
  serve_playhead "$BIN" "$dir/data" "$dir/server"
  open_args=(--target "127.0.0.1:$PORT" --protocol "$proto" --ingest-key "$BENCH_INGEST_KEY")
  started=$(date +%s)
  taskset -c 1 "$OPEN" "${open_args[@]}" --count "$WARMUP" --first 0 >&2
  sleep 2
  rss0=$(rss_kib "$SERVER")
  rows+=("| $proto | 0 (after $WARMUP warm-up sessions) | $(open_gauge) | $rss0 | | | |")
  echo "$proto: RSS_0 $rss0 KiB" >&2
  done_n=0
  for n in $STEPS; do
    if (( $(date +%s) - started > LIMIT )); then
      echo "$proto: time limit ($LIMIT s) reached before N = $n" >&2
      rows+=("| $proto | $n | not reached: $LIMIT s limit | | | | |")
      break
    fi
    t0=$(date +%s.%N)
    line=$(taskset -c 1 "$OPEN" "${open_args[@]}" --count $((n - done_n)) --first $((WARMUP + done_n)))
    echo "$proto: $line" >&2
    rate=$(echo "$line" | awk '{print $(NF-2)}')
    done_n=$n
    sleep 2
    rss=$(rss_kib "$SERVER")
    open=$(open_gauge)
    per=$(awk -v a="$rss" -v b="$rss0" -v n="$n" 'BEGIN {printf "%.0f", (a - b) * 1024 / n}')
    db=$(du -sm "$dir/data" | cut -f1)
    elapsed=$(( $(date +%s) - started ))
    rows+=("| $proto | $n | $open | $rss | **$per** | $rate | $elapsed s, store $db MB |")
    echo "$proto N=$n: open $open, RSS $rss KiB, $per B/session, ${elapsed}s" >&2
  done
  stop_bg "$SERVER"
  rm -rf "$dir/data"
done
{
  echo "| protocol | open sessions N (opened) | playhead_open_sessions | RSS KiB | (RSS_N − RSS_0) / N, bytes | opening rate | elapsed, store size |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Target: ≤ 1024 bytes per open session at 1,000,000 open sessions."
  echo
  echo "Command: \`bench/p4_memory.sh \"$STEPS\" $LIMIT\`; $(machine_line)"
} | tee "$OUT/p4.md"
