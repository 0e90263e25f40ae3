#!/usr/bin/env python3
"""Check Playhead's answers to P5's questions against the raw table.

Usage: bench/p5_check.py PORT READ_KEY DATA_DIR

Asks a running `playhead serve --data-dir DATA_DIR/store` for the overview,
the 1-h rebuffer_percentage timeseries and the viewer_experience_score
breakdown by browser over DATA_DIR/range, computes the same numbers from
DATA_DIR/raw.sqlite (concurrent viewers by sweeping every session's span),
and prints each pair with its relative difference. Exit status 1 when a
number that Playhead computes exactly differs, or a sketched one (unique
viewers, startup percentiles) is off by more than 2 %.
"""
import datetime
import json
import sqlite3
import sys
import urllib.request

port, key, data = sys.argv[1], sys.argv[2], sys.argv[3]
lo, hi = (int(x) for x in open(f"{data}/range").read().split())


def api(path):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}&from={lo}&to={hi}",
        headers={"Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)


db = sqlite3.connect(f"{data}/raw.sqlite")
where = "property = 'default' AND started_at >= ? AND started_at < ?"
q = lambda sql: db.execute(sql, (lo, hi)).fetchall()
failures = 0


def compare(name, got, want, tolerance=1e-9):
    global failures
    if want is None or got is None:
        ok = got == want
        diff = "-"
    else:
        diff = abs(got - want) / max(abs(want), 1e-12)
        ok = diff <= tolerance
        diff = f"{diff:.2e}"
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {name}: playhead {got}, raw {want}, relative difference {diff}")


m = api("/data/v1/metrics?")["metrics"]
(views, plays, requested, failed, watch, rebuffer, viewers, play_viewers, vxs) = q(
    f"""SELECT count(*), sum(played), sum(play_requested), sum(failed), sum(watch_time_ms),
              sum(rebuffer_time_ms), count(DISTINCT viewer_id),
              count(DISTINCT CASE WHEN played THEN viewer_id END), avg(viewer_experience_score)
        FROM sessions WHERE {where}"""
)[0]
compare("views", m["views"], views)
compare("plays", m["plays"], plays)
compare("playback_failure_percentage", m["playback_failure_percentage"], 100 * failed / requested)
compare("watch_time_ms", m["watch_time_ms"], watch)
compare("rebuffer_percentage", m["rebuffer_percentage"], rebuffer / watch)
compare("viewer_experience_score", m["viewer_experience_score"], vxs)
compare("unique_viewers (sketch, 2 %)", m["unique_viewers"], viewers, 0.02)
compare("unique_plays (sketch, 2 %)", m["unique_plays"], play_viewers, 0.02)
startups = [r[0] for r in q(f"SELECT startup_time_ms FROM sessions WHERE {where} AND startup_time_ms IS NOT NULL ORDER BY 1")]
for p in (50, 90, 95):
    want = startups[max(1, -(-p * len(startups) // 100)) - 1]
    compare(f"startup_time_ms_p{p} (sketch, 2 %)", m[f"startup_time_ms_p{p}"], want, 0.02)
errors = dict(q(f"SELECT error_code, count(*) FROM sessions WHERE {where} AND error_code IS NOT NULL GROUP BY 1"))
for code, n in sorted(errors.items()):
    compare(f"errors[{code}]", m["errors"].get(code), n)
changes = []
spans = db.execute(
    "SELECT started_at, ended_at FROM sessions WHERE property = 'default' AND started_at < ? AND ended_at >= ?",
    (hi, lo),
).fetchall()
for s, e in spans:
    changes.append((s, 1))
    changes.append((e + 1, -1))
changes.sort()
# The count at `lo` (every change at or before it), then after each change inside [lo, hi).
open_now = sum(d for t, d in changes if t <= lo)
best = open_now
for t, d in changes:
    if lo < t < hi:
        open_now += d
        best = max(best, open_now)
compare("concurrent_viewers", m["concurrent_viewers"], best)

ts = api("/data/v1/metrics/timeseries?metric=rebuffer_percentage&interval=1h")["points"]
hours = dict(q(f"SELECT started_at / 3600000 * 3600000, sum(rebuffer_time_ms) / sum(watch_time_ms) FROM sessions WHERE {where} GROUP BY 1"))
worst = 0.0
for p in ts:
    t = int(datetime.datetime.fromisoformat(p["t"].replace("Z", "+00:00")).timestamp() * 1000)
    want = hours.get(t)
    if want is not None:
        worst = max(worst, abs(p["value"] - want) / max(abs(want), 1e-12))
print(f"{'ok  ' if worst <= 1e-9 else 'FAIL'} timeseries: {len(ts)} points, worst relative difference {worst:.2e}")
failures += worst > 1e-9

rows = api("/data/v1/metrics/breakdown?metric=viewer_experience_score&by=browser&limit=12")["rows"]
by = {b: (v, n) for b, v, n in q(f"SELECT browser, avg(viewer_experience_score), count(*) FROM sessions WHERE {where} AND browser IS NOT NULL AND browser != '' GROUP BY 1")}
for r in rows:
    compare(f"breakdown[{r['key']}] viewer_experience_score", r["value"], by[r["key"]][0])
    compare(f"breakdown[{r['key']}] views", r["views"], by[r["key"]][1])
sys.exit(1 if failures else 0)
