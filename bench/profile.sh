#!/usr/bin/env bash
# Profiles behind the "what limits it" paragraphs of bench/RESULTS.md. On
# this VM `perf stat -e instructions true` says "not supported", so CPU
# profiles are valgrind's callgrind (instruction counts: the same totals
# whatever else the machine runs) and `perf record -e cpu-clock` (samples
# on a timer: where the time goes, the kernel's share included); memory
# profiles are valgrind's massif.
#
# Usage: [PROFILE_BIN=path] bench/profile.sh p1|p1-perf|p2|p2-threads|p2-perf|p2-idle|p3|p4|p5 [SECONDS]
#   PROFILE_BIN: another build of playhead to profile (default: this tree's).
#   p1: `playhead serve` under callgrind (one file per thread), 4,000 pixel
#       sessions watching, then SECONDS (default 20) of wrk with
#       bench/pixel_check.lua; counters are zeroed after the set-up.
#   p1-perf: a normal Playhead at P1's load as bench/p1_pixel.sh runs it
#       (an audience of AUDIENCE sessions, default 150,000, served for
#       P1_WARM seconds first, default 40, not recorded), under `perf
#       record -e cpu-clock` with DWARF call graphs for SECONDS: each
#       thread's share, and what the writer spends its time in (inclusive).
#   p2: the same with 2,000 Adobe sessions and bench/adobe_events.lua, then
#       the bare handler under callgrind with the same wrk load (its
#       instructions per request are the stack's floor).
#   p2-threads: a normal Playhead at P2's peak load (wrk, 20,000 sessions),
#       then the bare handler: each thread's user and system time and
#       context switches per request, from /proc.
#   p2-perf: the same load under `perf record -e cpu-clock` (sampling on
#       a timer: this VM has no hardware counters): each thread's share,
#       the HTTP worker's functions, the kernel's send, receive, fsync and scheduling.
#   p2-idle: the same load with `perf record -e sched:sched_switch` on the
#       server's core (needs tracefs): how long the core sat idle, and which
#       thread ran when it woke (bench/sched_idle.py), for Playhead and then
#       the bare handler.
#   p3: a normal (not instrumented) Playhead at RATE Adobe events/s
#       (default 5,000; P3's rate is half of P2's peak) from `paced` for
#       SECONDS: `perf trace` of every thread's fsync and fdatasync calls,
#       with their durations, and a count of the writer's writes (when
#       tracefs is mounted), and the server's own commit histograms from
#       /metrics.
#   p4: `playhead serve` under massif while `open-sessions` opens 20,000
#       Adobe sessions: the heap at its peak, by allocation site.
#   p5: `playhead serve` under callgrind answering the overview and the
#       timeseries once over a 100,000-session, 30-day data set (`p5 build`).
# Outputs go to bench/out/profile-<name>-*; the script prints the summary
# (callgrind_annotate / ms_print / strace -c). Asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
WHAT=${1:?usage: bench/profile.sh p1|p1-perf|p2|p2-threads|p2-perf|p2-idle|p3|p4|p5 [SECONDS]}
SECS=${2:-20}
OUT=bench/out
mkdir -p "$OUT"
ensure_cmd valgrind valgrind
ensure_cmd wrk wrk
cargo build --release -q -p playhead -p playhead-bench -p playhead-bench-bare
BIN=${PROFILE_BIN:-target/release/playhead}
STAMP=$(date +%s)
PREFIX=$OUT/profile-$WHAT-$STAMP

# Start Playhead, possibly under a tool: $1 = data dir, rest = wrapper.
start_server() {
  local data=$1
  shift
  PLAYHEAD_REQUEST_TIMEOUT_S=3600 serve_playhead "$BIN" "$data" "$PREFIX.server" "$@" || exit 1
}

annotate() {
  local f
  for f in "$PREFIX".callgrind.out-*; do
    echo "== $f (inclusive, top 40)"
    callgrind_annotate --inclusive=yes "$f" 2>/dev/null | head -80 || true
  done | tee "$PREFIX.annotate.txt"
}

callgrind=(valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$PREFIX.callgrind.out")

case $WHAT in
  p1 | p2)
    new_tmp
    start_server "$TMP_DIR/data" "${callgrind[@]}"
    if [[ $WHAT == p1 ]]; then
      taskset -c 1 wrk -t1 -c16 -d10s -s bench/pixel_check.lua "http://127.0.0.1:$PORT" -- 4000 > /dev/null
      callgrind_control -z "$SERVER" > /dev/null
      taskset -c 1 wrk -t1 -c64 -d"${SECS}s" -s bench/pixel_check.lua "http://127.0.0.1:$PORT" -- 4000 \
        | tee "$PREFIX.wrk.txt"
    else
      taskset -c 1 target/release/open-sessions --target "127.0.0.1:$PORT" --protocol adobe \
        --count 2000 --connections 16 --sids-out "$TMP_DIR/sids.txt"
      callgrind_control -z "$SERVER" > /dev/null
      taskset -c 1 wrk -t1 -c64 -d"${SECS}s" -s bench/adobe_events.lua "http://127.0.0.1:$PORT" \
        -- "$TMP_DIR/sids.txt" | tee "$PREFIX.wrk.txt"
    fi
    stop_bg "$SERVER"
    annotate
    if [[ $WHAT == p2 ]]; then
      # The reference under the same tool and load: instructions per request.
      PORT=$(free_port)
      start_bg taskset -c 0 valgrind --tool=callgrind --separate-threads=yes \
        --callgrind-out-file="$PREFIX.bare.callgrind.out" target/release/bare-handler "127.0.0.1:$PORT" \
        > "$PREFIX.bare.out" 2> "$PREFIX.bare.err"
      SERVER=$BG_PID
      wait_listening "$PREFIX.bare.out"
      taskset -c 1 wrk -t1 -c64 -d"${SECS}s" -s bench/adobe_events.lua "http://127.0.0.1:$PORT" \
        -- "$TMP_DIR/sids.txt" | tee "$PREFIX.bare.wrk.txt"
      stop_bg "$SERVER"
      for f in "$PREFIX".bare.callgrind.out*; do
        echo "== $f (inclusive, top 40)"
        callgrind_annotate --inclusive=yes "$f" 2>/dev/null | head -80 || true
      done | tee "$PREFIX.bare.annotate.txt"
    fi
    ;;
  p3)
    new_tmp
    start_server "$TMP_DIR/data"
    taskset -c 1 target/release/open-sessions --target "127.0.0.1:$PORT" --protocol adobe \
      --count 20000 --sids-out "$TMP_DIR/sids.txt"
    writer=$(grep -l '^playhead-writer' /proc/"$SERVER"/task/*/comm | head -1 | cut -d/ -f5)
    curl -s "http://127.0.0.1:$PORT/metrics" > "$PREFIX.metrics-before.txt"
    # perf trace reads syscall tracepoints in the kernel (strace's ptrace
    # stops slow the writer so much that the latencies change); it needs
    # tracefs (mount -t tracefs nodev /sys/kernel/tracing).
    # Tracing every pwrite64 slows the writer (hundreds of thousands of
    # calls), so those are only counted (perf stat on the tracepoint) and
    # only fsync/fdatasync are traced with their durations, in every thread
    # (the fsync thread's make commits durable; the checkpoint's, pages
    # copied into the database).
    TRACE=""
    COUNT=""
    if perf trace -e fdatasync -- true > /dev/null 2>&1; then
      start_bg perf trace -p "$SERVER" -e fdatasync,fsync -o "$PREFIX.trace.txt"
      TRACE=$BG_PID
      start_bg perf stat -t "$writer" -e syscalls:sys_enter_pwrite64,syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync \
        -o "$PREFIX.syscall-counts.txt"
      COUNT=$BG_PID
      sleep 1
    else
      echo "perf trace does not work here (tracefs not mounted?): commit histograms only" >&2
    fi
    taskset -c 1 target/release/paced --target "127.0.0.1:$PORT" --sids "$TMP_DIR/sids.txt" \
      --rate "${RATE:-5000}" --duration "$SECS" --warmup 1 | tee "$PREFIX.paced.txt"
    if [[ -n $TRACE ]]; then
      kill -INT "$TRACE" "$COUNT"
      sleep 1
      stop_bg "$TRACE"
      stop_bg "$COUNT"
      grep -E "syscalls:|seconds time" "$PREFIX.syscall-counts.txt"
    fi
    curl -s "http://127.0.0.1:$PORT/metrics" > "$PREFIX.metrics-after.txt"
    stop_bg "$SERVER"
    python3 - "$PREFIX" <<'PY' | tee "$PREFIX.summary.txt"
import re, sys
prefix = sys.argv[1]
try:
    calls = {}
    for line in open(prefix + ".trace.txt"):
        m = re.search(r"\(\s*([0-9.]+) ms\): (?:(\S+)/\d+ )?(\w+)\(", line)
        if m:
            calls.setdefault(f"{m.group(2) or '?'} {m.group(3)}", []).append(float(m.group(1)))
    print("== fsync and fdatasync calls by thread (perf trace)")
    for name, v in sorted(calls.items()):
        v.sort()
        q = lambda p: v[min(len(v) - 1, int(p * len(v)))]
        print(f"{name:26} calls {len(v):7d} total {sum(v) / 1000:8.3f} s  p50 {q(0.5):.3f} ms  p90 {q(0.9):.3f} ms  p99 {q(0.99):.3f} ms  max {v[-1]:.3f} ms")
except FileNotFoundError:
    pass
def hist(path, name):
    out = {}
    for line in open(path):
        m = re.match(rf"playhead_{name}_(sum|count) ([0-9.e+]+)", line)
        if m:
            out[m.group(1)] = float(m.group(2))
        m = re.match(rf'playhead_{name}_bucket\{{le="([^"]+)"\}} ([0-9.e+]+)', line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out
print("== the server's commit histograms during the run (/metrics after - before)")
for name in ("commit_seconds", "commit_group_size"):
    a, b = hist(prefix + ".metrics-before.txt", name), hist(prefix + ".metrics-after.txt", name)
    d = {k: b[k] - a.get(k, 0) for k in b}
    n = d.get("count", 0)
    print(f"{name}: {n:.0f} groups, mean {d.get('sum', 0) / max(n, 1):.6g}")
    for k in sorted((k for k in d if k not in ("sum", "count")), key=lambda k: float(k)):
        print(f"  le {k}: {d[k] / max(n, 1) * 100:.1f} %")
PY
    ;;
  p1-perf)
    ensure_cmd perf linux-perf
    new_tmp
    start_server "$TMP_DIR/data"
    audience=${AUDIENCE:-150000}
    pixel_warm_up "$audience"
    taskset -c 1 wrk -t1 -c64 -d"$((SECS + 3))s" -s bench/pixel_check.lua "http://127.0.0.1:$PORT" \
      -- "$audience" > "$PREFIX.wrk.txt" &
    wrk_pid=$!
    sleep 1
    # DWARF call graphs: the release build keeps no frame pointers.
    taskset -c 1 perf record -q -e cpu-clock -F 500 --call-graph dwarf,16384 -p "$SERVER" \
      -o "$PREFIX.perf.data" -- sleep "$SECS" 2> /dev/null
    wait "$wrk_pid"
    stop_bg "$SERVER"
    grep -E "^Requests/sec|^beacons" "$PREFIX.wrk.txt"
    {
      perf report -i "$PREFIX.perf.data" --no-children --sort comm,dso -g none -q --stdio 2> /dev/null | sed -n 1,12p
      echo "-- the writer, inclusive (% of all samples)"
      perf report -i "$PREFIX.perf.data" --children --comm playhead-writer --sort sym -g none -q --stdio 2> /dev/null \
        | grep -E '\] (playhead|<playhead|hashbrown|sqlite3_step|rusqlite)' | sed -n 1,40p | cut -c1-160
    } | tee "$PREFIX.txt"
    ;;
  p2-threads | p2-perf | p2-idle)
    # p2-threads: where the server's time goes at P2's peak, per thread (no
    # tool attached): user and system time and context switches of each
    # thread over SECONDS of wrk, per request. p2-perf: `perf record -e
    # cpu-clock` (timer sampling, which works where hardware counters do
    # not) over the same load, by thread and by function. Both run Playhead
    # (20,000 sessions), then the bare handler under the same load.
    [[ $WHAT == p2-threads ]] || ensure_cmd perf linux-perf
    if [[ $WHAT == p2-idle ]] && ! perf record -q -e sched:sched_switch -o /dev/null -- true > /dev/null 2>&1; then
      echo "perf cannot record sched:sched_switch here: tracefs must be mounted" \
        "(mount -t tracefs nodev /sys/kernel/tracing) and tracepoints readable" >&2
      exit 1
    fi
    new_tmp
    start_server "$TMP_DIR/data"
    taskset -c 1 target/release/open-sessions --target "127.0.0.1:$PORT" --protocol adobe \
      --count 20000 --sids-out "$TMP_DIR/sids.txt"
    measure() { # $1 = label; the server is $SERVER on $PORT
      local label=$1 before=$TMP_DIR/$1.before after=$TMP_DIR/$1.after
      taskset -c 1 wrk -t1 -c64 -d"$((SECS + 4))s" -s bench/adobe_events.lua \
        "http://127.0.0.1:$PORT" -- "$TMP_DIR/sids.txt" > "$PREFIX.$label.wrk.txt" &
      local wrk_pid=$!
      sleep 2
      if [[ $WHAT == p2-perf ]]; then
        taskset -c 1 perf record -q -e cpu-clock -F 2000 -g -p "$SERVER" -o "$PREFIX.$label.perf.data" \
          -- sleep "$SECS" 2> /dev/null
      elif [[ $WHAT == p2-idle ]]; then
        taskset -c 1 perf record -q -e sched:sched_switch -C 0 -o "$PREFIX.$label.perf.data" \
          -- sleep "$SECS" 2> /dev/null
      else
        thread_stats > "$before"
        sleep "$SECS"
        thread_stats > "$after"
      fi
      wait "$wrk_pid"
      local rate
      rate=$(awk '/^Requests\/sec/ {print $2}' "$PREFIX.$label.wrk.txt")
      echo "== $label: $rate requests/s (wrk over $((SECS + 4)) s)"
      if [[ $WHAT == p2-idle ]]; then
        perf script -i "$PREFIX.$label.perf.data" -F time,event,trace 2> /dev/null | python3 bench/sched_idle.py
      elif [[ $WHAT == p2-perf ]]; then
        perf report -i "$PREFIX.$label.perf.data" --no-children --sort comm,dso -g none -q --stdio 2> /dev/null | sed -n 1,12p
        echo "-- the HTTP worker's functions, self time (% of all samples)"
        perf report -i "$PREFIX.$label.perf.data" --no-children --comm tokio-rt-worker --sort sym -g none -q \
          --stdio 2> /dev/null | sed -n 1,40p | cut -c1-160
        echo "-- the kernel's send, receive, fsync and scheduling, with what they call (% of all samples)"
        perf report -i "$PREFIX.$label.perf.data" --children --sort sym -g none -q --stdio 2> /dev/null \
          | grep -E '\] (do_writev|__sys_recvfrom|do_epoll_wait|schedule|__x64_sys_futex|__x64_sys_fdatasync)$' || true
      else
        join -1 1 -2 1 <(sort "$before") <(sort "$after") | awk -v r="$rate" -v hz="$CLK_TCK" -v secs="$SECS" '
          BEGIN { printf "%-18s %7s %7s %9s %9s %12s %12s\n", "thread", "user %", "sys %", "user µs", "sys µs", "vol. switch", "invol. sw." }
          { u = ($8 - $3) / hz / secs; s = ($9 - $4) / hz / secs
            if (u + s >= 0.005) printf "%-18s %7.1f %7.1f %9.2f %9.2f %12.3f %12.3f\n", $2, 100 * u, 100 * s,
              1e6 * u / r, 1e6 * s / r, ($10 - $5) / r / secs, ($11 - $6) / r / secs }
          END { print "(µs and switches are per request, at the rate above)" }'
      fi | tee "$PREFIX.$label.txt"
    }
    # tid comm utime stime voluntary nonvoluntary, one line per thread.
    thread_stats() {
      local t
      for t in /proc/"$SERVER"/task/*; do
        echo "${t##*/} $(tr ' ' '_' < "$t/comm") $(awk '{print $14, $15}' "$t/stat")" \
          "$(awk '/^voluntary_ctxt/ {v = $2} /^nonvoluntary_ctxt/ {n = $2} END {print v, n}' "$t/status")"
      done
    }
    measure playhead
    stop_bg "$SERVER"
    PORT=$(free_port)
    start_bg taskset -c 0 target/release/bare-handler "127.0.0.1:$PORT" > "$PREFIX.bare.out" 2> "$PREFIX.bare.err"
    SERVER=$BG_PID
    wait_listening "$PREFIX.bare.out"
    measure bare
    stop_bg "$SERVER"
    ;;
  p4)
    new_tmp
    start_server "$TMP_DIR/data" valgrind --tool=massif --threshold=1.0 --massif-out-file="$PREFIX.massif.out"
    taskset -c 1 target/release/open-sessions --target "127.0.0.1:$PORT" --protocol adobe \
      --count 20000 --connections 16
    sleep 2
    stop_bg "$SERVER"
    ms_print "$PREFIX.massif.out" > "$PREFIX.ms_print.txt"
    head -120 "$PREFIX.ms_print.txt"
    ;;
  p5)
    new_tmp
    taskset -c 1 target/release/p5 build --dir "$TMP_DIR/p5" --sessions 100000
    start_server "$TMP_DIR/p5/store" "${callgrind[@]}"
    read -r from to < "$TMP_DIR/p5/range"
    callgrind_control -z "$SERVER" > /dev/null
    for q in "metrics?" "metrics/timeseries?metric=rebuffer_percentage&interval=1h&"; do
      curl -s -o /dev/null -w "$q %{http_code} %{time_total}s\n" -H "Authorization: Bearer $BENCH_READ_KEY" \
        "http://127.0.0.1:$PORT/data/v1/${q}from=$from&to=$to"
    done
    stop_bg "$SERVER"
    annotate
    ;;
  *)
    echo "unknown profile $WHAT" >&2
    exit 2
    ;;
esac
