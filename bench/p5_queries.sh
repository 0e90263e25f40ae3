#!/usr/bin/env bash
# P5 (PERFORMANCE.md): the dashboard's questions over 30 days of sessions,
# Playhead's embedded store against plain SQL GROUP BY on a raw table.
#
# Usage: bench/p5_queries.sh [SESSIONS] [ROUNDS] [DATA_DIR]
#   defaults: 10000000 sessions, 5 rounds, DATA_DIR=bench/out/p5-data-SESSIONS.
#
# 1. `p5 build` (bench/tools/src/bin/p5.rs) writes SESSIONS closed sessions
#    spread over 30 days into DATA_DIR/store through Playhead's own store
#    writer (`put_session` + `add_to_rollup`, the files `playhead serve`
#    reads) and the same sessions into DATA_DIR/raw.sqlite (a plain
#    `sessions` table). Skipped when DATA_DIR already holds them: a data set
#    is reused across runs (delete the directory to rebuild it). About
#    3.3 KB of disk per session for the store, 0.25 KB for the raw table.
# 2. `playhead serve --data-dir DATA_DIR/store` (release, request timeout
#    raised to 1 h so slow answers are timed, not cut) runs on CPU 0.
# 3. `p5 bench` on CPU 1 asks each question over the 30 days, alternating
#    Playhead's HTTP API and SQL on the raw table (same bundled SQLite), one
#    untimed warm-up round then ROUNDS timed rounds, and prints medians and
#    ratios.
#
# The questions (what the dashboard asks for a 30-day range):
#   - overview: GET /data/v1/metrics (every aggregate metric);
#   - timeseries: GET /data/v1/metrics/timeseries?metric=rebuffer_percentage&interval=1h;
#   - breakdown: GET /data/v1/metrics/breakdown?metric=viewer_experience_score&by=browser.
# Writes bench/out/p5-SESSIONS.md. Asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
SESSIONS=${1:-10000000}
ROUNDS=${2:-5}
DATA=${3:-bench/out/p5-data-$SESSIONS}
OUT=bench/out
mkdir -p "$OUT"
command -v taskset >/dev/null || { echo "taskset (util-linux) is required" >&2; exit 1; }
cargo build --release -q -p playhead -p playhead-bench
BIN=target/release/playhead
P5=target/release/p5

if [[ ! -f $DATA/range ]]; then
  rm -rf "$DATA"
  mkdir -p "$DATA"
  echo "generating $SESSIONS sessions in $DATA" >&2
  taskset -c 1 "$P5" build --dir "$DATA" --sessions "$SESSIONS" | tee "$DATA/build.txt"
fi
BUILD=$(cat "$DATA/build.txt")

new_tmp
PLAYHEAD_REQUEST_TIMEOUT_S=3600 serve_playhead "$BIN" "$DATA/store" "$TMP_DIR/server"
echo "warm-up round (not counted)" >&2
taskset -c 1 "$P5" bench --target "127.0.0.1:$PORT" --read-key "$BENCH_READ_KEY" \
  --raw "$DATA/raw.sqlite" --rounds 1 > /dev/null
TABLE=$(taskset -c 1 "$P5" bench --target "127.0.0.1:$PORT" --read-key "$BENCH_READ_KEY" \
  --raw "$DATA/raw.sqlite" --rounds "$ROUNDS")
stop_bg "$SERVER"
{
  echo "$TABLE"
  echo
  echo "Data: $BUILD"
  echo
  echo "Command: \`bench/p5_queries.sh $SESSIONS $ROUNDS\`; $(machine_line)"
} | tee "$OUT/p5-$SESSIONS.md"
