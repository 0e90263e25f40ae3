#!/usr/bin/env bash
# P2 and P3 (PERFORMANCE.md): Adobe Media Collection events, Playhead against
# the bare axum handler (bench/bare: parses the same JSON, answers 204).
#
# Usage: bench/p2_p3_adobe.sh [ROUNDS] [SECONDS] [SESSIONS]
#   defaults: 5 rounds of 20 s, 20000 sessions.
#   CONNECTIONS=N in the environment runs P2's wrk with N connections
#   instead of 64, and skips P3 (defined at 64): a diagnostic of how much of
#   P2 is bound by 64 requests in flight, each waiting for its fsync.
#   P2_BIN=PATH runs another Playhead binary (one built before a change, or
#   a diagnostic build) and P3=skip skips P3.
#   FLOOR=1 adds a third server to every round of P2 and P3, after the bare
#   handler: `bare-handler --durable`, the same handler appending each body
#   to a preallocated log and answering after its group's fdatasync: about
#   the least a server that keeps Playhead's durability contract pays on
#   this stack and disk. It gets its own table and ratios (floor / bare, and
#   Playhead / floor).
#
# P2, peak events/s: each round starts a fresh `playhead serve` (release,
# zero-config, fsync always) pinned to CPU 0, opens SESSIONS Adobe sessions
# (`open-sessions`: `POST /api/v1/sessions`, sids from `Location`), then runs
# `wrk -t1 -c64` with bench/adobe_events.lua (~300-byte `ping`/`play`
# events spread over the sessions) pinned to CPU 1; then the same wrk run
# against the bare handler on CPU 0. Rounds alternate Playhead / bare.
#
# P3, p99 latency at 50 % of P2's peak: RATE = 0.5 x Playhead's median P2
# events/s. Each round runs `paced` (bench/tools/src/bin/paced.rs: an
# open-loop constant-rate generator, 64 connections, 3 s warm-up) at RATE
# against a fresh Playhead with fresh sessions, then against the bare
# handler. wrk2 is not in Debian and wrk paced with Lua `delay()` stays
# closed-loop (its latency starts when a request is written, so a stall
# hides the requests that should have gone out during it); `paced` reports
# both that "service" p99 and the corrected p99 from the scheduled send time.
#
# Prints the tables, medians and ratios and writes them to bench/out/p2_p3.md;
# raw outputs go to bench/out/p2-*.txt and p3-*.txt. Asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
ROUNDS=${1:-5}
SECS=${2:-20}
SESSIONS=${3:-20000}
CONNECTIONS=${CONNECTIONS:-64}
ARGS="$ROUNDS $SECS $SESSIONS"
[[ $CONNECTIONS == 64 ]] || ARGS="$ARGS (CONNECTIONS=$CONNECTIONS)"
[[ -z ${P2_BIN:-} ]] || ARGS="$ARGS (P2_BIN=$P2_BIN)"
[[ ${PLAYHEAD_FSYNC:-always} == always ]] || ARGS="$ARGS (PLAYHEAD_FSYNC=$PLAYHEAD_FSYNC)"
FLOOR=${FLOOR:-0}
[[ $FLOOR == 0 ]] || ARGS="$ARGS (FLOOR=$FLOOR)"
OUT=bench/out
mkdir -p "$OUT"
command -v taskset >/dev/null || { echo "taskset (util-linux) is required" >&2; exit 1; }
ensure_cmd wrk wrk
cargo build --release -q -p playhead -p playhead-bench -p playhead-bench-bare
BIN=${P2_BIN:-target/release/playhead}
BARE=target/release/bare-handler
OPEN=target/release/open-sessions
PACED=target/release/paced
STAMP=$(date +%s)
SIDS=""

# Start a fresh Playhead on CPU 0 and open $SESSIONS Adobe sessions; sets
# PORT, SERVER and SIDS (the sid file, kept for the bare handler's round).
start_playhead() {
  new_tmp
  local dir=$TMP_DIR
  serve_playhead "$BIN" "$dir/data" "$dir/server"
  SIDS=$dir/sids.txt
  taskset -c 1 "$OPEN" --target "127.0.0.1:$PORT" --protocol adobe --count "$SESSIONS" \
    --sids-out "$SIDS" >&2
  cp "$SIDS" "$OUT/p2p3-sids.txt"
}

# Server CPU % (of its one core) between two cpu_ticks readings.
cpu_pct() {
  awk -v c="$(( $2 - $1 ))" -v hz="$CLK_TCK" -v a="$3" -v b="$4" 'BEGIN {printf "%.0f", 100 * c / hz / (b - a)}'
}

# wrk against the server on $PORT; sets RPS, CPU, P50, P99, NON2XX.
run_wrk() {
  local raw=$1 c0 c1 t0 t1
  c0=$(cpu_ticks "$SERVER"); t0=$(date +%s.%N)
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${SECS}s" --latency -s bench/adobe_events.lua \
    "http://127.0.0.1:$PORT" -- "$OUT/p2p3-sids.txt" > "$raw"
  c1=$(cpu_ticks "$SERVER"); t1=$(date +%s.%N)
  CPU=$(cpu_pct "$c0" "$c1" "$t0" "$t1")
  RPS=$(awk '/^Requests\/sec:/ {print $2}' "$raw")
  P50=$(awk '$1 == "50%" {print $2}' "$raw")
  P99=$(awk '$1 == "99%" {print $2}' "$raw")
  NON2XX=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$raw")
  NON2XX=${NON2XX:-0}
}

# paced against the server on $PORT at $RATE; sets the k=v fields as P_<key>.
run_paced() {
  local raw=$1 kv c0 c1 t0 t1
  c0=$(cpu_ticks "$SERVER"); t0=$(date +%s.%N)
  taskset -c 1 "$PACED" --target "127.0.0.1:$PORT" --sids "$OUT/p2p3-sids.txt" --rate "$RATE" \
    --duration "$SECS" --warmup 3 --connections 64 > "$raw"
  c1=$(cpu_ticks "$SERVER"); t1=$(date +%s.%N)
  CPU=$(cpu_pct "$c0" "$c1" "$t0" "$t1")
  for kv in $(cat "$raw"); do
    printf -v "P_${kv%%=*}" '%s' "${kv#*=}"
  done
}

# ---- P2
p2_rows=(); ph_rps=(); bare_rps=(); floor_rows=(); floor_rps=(); floor_p3_rows=(); floor_p99=(); floor_cp99=()
for r in $(seq "$ROUNDS"); do
  start_playhead
  run_wrk "$OUT/p2-playhead-round$r-$STAMP.txt"
  stop_bg "$SERVER"
  ph_rps+=("$RPS"); ph_line="$RPS | $CPU % | $P50 | $P99 | $NON2XX"
  echo "P2 round $r: playhead $RPS events/s at $CPU % CPU (non-2xx $NON2XX)" >&2
  start_bare
  run_wrk "$OUT/p2-bare-round$r-$STAMP.txt"
  stop_bg "$SERVER"
  bare_rps+=("$RPS")
  p2_rows+=("| $r | $ph_line | $RPS | $CPU % | $P50 | $P99 | $NON2XX |")
  echo "P2 round $r: bare $RPS events/s at $CPU % CPU (non-2xx $NON2XX)" >&2
  if [[ $FLOOR != 0 ]]; then
    start_bare durable
    run_wrk "$OUT/p2-floor-round$r-$STAMP.txt"
    stop_bg "$SERVER"
    floor_rps+=("$RPS")
    floor_rows+=("| $r | ${ph_rps[-1]} | ${bare_rps[-1]} | $RPS | $CPU % | $P50 | $P99 | $NON2XX |")
    echo "P2 round $r: floor $RPS events/s at $CPU % CPU (non-2xx $NON2XX)" >&2
  fi
done
m_ph=$(median_of ph_rps)
m_bare=$(median_of bare_rps)
p2_ratio=$(ratio "$m_ph" "$m_bare")
RATE=$(awk -v a="$m_ph" 'BEGIN {printf "%.0f", a/2}')
echo "P2: Playhead $m_ph, bare $m_bare, ratio $p2_ratio; P3 rate $RATE/s" >&2

# ---- P3
p3_rows=(); ph_p99=(); bare_p99=(); ph_cp99=(); bare_cp99=()
P3_ROUNDS=$ROUNDS
[[ $CONNECTIONS == 64 && ${P3:-} != skip ]] || P3_ROUNDS=0
for r in $(seq "$P3_ROUNDS"); do
  start_playhead
  run_paced "$OUT/p3-playhead-round$r-$STAMP.txt"
  stop_bg "$SERVER"
  ph_p99+=("$P_p99_us"); ph_cp99+=("$P_cp99_us")
  ph_line="$P_achieved | $CPU % | $P_p50_us | $P_p99_us | $P_cp99_us | $P_other"
  echo "P3 round $r: playhead p99 $P_p99_us us (corrected $P_cp99_us us), achieved $P_achieved/s" >&2
  start_bare
  run_paced "$OUT/p3-bare-round$r-$STAMP.txt"
  stop_bg "$SERVER"
  bare_p99+=("$P_p99_us"); bare_cp99+=("$P_cp99_us")
  p3_rows+=("| $r | $ph_line | $P_achieved | $CPU % | $P_p50_us | $P_p99_us | $P_cp99_us | $P_other |")
  echo "P3 round $r: bare p99 $P_p99_us us (corrected $P_cp99_us us), achieved $P_achieved/s" >&2
  if [[ $FLOOR != 0 ]]; then
    start_bare durable
    run_paced "$OUT/p3-floor-round$r-$STAMP.txt"
    stop_bg "$SERVER"
    floor_p99+=("$P_p99_us"); floor_cp99+=("$P_cp99_us")
    floor_p3_rows+=("| $r | ${ph_p99[-1]} | ${bare_p99[-1]} | $P_achieved | $CPU % | $P_p50_us | $P_p99_us | $P_cp99_us | $P_other |")
    echo "P3 round $r: floor p99 $P_p99_us us (corrected $P_cp99_us us), achieved $P_achieved/s" >&2
  fi
done
p3_table() {
  if [[ $P3_ROUNDS == 0 ]]; then
    if [[ $CONNECTIONS == 64 ]]; then echo "P3 not run (P3=skip)."; else echo "P3 not run: it is defined at 64 connections."; fi
    return
  fi
  m_ph99=$(median_of ph_p99)
  m_bare99=$(median_of bare_p99)
  m_phc99=$(median_of ph_cp99)
  m_barec99=$(median_of bare_cp99)
  p3_ratio=$(ratio "$m_ph99" "$m_bare99" %.1f)
  p3c_ratio=$(ratio "$m_phc99" "$m_barec99" %.1f)
  echo "### P3: latency at $RATE events/s (50 % of Playhead's P2 median), \`paced\`, 64 connections"
  echo
  echo "| round | Playhead achieved/s | server CPU | p50 µs | p99 µs | corrected p99 µs | non-2xx | bare achieved/s | server CPU | p50 µs | p99 µs | corrected p99 µs | non-2xx |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${p3_rows[@]}"
  echo "| **median p99** | | | | **$m_ph99** | **$m_phc99** | | | | | **$m_bare99** | **$m_barec99** | |"
  echo
  echo "P3 ratio (Playhead p99 / bare p99): **$p3_ratio** (service), **$p3c_ratio** (corrected) (target ≤ 2)"
}

# The floor's table, when FLOOR=1.
floor_table() {
  [[ $FLOOR != 0 ]] || return 0
  local m_floor
  m_floor=$(median_of floor_rps)
  echo "### The durable floor: \`bare-handler --durable\` (the bare handler, each body appended to a preallocated log, answered after its group's fdatasync), in the same rounds"
  echo
  echo "| round | Playhead events/s | bare events/s | floor events/s | server CPU | p50 | p99 | non-2xx |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${floor_rows[@]}"
  echo "| **median** | **$m_ph** | **$m_bare** | **$m_floor** | | | | |"
  echo
  echo "Floor / bare: **$(ratio "$m_floor" "$m_bare")** (about the most a server on this stack that keeps the durability contract reaches; P2's target for Playhead is ≥ 0.7); Playhead / floor: **$(ratio "$m_ph" "$m_floor")**."
  if [[ $P3_ROUNDS != 0 ]]; then
    local m_f99 m_fc99
    m_f99=$(median_of floor_p99)
    m_fc99=$(median_of floor_cp99)
    echo
    echo "| round | Playhead p99 µs | bare p99 µs | floor achieved/s | server CPU | p50 µs | p99 µs | corrected p99 µs | non-2xx |"
    echo "|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${floor_p3_rows[@]}"
    echo "| **median p99** | **$m_ph99** | **$m_bare99** | | | | **$m_f99** | **$m_fc99** | |"
    echo
    echo "Floor p99 / bare p99 at $RATE/s: **$(ratio "$m_f99" "$m_bare99" %.1f)** (service), **$(ratio "$m_fc99" "$m_barec99" %.1f)** (corrected) (P3's target for Playhead is ≤ 2)."
  fi
}

{
  echo "### P2: Adobe events/s, peak (wrk -t1 -c$CONNECTIONS, bench/adobe_events.lua, $SESSIONS sessions)"
  echo
  echo "| round | Playhead events/s | server CPU | p50 | p99 | non-2xx | bare events/s | server CPU | p50 | p99 | non-2xx |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${p2_rows[@]}"
  echo "| **median** | **$m_ph** | | | | | **$m_bare** | | | | |"
  echo
  echo "P2 ratio (Playhead / bare): **$p2_ratio** (target ≥ 0.7). Server CPU is user + system time over wall time (100 % = its one core); below about 95 % the server was not the bottleneck, and its rate is a lower bound."
  echo
  p3_table
  echo
  floor_table
  echo
  echo "Command: \`bench/p2_p3_adobe.sh $ARGS\`; $(machine_line); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
} | tee "$OUT/p2_p3.md"
