#!/usr/bin/env python3
"""Micro-benchmark behind commit c9689e9: rewriting a stored session row with
Playhead's full upsert (every column set, so every index entry rewritten)
against an UPDATE of only the columns that change. A `sessions` table with
Playhead's schema and indexes, 20,000 rows with 1.5 KB summaries, updated in
random order in transactions of 64, fsync off; 3 alternating rounds; prints
microseconds per row. Python's own sqlite3, not Playhead's bundled SQLite:
the ratio is what matters. Usage: python3 bench/upsert_micro.py
"""
import sqlite3, time, os, random
import tempfile
path=os.path.join(tempfile.mkdtemp(), 'ub.sqlite')
for suffix in ('','-wal','-shm'):
    try: os.remove(path+suffix)
    except FileNotFoundError: pass
c=sqlite3.connect(path, isolation_level=None)
c.execute("PRAGMA journal_mode=WAL"); c.execute("PRAGMA synchronous=OFF")
c.executescript("""
CREATE TABLE sessions (property TEXT NOT NULL, id TEXT NOT NULL, protocol TEXT NOT NULL, video_id TEXT, viewer_id TEXT,
 open INTEGER NOT NULL, failed INTEGER NOT NULL, started_at INTEGER NOT NULL, last_event_at INTEGER NOT NULL,
 last_received_at INTEGER NOT NULL, ended_at INTEGER, summary TEXT NOT NULL, playback INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (property, id));
CREATE INDEX sessions_by_start ON sessions (property, started_at, id);
CREATE INDEX sessions_by_received ON sessions (property, last_received_at);
CREATE INDEX open_sessions_by_start ON sessions (property, started_at) WHERE open = 1;
""")
N=20000
summ='x'*1500
c.execute("BEGIN")
for i in range(N):
    c.execute("INSERT INTO sessions VALUES ('default', ?, 'adobe', 'v', 'u', 1, 0, ?, ?, ?, NULL, ?, 1)", (f"{i:064x}", 1000+i, 1000+i, 1000+i, summ))
c.execute("COMMIT")
full="""INSERT INTO sessions (property, id, protocol, video_id, viewer_id, open, failed, started_at, last_event_at, last_received_at, ended_at, summary, playback)
 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
 ON CONFLICT (property, id) DO UPDATE SET protocol = excluded.protocol, video_id = excluded.video_id, viewer_id = excluded.viewer_id,
 open = excluded.open, failed = excluded.failed, started_at = excluded.started_at, last_event_at = excluded.last_event_at,
 last_received_at = excluded.last_received_at, ended_at = excluded.ended_at, summary = excluded.summary, playback = excluded.playback"""
part="""UPDATE sessions SET failed = ?3, last_event_at = ?4, last_received_at = ?5, summary = ?6 WHERE property = ?1 AND id = ?2"""
def run(kind, t0):
    order=list(range(N)); random.shuffle(order)
    s=time.perf_counter()
    for g in range(0, N, 64):
        c.execute("BEGIN")
        for i in order[g:g+64]:
            if kind=='full':
                c.execute(full, ('default', f"{i:064x}", 'adobe', 'v', 'u', 1, 0, 1000+i, t0+i, t0+i, None, summ, 1))
            else:
                c.execute(part, ('default', f"{i:064x}", 0, t0+i, t0+i, summ))
        c.execute("COMMIT")
    return (time.perf_counter()-s)/N*1e6
t=10**9
for r in range(3):
    t+=10**6; a=run('full', t); t+=10**6; b=run('part', t)
    print(f"round {r}: full upsert {a:.1f} us/row, update of changed columns {b:.1f} us/row")
