// The real `playhead` binary ($PLAYHEAD_BIN) on 127.0.0.1 with a temporary
// data dir, and a seeded dataset posted through the native protocol
// (spec/protocols.md §6), as a player would send it.

import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

export const INGEST_KEY = 'test-ingest-key';
export const READ_KEY = 'test-read-key';

/** Start `playhead serve`; resolves once it prints `listening on`. */
export async function startServer() {
  const bin = process.env.PLAYHEAD_BIN;
  if (!bin) {
    throw new Error('PLAYHEAD_BIN is not set: build the binary (cargo build -p playhead) and export PLAYHEAD_BIN=<target>/debug/playhead');
  }
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    throw new Error(`PLAYHEAD_BIN=${bin} is not an executable file`);
  }
  const dataDir = mkdtempSync(path.join(tmpdir(), 'playhead-web-'));
  const child = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir], {
    env: {
      // The server refuses unknown PLAYHEAD_* variables (PLAYHEAD_BIN is one).
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PLAYHEAD_'))),
      PLAYHEAD_INGEST_KEY: INGEST_KEY,
      PLAYHEAD_READ_KEY: READ_KEY,
      PLAYHEAD_ADMIN_KEY: 'test-admin-key',
      PLAYHEAD_FSYNC: 'off',
      RUST_LOG: 'warn',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error('playhead did not print `listening on` within 30 s')), 30_000);
    child.once('exit', (code) => reject(new Error(`playhead exited (${code}) before listening`)));
    lines.on('line', (line) => {
      const m = /^listening on (http:\/\/\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** GET from the read API with the read key; fails on anything but 200. */
export async function api(base, pathAndQuery) {
  const resp = await fetch(base + pathAndQuery, { headers: { Authorization: `Bearer ${READ_KEY}` } });
  const text = await resp.text();
  if (resp.status !== 200) throw new Error(`GET ${pathAndQuery}: ${resp.status} ${text}`);
  return JSON.parse(text);
}

// Strings a hostile player could send: shown as text, they must run nothing.
export const HOSTILE_TITLE = '<script>window.__pwned = "title"</script>Bees & <b>honey</b>';
export const HOSTILE_VIDEO = '<img src=x onerror="window.__pwned=\'video\';alert(1)">';
export const HOSTILE_MESSAGE = '<img src=y onerror="alert(2)"> segment 7 timed out';

const UA = {
  chrome: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  firefox: 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0',
  safari: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15',
  android: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36',
};

/** A session's events from `t0`: a full view, a fatal failure, an exit before start, or a live one left open. */
function events(t0, kind) {
  const out = [];
  let t = t0;
  const add = (dt, type, extra = {}) => {
    t += dt;
    out.push({ seq: out.length + 1, ts: t, type, ...extra });
  };
  add(0, 'viewinit', { playhead: 0 });
  add(300, 'play', { playhead: 0 });
  if (kind === 'exit') {
    add(4000, 'viewend', { playhead: 0 });
    return out;
  }
  add(200, 'renditionchange', { bitrate_bps: 2_500_000, width: 1280, height: 720, playhead: 0 });
  add(700 + (t0 % 500), 'playing', { playhead: 0 });
  if (kind === 'live') {
    add(5000, 'heartbeat', { playhead: 5, dropped_frames: 0, total_frames: 150 });
    return out;
  }
  add(10_000, 'heartbeat', { playhead: 10, dropped_frames: 2, total_frames: 300 });
  add(2000, 'waiting', { playhead: 12 });
  add(1500, 'playing', { playhead: 12 });
  add(5000, 'seeking', { playhead: 17 });
  add(800, 'seeked', { playhead: 40 });
  add(10, 'playing', { playhead: 40 });
  add(5000, 'adbreakstart', { playhead: 45 });
  add(0, 'adstart', { ad_id: 'ad-bank-15', duration_s: 15, playhead: 0 });
  add(300, 'playing', { playhead: 0 });
  add(3750, 'adquartile', { quartile: 1, playhead: 3.75 });
  add(3750, 'adquartile', { quartile: 2, playhead: 7.5 });
  add(3750, 'adquartile', { quartile: 3, playhead: 11.25 });
  add(3750, 'adcomplete', { playhead: 15 });
  add(0, 'adbreakend', { playhead: 45 });
  add(0, 'playing', { playhead: 45 });
  add(3000, 'error', { code: 'NET_SEGMENT_TIMEOUT', message: HOSTILE_MESSAGE, fatal: false, playhead: 48 });
  if (kind === 'fatal') {
    add(2000, 'error', { code: 'MEDIA_ERR_DECODE', message: 'decoder failed', fatal: true, playhead: 50 });
    add(500, 'viewend', { playhead: 50 });
    return out;
  }
  add(7000, 'pause', { playhead: 55 });
  add(3000, 'playing', { playhead: 55 });
  add(5000, 'ended', { playhead: 60 });
  add(100, 'viewend', { playhead: 60 });
  return out;
}

const MIN = 60_000;

/**
 * The seeded sessions: when they start (ms before now), their video,
 * browser and kind. Two started hours ago (outside "last hour"), two are
 * live (open, events seconds ago), one carries the hostile strings.
 */
export function plan(now) {
  return [
    { id: 'sess-ok-1', ago: 20 * MIN, video: 'intro-video', ua: UA.chrome, kind: 'ok' },
    { id: 'sess-ok-2', ago: 15 * MIN, video: 'intro-video', ua: UA.firefox, kind: 'ok' },
    { id: 'sess-fatal-1', ago: 10 * MIN, video: 'football-highlights', ua: UA.safari, kind: 'fatal' },
    { id: 'sess-exit-1', ago: 5 * MIN, video: 'football-highlights', ua: UA.chrome, kind: 'exit' },
    { id: 'sess-hostile', ago: 8 * MIN, video: HOSTILE_VIDEO, ua: UA.firefox, kind: 'ok', title: HOSTILE_TITLE },
    { id: 'sess-old-1', ago: 180 * MIN, video: 'intro-video', ua: UA.chrome, kind: 'ok' },
    { id: 'sess-old-2', ago: 150 * MIN, video: 'football-highlights', ua: UA.android, kind: 'fatal' },
    { id: 'sess-live-1', ago: 7_000, video: 'live-stream', ua: UA.chrome, kind: 'live', live: true },
    { id: 'sess-live-2', ago: 7_500, video: 'intro-video', ua: UA.safari, kind: 'live', live: true },
  ].map((s, i) => ({ ...s, t0: now - s.ago, viewer: `viewer-${i % 6}` }));
}

/** A heartbeat for each live session now, so that it counts as watching "now" (the last 60 s). */
export async function touchLive(base, sessions) {
  for (const s of sessions.filter((x) => x.live)) {
    s.seq = (s.seq ?? 100) + 1;
    const body = {
      property: INGEST_KEY,
      session: { id: s.id, video_id: s.video, viewer_id: s.viewer, content_type: 'live' },
      events: [{ seq: s.seq, ts: Date.now(), type: 'heartbeat', playhead: 5 + s.seq }],
    };
    const resp = await fetch(`${base}/v1/events`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'User-Agent': s.ua },
      body: JSON.stringify(body),
    });
    if (resp.status !== 202) throw new Error(`heartbeat of ${s.id}: ${resp.status} ${await resp.text()}`);
  }
}

/** Post every planned session; returns the plan. */
export async function seed(base, now = Date.now()) {
  const sessions = plan(now);
  for (const s of sessions) {
    const body = {
      property: INGEST_KEY,
      session: {
        id: s.id,
        video_id: s.video,
        viewer_id: s.viewer,
        video_duration_s: s.live ? undefined : 60,
        content_type: s.live ? 'live' : 'vod',
        player: { name: 'test-player', version: '1.0' },
        custom: s.title ? { title: s.title, plan: 'free' } : { plan: 'premium' },
      },
      events: events(s.t0, s.kind),
    };
    const resp = await fetch(`${base}/v1/events`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'User-Agent': s.ua },
      body: JSON.stringify(body),
    });
    if (resp.status !== 202) throw new Error(`seeding ${s.id}: ${resp.status} ${await resp.text()}`);
  }
  return sessions;
}
