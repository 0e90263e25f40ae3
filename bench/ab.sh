#!/usr/bin/env bash
# A/B of two Playhead binaries on P1's pixel mix (bench/pixel_check.lua), on
# P2's Adobe events (bench/adobe_events.lua), or on P6's native load:
# alternating rounds, each server on CPU 0 with a fresh zero-config data dir
# (fsync always), wrk (1 thread, 64 keep-alive connections) on CPU 1, or for
# `native` NEW_BIN's `playhead load --protocol native --speed 100` (AUDIENCE
# viewers, default 4000, which saturates the server; the figure is events/s).
# For measuring one change: build the binary before and after it, then
#   bench/ab.sh pixel|adobe OLD_BIN NEW_BIN [ROUNDS] [SECONDS] [AUDIENCE]
# (defaults 5 rounds of 15 s; the audience is the number of sessions already
# watching, default 180000 pixel viewers or 20000 Adobe sessions, which
# `open-sessions` opens before each Adobe round).
# Pixel rounds first serve the same audience for P1_WARM seconds (default
# 40, not counted), as bench/p1_pixel.sh does, so that the measured beacons
# go to known sessions; P1_WARM=0 measures fresh servers (the pixel A/Bs
# before the eleventh pass, with 60000 viewers).
# CONNECTIONS=N in the environment sets wrk's keep-alive connections
# (default 64, as P1 and P2 run).
# Prints requests/s and server CPU per round, the medians and new/old.
# Not a test: it asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
MIX=${1:?usage: bench/ab.sh pixel|adobe|native OLD_BIN NEW_BIN [ROUNDS] [SECONDS] [AUDIENCE]}
OLD=${2:?old binary}
NEW=${3:?new binary}
ROUNDS=${4:-5}
SECS=${5:-15}
CONNECTIONS=${CONNECTIONS:-64}
case $MIX in
  pixel) AUDIENCE=${6:-180000} ;;
  adobe) AUDIENCE=${6:-20000} ;;
  native) AUDIENCE=${6:-4000} ;;
  *) echo "unknown mix '$MIX': pixel, adobe or native" >&2; exit 2 ;;
esac
OUT=bench/out
mkdir -p "$OUT"
ensure_cmd wrk wrk
[[ $MIX != adobe ]] || cargo build --release -q -p playhead-bench
STAMP=$(date +%s)

# One round against binary $1; sets RPS and CPU.
round() {
  local bin=$1 raw=$2 c0 c1 t0 t1
  new_tmp
  serve_playhead "$bin" "$TMP_DIR/data" "$TMP_DIR/server"
  local script=bench/pixel_check.lua arg=$AUDIENCE
  if [[ $MIX == adobe ]]; then
    script=bench/adobe_events.lua arg=$TMP_DIR/sids.txt
    taskset -c 1 target/release/open-sessions --target "127.0.0.1:$PORT" --protocol adobe \
      --count "$AUDIENCE" --sids-out "$arg" >&2
  fi
  [[ $MIX != pixel ]] || pixel_warm_up "$AUDIENCE" "$CONNECTIONS"
  c0=$(cpu_ticks "$SERVER"); t0=$(date +%s.%N)
  if [[ $MIX == native ]]; then
    taskset -c 1 "$NEW" load --target "http://127.0.0.1:$PORT" --protocol native \
      --viewers "$AUDIENCE" --duration "$SECS" --speed 100 --ingest-key "$BENCH_INGEST_KEY" > "$raw"
  else
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${SECS}s" --latency \
      -s "$script" "http://127.0.0.1:$PORT" -- "$arg" > "$raw"
  fi
  c1=$(cpu_ticks "$SERVER"); t1=$(date +%s.%N)
  stop_bg "$SERVER"
  if [[ $MIX == native ]]; then
    RPS=$(awk '/^events/ {print $3}' "$raw" | tr -d '/s')
  else
    RPS=$(awk '/^Requests\/sec:/ {print $2}' "$raw")
  fi
  CPU=$(awk -v c="$((c1 - c0))" -v hz="$CLK_TCK" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", 100 * c / hz / (b - a)}')
}

old=(); new=(); rows=()
for r in $(seq "$ROUNDS"); do
  round "$OLD" "$OUT/ab-old-round$r-$STAMP.txt"; old+=("$RPS"); line="| $r | $RPS | $CPU %"
  round "$NEW" "$OUT/ab-new-round$r-$STAMP.txt"; new+=("$RPS"); rows+=("$line | $RPS | $CPU % |")
  echo "round $r: old ${old[-1]}/s, new ${new[-1]}/s" >&2
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
MO=$(median "${old[@]}"); MN=$(median "${new[@]}")
{
  echo "| round | old requests/s | old server CPU | new requests/s | new server CPU |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo "| **median** | **$MO** | | **$MN** | |"
  echo
  echo "new / old: $(awk -v a="$MN" -v b="$MO" 'BEGIN {printf "%.3f", a / b}')"
} | tee "$OUT/ab-$STAMP.md"
