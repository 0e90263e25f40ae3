#!/usr/bin/env bash
# P1 (PERFORMANCE.md): pixel beacons/s, Playhead against nginx side by side.
# `wrk` sends `GET /icon.gif?type=check&...` (plus the view/play beacons
# that open the sessions, see bench/pixel_check.lua) over 64 keep-alive
# connections to each, in alternating rounds.
#
# Usage: bench/p1_pixel.sh [ROUNDS] [SECONDS] [AUDIENCE]
#   defaults: 5 rounds of 20 s, AUDIENCE=auto: the sessions already watching
#   when a round starts are 6 x the requests/s of a 5-s warm-up round of the
#   same server (not counted), so every session's checks come about 6 s
#   apart, as a real player's every 5 s of playing do, on both servers.
#   P1_WARM=S (default 40): before each measured run, the same server gets
#   S seconds of the same audience (same seed, so the same viewers and
#   videos), not counted. Its sessions are then open when the measured run
#   starts, as on a server that has been running: most beacons are checks
#   of known sessions. 40 s is longer than an open session's row may lag
#   (ROW_DEFER_MS, 30 s) plus a check's 6 s, so the measured run also pays
#   the rewrites of those rows, as a running server does (10 s left them
#   out: 0.467 against 0.422, bench/RESULTS.md). P1_WARM=0 measures a fresh
#   server instead, whose first beacon of each audience session opens a
#   session (how the passes before the eleventh measured P1). With P1_WARM,
#   the auto audience comes from a warmed server's rate too.
#   FLOOR=1 adds two servers to every round, after nginx, with nginx's
#   audience and no warm-up (they keep no sessions): the bare handler
#   (bench/bare: axum answering the GIF to a query with a beacon type, the
#   ceiling of Playhead's stack), and `bare-handler --durable`, the same
#   appending each query to a preallocated log and answering after its
#   group's fdatasync: about the least a server on this stack and disk pays
#   to store every beacon durably, as Playhead's contract says. They get their
#   own table and ratios to nginx.
# Each round runs, one after the other, on CPU 0 (taskset):
#   - `playhead serve` zero-config (fresh data dir, embedded store, fsync
#     always): it validates, sessionizes and durably stores every beacon;
#   - nginx from Debian, one worker, `empty_gif` at /icon.gif and a
#     buffered `access_log ... combined buffer=64k flush=1s` (what a pixel
#     collector usually is), config generated in a temp dir (no system
#     config touched), started and stopped by this script;
# and wrk (1 thread, 64 connections, same Lua mix and audience) on CPU 1.
# Prints a table of requests/s per round, the medians and the ratio, and
# writes it to bench/out/p1.md; raw wrk outputs go to bench/out/p1-*.txt.
# Not a test: it asserts nothing. Installs wrk and nginx with apt-get when
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
ROUNDS=${1:-5}
SECS=${2:-20}
AUDIENCE=${3:-auto}
ARGS="$ROUNDS $SECS $AUDIENCE"
[[ $P1_WARM == 40 ]] || ARGS="$ARGS (P1_WARM=$P1_WARM)"
FLOOR=${FLOOR:-0}
[[ $FLOOR == 0 ]] || ARGS="$ARGS (FLOOR=$FLOOR)"
CONNECTIONS=64
OUT=bench/out
mkdir -p "$OUT"
command -v taskset >/dev/null || { echo "taskset (util-linux) is required" >&2; exit 1; }
ensure_cmd wrk wrk
ensure_cmd nginx nginx
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
cargo build --release -q -p playhead -p playhead-bench-bare
BIN=target/release/playhead
BARE=target/release/bare-handler
STAMP=$(date +%s)

start_playhead() {
  new_tmp
  serve_playhead "$BIN" "$TMP_DIR/data" "$TMP_DIR/server"
}

start_nginx() {
  new_tmp
  local dir=$TMP_DIR
  chmod 755 "$dir"
  PORT=$(free_port)
  cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    access_log $dir/access.log combined buffer=64k flush=1s;
    keepalive_requests 1000000;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$PORT;
        location = /icon.gif { empty_gif; }
    }
}
CONF
  start_bg taskset -c 0 "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" \
    > "$dir/server.out" 2>&1
  SERVER=$BG_PID
  wait_port "$PORT"
  NGINX_DIR=$dir
}

# One wrk run against $PORT: $1 = raw output file, $2 = seconds, $3 = audience.
# Sets RPS, CPU (server CPU %), PER_CPU, P50, P99, NON2XX, SOCKET_ERRORS, MIX.
run_wrk() {
  local raw=$1 secs=$2 audience=$3 c0 c1 t0 t1
  c0=$(cpu_ticks "$SERVER"); t0=$(date +%s.%N)
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${secs}s" --latency \
    -s bench/pixel_check.lua "http://127.0.0.1:$PORT" -- "$audience" > "$raw"
  c1=$(cpu_ticks "$SERVER"); t1=$(date +%s.%N)
  RPS=$(awk '/^Requests\/sec:/ {print $2}' "$raw")
  # The server's share of its core during the run, and requests per CPU-second.
  CPU=$(awk -v c="$((c1 - c0))" -v hz="$CLK_TCK" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", 100 * c / hz / (b - a)}')
  PER_CPU=$(awk -v r="$RPS" -v c="$CPU" 'BEGIN {printf "%.0f", (c > 0 ? r * 100 / c : 0)}')
  P50=$(awk '$1 == "50%" {print $2}' "$raw")
  P99=$(awk '$1 == "99%" {print $2}' "$raw")
  NON2XX=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$raw")
  NON2XX=${NON2XX:-0}
  SOCKET_ERRORS=$(awk -F': ' '/Socket errors:/ {print $2}' "$raw")
  SOCKET_ERRORS=${SOCKET_ERRORS:-none}
  MIX=$(grep '^beacons:' "$raw" || true)
}

# The audience each server gets: 6 x its warm-up rate (auto), so that both
# see the realistic mix (mostly checks), or the number given. With warm-up
# runs, the rate is a warmed server's: a first estimate from a fresh one,
# then the rate with an audience of 6 x that estimate, after warming.
audience_for() { awk -v r="$1" 'BEGIN {a = int(6 * r); print (a < 1000 ? 1000 : a)}'; }
auto_audience() { # $1 = label; the server is running; prints the audience
  run_wrk "$OUT/p1-warmup-$1-$STAMP.txt" 5 10000
  local audience
  audience=$(audience_for "$RPS")
  if [[ $P1_WARM != 0 ]]; then
    pixel_warm_up "$audience" "$CONNECTIONS"
    run_wrk "$OUT/p1-warmed-$1-$STAMP.txt" 5 "$audience"
    audience=$(audience_for "$RPS")
  fi
  echo "$audience"
}
if [[ $AUDIENCE == auto ]]; then
  start_playhead
  AUD_PH=$(auto_audience playhead)
  stop_bg "$SERVER"
  start_nginx
  AUD_NG=$(auto_audience nginx)
  stop_bg "$SERVER"
  echo "warm-up: audiences of $AUD_PH (Playhead) and $AUD_NG (nginx) sessions" >&2
  AUD_NOTE="6 x each one's warm-up rate, so both get the realistic mix"
else
  AUD_PH=$AUDIENCE
  AUD_NG=$AUDIENCE
  AUD_NOTE="as given"
fi

rows=(); ph=(); ng=(); ph_cpu=(); ng_cpu=(); floor_rows=(); bare=(); floor=(); bare_cpu=(); floor_cpu=()
for r in $(seq "$ROUNDS"); do
  start_playhead
  pixel_warm_up "$AUD_PH" "$CONNECTIONS"
  run_wrk "$OUT/p1-playhead-round$r-$STAMP.txt" "$SECS" "$AUD_PH"
  stop_bg "$SERVER"
  ph+=("$RPS"); ph_cpu+=("$PER_CPU"); MIX_PH=$MIX
  line="| $r | $RPS | $CPU % | $PER_CPU | $P50 | $P99 | $NON2XX, $SOCKET_ERRORS"
  echo "round $r: playhead $RPS requests/s at $CPU % CPU, non-2xx $NON2XX, socket errors $SOCKET_ERRORS" >&2
  start_nginx
  pixel_warm_up "$AUD_NG" "$CONNECTIONS"
  # The warm-up's lines, once its buffer is flushed (flush=1s), are not counted.
  [[ $P1_WARM == 0 ]] || sleep 1.5
  logged0=$(wc -l < "$NGINX_DIR/access.log")
  run_wrk "$OUT/p1-nginx-round$r-$STAMP.txt" "$SECS" "$AUD_NG"
  stop_bg "$SERVER"
  logged=$(($(wc -l < "$NGINX_DIR/access.log") - logged0))
  ng+=("$RPS"); ng_cpu+=("$PER_CPU"); MIX_NG=$MIX
  rows+=("$line | $RPS | $CPU % | $PER_CPU | $P50 | $P99 | $NON2XX, $SOCKET_ERRORS | $logged |")
  echo "round $r: nginx $RPS requests/s at $CPU % CPU, non-2xx $NON2XX, socket errors $SOCKET_ERRORS, $logged lines logged" >&2
  if [[ $FLOOR != 0 ]]; then
    start_bare
    run_wrk "$OUT/p1-bare-round$r-$STAMP.txt" "$SECS" "$AUD_NG"
    stop_bg "$SERVER"
    bare+=("$RPS"); bare_cpu+=("$PER_CPU")
    line="| $r | ${ph[-1]} | ${ng[-1]} | $RPS | $CPU % | $PER_CPU | $NON2XX, $SOCKET_ERRORS"
    echo "round $r: bare $RPS requests/s at $CPU % CPU, non-2xx $NON2XX" >&2
    start_bare durable
    run_wrk "$OUT/p1-floor-round$r-$STAMP.txt" "$SECS" "$AUD_NG"
    stop_bg "$SERVER"
    floor+=("$RPS"); floor_cpu+=("$PER_CPU")
    floor_rows+=("$line | $RPS | $CPU % | $PER_CPU | $NON2XX, $SOCKET_ERRORS |")
    echo "round $r: floor $RPS requests/s at $CPU % CPU, non-2xx $NON2XX" >&2
  fi
done
m_ph=$(median_of ph)
m_ng=$(median_of ng)
p1_ratio=$(ratio "$m_ph" "$m_ng")
m_phc=$(median_of ph_cpu)
m_ngc=$(median_of ng_cpu)
p1_ratio_cpu=$(ratio "$m_phc" "$m_ngc")
# The bare handler's and the floor's table, when FLOOR=1.
floor_table() {
  [[ $FLOOR != 0 ]] || return 0
  local m_bare m_floor m_barec m_floorc
  m_bare=$(median_of bare)
  m_floor=$(median_of floor)
  m_barec=$(median_of bare_cpu)
  m_floorc=$(median_of floor_cpu)
  echo "The bare handler (axum, GIF answered) and the durable floor (\`bare-handler --durable\`: each query appended to a preallocated log, answered after its group's fdatasync), in the same rounds, with nginx's audience:"
  echo
  echo "| round | Playhead requests/s | nginx requests/s | bare requests/s | server CPU | requests per CPU-s | non-2xx, socket errors | floor requests/s | server CPU | requests per CPU-s | non-2xx, socket errors |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${floor_rows[@]}"
  echo "| **median** | **$m_ph** | **$m_ng** | **$m_bare** | | $m_barec | | **$m_floor** | | $m_floorc | |"
  echo
  echo "Bare / nginx: **$(ratio "$m_bare" "$m_ng")** ($(ratio "$m_barec" "$m_ngc") per CPU-second); floor / nginx: **$(ratio "$m_floor" "$m_ng")** ($(ratio "$m_floorc" "$m_ngc") per CPU-second: about the most a server on this stack that durably stores every beacon reaches; P1's target for Playhead is ≥ 1.5); Playhead / floor: **$(ratio "$m_ph" "$m_floor")**."
  echo
}
{
  echo "| round | Playhead requests/s | server CPU | requests per CPU-s | p50 | p99 | non-2xx, socket errors | nginx requests/s | server CPU | requests per CPU-s | p50 | p99 | non-2xx, socket errors | nginx log lines |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo "| **median** | **$m_ph** | | $m_phc | | | | **$m_ng** | | $m_ngc | | | | |"
  echo
  echo "P1 ratio (Playhead / nginx): **$p1_ratio** (target ≥ 1.5); per server CPU-second: $p1_ratio_cpu"
  echo
  echo "Server CPU is the server's user + system time over the run's wall time (100 % = its one core). Below about 95 %, the server was not the bottleneck (the generator or waiting was), and its requests/s is a lower bound of what it can do."
  echo
  echo "Server on CPU 0 (Playhead zero-config, fresh data dir, fsync always; nginx $("$NGINX" -v 2>&1 | cut -d/ -f2), 1 worker, empty_gif, access_log combined buffer=64k flush=1s), wrk -t1 -c$CONNECTIONS keep-alive with bench/pixel_check.lua on CPU 1, sessions watching at the start of each round: $AUD_PH for Playhead, $AUD_NG for nginx ($AUD_NOTE); $(if [[ $P1_WARM == 0 ]]; then echo "each round on a fresh server (P1_WARM=0: the first beacon of each of those sessions opens it)"; else echo "each server first served the same audience for $P1_WARM s, not counted"; fi)."
  echo "Last round's mix: Playhead ${MIX_PH:-not reported}; nginx ${MIX_NG:-not reported}"
  echo
  floor_table
  echo "Command: \`bench/p1_pixel.sh $ARGS\`; $(machine_line); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
} | tee "$OUT/p1.md"
