# Helpers shared by the bench/ scripts (sourced, not run). Every process a
# script starts goes through `start_bg` and every temp dir through
# `new_tmp`, and `cleanup` (trapped on EXIT) stops and removes them all.

BENCH_PIDS=()
BENCH_TMPS=()

cleanup() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${BENCH_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  BENCH_PIDS=()
  local d
  for d in "${BENCH_TMPS[@]}"; do
    rm -rf "$d"
  done
  BENCH_TMPS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Start a command in the background; its pid is in $BG_PID.
start_bg() {
  "$@" &
  BG_PID=$!
  BENCH_PIDS+=("$BG_PID")
}

# Stop one process started by start_bg.
stop_bg() {
  local pid=$1 keep=() p
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${BENCH_PIDS[@]}"; do
    [[ $p == "$pid" ]] || keep+=("$p")
  done
  BENCH_PIDS=("${keep[@]}")
}

# A new temp dir, removed on exit; its path is in $TMP_DIR.
new_tmp() {
  TMP_DIR=$(mktemp -d)
  BENCH_TMPS+=("$TMP_DIR")
}

# Install a Debian package when its command is missing (apt-get, through
# sudo when not root).
ensure_cmd() {
  local cmd=$1 pkg=$2 sudo=""
  command -v "$cmd" >/dev/null && return 0
  [[ -x /usr/sbin/$cmd ]] && return 0
  echo "$cmd is missing: installing $pkg with apt-get" >&2
  if [[ $(id -u) -ne 0 ]]; then sudo=sudo; fi
  $sudo apt-get update
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y "$pkg"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Wait until a server prints `listening on` to $1 ($2 seconds at most,
# default 10).
wait_listening() {
  local out=$1 _
  for _ in $(seq $((${2:-10} * 10))); do
    grep -q '^listening on' "$out" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "the server did not start; its output:" >&2
  cat "$out" "${out%.*}.err" 2>/dev/null >&2 || true
  return 1
}

# Start `playhead serve` for a run: binary $1, data dir $2, output to
# $3.out and $3.err; any further arguments wrap the command (a profiler).
# Pinned to CPU 0, on a free port, fsync always unless PLAYHEAD_FSYNC says
# otherwise, warnings only, the bench keys; other PLAYHEAD_* variables set by
# the caller pass through. Waits until it listens (60 s at most, for
# profilers); sets PORT and SERVER.
serve_playhead() {
  local bin=$1 data=$2 log=$3
  shift 3
  PORT=$(free_port)
  PLAYHEAD_FSYNC=${PLAYHEAD_FSYNC:-always} PLAYHEAD_INGEST_KEY=$BENCH_INGEST_KEY \
    PLAYHEAD_READ_KEY=$BENCH_READ_KEY PLAYHEAD_ADMIN_KEY=$BENCH_ADMIN_KEY RUST_LOG=warn \
    start_bg taskset -c 0 "$@" "$bin" serve --listen "127.0.0.1:$PORT" --data-dir "$data" \
    > "$log.out" 2> "$log.err"
  SERVER=$BG_PID
  wait_listening "$log.out" 60
}

# Start bench/bare's `bare-handler` ($BARE, set by the script) on CPU 0 on
# a free port, in a temp dir of its own; `start_bare durable` starts the
# durable floor, its log in that dir. Sets PORT and SERVER.
start_bare() {
  new_tmp
  PORT=$(free_port)
  local args=()
  [[ ${1:-} != durable ]] || args=(--durable "$TMP_DIR/log")
  start_bg taskset -c 0 "$BARE" "${args[@]}" "127.0.0.1:$PORT" > "$TMP_DIR/server.out" 2> "$TMP_DIR/server.err"
  SERVER=$BG_PID
  wait_listening "$TMP_DIR/server.out"
}

# Wait until something accepts connections on 127.0.0.1:$1 (10 s at most).
wait_port() {
  local port=$1 _
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $port" >&2
  return 1
}

# P1's warm-up: serve AUDIENCE ($1) pixel sessions (bench/pixel_check.lua,
# whose fixed seed gives the measured run that follows the same viewers and
# videos) to the server on $PORT for P1_WARM seconds (default 40; 0: none),
# not counted, so that the measured beacons go to sessions it already knows.
# 40 s is longer than a session's row may lag (ROW_DEFER_MS, 30 s) plus a
# check's 6 s, so the measured run pays the rows' rewrites at their steady
# rate. $2: wrk's connections (default 64).
P1_WARM=${P1_WARM:-40}
pixel_warm_up() {
  [[ $P1_WARM == 0 ]] && return
  taskset -c 1 wrk -t1 -c"${2:-64}" -d"${P1_WARM}s" -s bench/pixel_check.lua \
    "http://127.0.0.1:$PORT" -- "$1" > /dev/null
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# The median of the array named $1.
median_of() { local -n values=$1; printf '%s\n' "${values[@]}" | median; }

# $1 / $2, printed with format $3 (default %.3f).
ratio() { awk -v a="$1" -v b="$2" -v f="${3:-%.3f}" 'BEGIN {printf f, a/b}'; }

# Resident set size of a process, KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# One line on what was measured and where.
machine_line() {
  local dirty=""
  git diff --quiet HEAD -- crates bench/bare bench/tools Cargo.lock 2>/dev/null || dirty=" with uncommitted changes"
  echo "$(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD)$dirty, $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average before the run: $LOAD_BEFORE"
}
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# Fixed keys for the runs that need them (zero-config Playhead takes them
# from the environment).
BENCH_INGEST_KEY=bench-ingest-key
BENCH_READ_KEY=bench-read-key-0123456789abcdef
BENCH_ADMIN_KEY=bench-admin-key-0123456789abcdef

# CPU time (user + system, clock ticks) of a process and its children
# (nginx's worker is a child of the master; Playhead's threads are counted
# in its own /proc/PID/stat).
cpu_ticks() {
  local total=0 p t
  for p in "$1" $(pgrep -P "$1" || true); do
    t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
    total=$((total + t))
  done
  echo "$total"
}
CLK_TCK=$(getconf CLK_TCK)
