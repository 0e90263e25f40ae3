#!/usr/bin/env bash
# A durability check under P2's load (not a benchmark): `kill -9` a release
# Playhead while wrk posts Adobe events (bench/adobe_events.lua), start it
# again on the same data directory, and compare every session's events as the
# query API serves them with the events stored in the log (the records of
# `event_blocks`, read here from the database file, and any `event_log` rows
# of older builds). Rows of open sessions are written late, so this
# exercises the heads recovered above `log_mark` when the store opens
# (crates/store/src/event_log.rs).
#
# Usage: bench/kill_check.sh [SESSIONS] [KILL_AFTER_S]   (defaults 2000 6.3)
# Prints wrk's count of answered requests, the events stored and the mark, and
# exits 1 if any session's events through the API differ from those stored.
# Traffic goes to 127.0.0.1 only; the run stops by itself (wrk runs 10 s).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
SESSIONS=${1:-2000}
KILL_AFTER=${2:-6.3}
ensure_cmd wrk wrk
cargo build --release -q -p playhead -p playhead-bench
BIN=target/release/playhead
new_tmp
serve_playhead "$BIN" "$TMP_DIR/data" "$TMP_DIR/server"
taskset -c 1 target/release/open-sessions --target "127.0.0.1:$PORT" --protocol adobe \
  --count "$SESSIONS" --sids-out "$TMP_DIR/sids.txt" >&2
taskset -c 1 wrk -t1 -c64 -d10s -s bench/adobe_events.lua "http://127.0.0.1:$PORT" \
  -- "$TMP_DIR/sids.txt" > "$TMP_DIR/wrk.txt" &
WRK=$!
sleep "$KILL_AFTER"
kill -9 "$SERVER"
wait "$WRK" || true
grep -E "requests in|Non-2xx" "$TMP_DIR/wrk.txt" || true
serve_playhead "$BIN" "$TMP_DIR/data" "$TMP_DIR/server2"
status=0
python3 - "$PORT" "$TMP_DIR/data/playhead.sqlite" "$BENCH_READ_KEY" <<'PY' || status=1
import collections, json, sqlite3, struct, sys, urllib.request
port, db_path, key = sys.argv[1], sys.argv[2], sys.argv[3]
db = sqlite3.connect(db_path)
rows = collections.Counter(dict(db.execute("SELECT session_id, count(*) FROM event_log GROUP BY session_id")))
# A block's records: length (u32), prev (i64), dedup key (u64), the lengths
# of the property and the session id (u32 each), those strings, the body.
for (records,) in db.execute("SELECT records FROM event_blocks ORDER BY id"):
    at = 0
    while at < len(records):
        n, _, _, plen, slen = struct.unpack_from("<IqQII", records, at)
        sid = records[at + 28 + plen : at + 28 + plen + slen].decode()
        rows[sid] += 1
        at += n
mark = db.execute("SELECT upto FROM log_mark").fetchone()[0]
print(f"stored: {sum(rows.values())} events of {len(rows)} sessions; log_mark {mark}")
bad = 0
for sid, n in rows.items():
    req = urllib.request.Request(f"http://127.0.0.1:{port}/data/v1/sessions/{sid}/events",
                                 headers={"Authorization": f"Bearer {key}"})
    got = len(json.load(urllib.request.urlopen(req))["events"])
    if got != n:
        bad += 1
        print(f"session {sid}: the API serves {got} events, {n} are stored")
print(f"{len(rows)} sessions checked, {bad} differ")
sys.exit(1 if bad else 0)
PY
stop_bg "$SERVER"
exit $status
