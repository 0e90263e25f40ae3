#!/usr/bin/env bash
# What a read pays for the session rows the writer left stale (README, "the
# write path"): open SESSIONS Adobe sessions, send each of them one more
# event (so that, on a build that defers rows, every open row is stale), then
# time a first `GET /data/v1/realtime` while `paced` sends 2,000 events/s
# (and report those events' p99 and worst latency), then `GET
# /data/v1/realtime` and `GET /data/v1/metrics` READS times each. The first
# read writes the stale rows before it reads; the later ones have nothing to
# write. On a build that writes rows per event, every read is like the later
# ones.
#
# Usage: bench/read_flush.sh [SESSIONS] [READS] [BINARY...]
#   defaults: 100000 sessions, 5 reads, target/release/playhead (built
#   first). Several binaries run one after the other, same steps.
#   Server on CPU 0, generator on CPU 1, fsync always.
# Prints to stdout and asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
SESSIONS=${1:-100000}
READS=${2:-5}
shift $(($# < 2 ? $# : 2))
BINS=("$@")
[[ ${#BINS[@]} -gt 0 ]] || BINS=(target/release/playhead)
cargo build --release -q -p playhead -p playhead-bench
echo "read_flush: $(machine_line)"
echo "$SESSIONS open Adobe sessions, one event each after they opened; then each read $READS times"

# GET $1 on the running server; prints its time in ms and HTTP status.
timed_get() {
  curl -s -o /dev/null -w '%{time_total} %{http_code}\n' \
    -H "Authorization: Bearer $BENCH_READ_KEY" "http://127.0.0.1:$PORT$1" |
    awk '{printf "%.1f ms (%s)", $1 * 1000, $2}'
}

for bin in "${BINS[@]}"; do
  new_tmp
  serve_playhead "$bin" "$TMP_DIR/data" "$TMP_DIR/server"
  taskset -c 1 target/release/open-sessions --target "127.0.0.1:$PORT" --protocol adobe \
    --count "$SESSIONS" --sids-out "$TMP_DIR/sids.txt" >&2
  # `paced` posts to the sessions in turn: SESSIONS requests at 5,000/s
  # reach each session once.
  rate=5000
  taskset -c 1 target/release/paced --target "127.0.0.1:$PORT" --sids "$TMP_DIR/sids.txt" \
    --rate "$rate" --warmup 0 --duration "$(awk -v n="$SESSIONS" -v r="$rate" 'BEGIN {print n / r}')" \
    > "$TMP_DIR/paced.txt"
  echo
  echo "binary $bin: after the opens, $(grep -o 'requests=[0-9]* ok=[0-9]*' "$TMP_DIR/paced.txt")"
  sleep 1
  # The first read, while ingest goes on at 2,000 events/s: how long the
  # events sent meanwhile waited.
  start_bg taskset -c 1 target/release/paced --target "127.0.0.1:$PORT" --sids "$TMP_DIR/sids.txt" \
    --rate 2000 --warmup 0 --duration 8 > "$TMP_DIR/during.txt"
  during=$BG_PID
  sleep 2
  first=$(timed_get /data/v1/realtime)
  wait "$during" || true
  echo "  first GET /data/v1/realtime: $first"
  echo "  ingest meanwhile (paced, 2,000/s for 8 s): $(grep -oE '\b(requests|ok|p99_us|max_us)=[0-9]+' "$TMP_DIR/during.txt" | tr '\n' ' ')"
  for q in /data/v1/realtime /data/v1/metrics; do
    line="  GET $q:"
    for _ in $(seq "$READS"); do
      line+=" $(timed_get "$q");"
    done
    echo "$line"
  done
  stop_bg "$SERVER"
done
