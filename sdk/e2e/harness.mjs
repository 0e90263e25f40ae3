// End-to-end harness: the real Playhead binary ($PLAYHEAD_BIN) on
// 127.0.0.1 with a temporary data dir, small static servers for the test
// pages and media (each port is its own origin), media made by Debian's
// ffmpeg at test time, and Debian's chromium driven by playwright-core.
// Nothing here is mocked: the browser plays real files and the SDK posts
// to the real server, whose query API the tests read back.

import { spawn, execFileSync } from 'node:child_process';
import { createServer, request as httpRequest } from 'node:http';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const SDK_ROOT = resolve(here, '..');
export const MEDIA_DIR = join(here, '.media');
export const INGEST_KEY = 'e2e-ingest-key';
export const READ_KEY = 'e2e-read-key';
const ADMIN_KEY = 'e2e-admin-key';
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

/** The real server. Fails loudly when PLAYHEAD_BIN is not set or not there. */
export async function startPlayhead() {
  const bin = process.env.PLAYHEAD_BIN;
  if (!bin) {
    throw new Error(
      'PLAYHEAD_BIN is not set: build the server (cargo build -p playhead) and export ' +
        'PLAYHEAD_BIN=<repo>/target/debug/playhead (scripts/test does this)',
    );
  }
  if (!existsSync(bin)) throw new Error(`PLAYHEAD_BIN=${bin} does not exist`);
  const dataDir = mkdtempSync(join(tmpdir(), 'playhead-sdk-e2e-'));
  // The server refuses unknown PLAYHEAD_* variables (PLAYHEAD_BIN among them).
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PLAYHEAD_')));
  const child = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir], {
    env: {
      ...inherited,
      PLAYHEAD_INGEST_KEY: INGEST_KEY,
      PLAYHEAD_READ_KEY: READ_KEY,
      PLAYHEAD_ADMIN_KEY: ADMIN_KEY,
      RUST_LOG: process.env.RUST_LOG || 'warn',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error('playhead did not print `listening on` in 30 s')), 30_000);
    child.once('exit', (code) => reject(new Error(`playhead exited early with ${code}`)));
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const m = line.match(/^listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1]);
      }
    });
  });
  return {
    url,
    dataDir,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => {
          const t = setTimeout(() => {
            child.kill('SIGKILL');
            r();
          }, 10_000);
          child.once('exit', () => {
            clearTimeout(t);
            r();
          });
        });
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.webm': 'video/webm',
  '.mp4': 'video/mp4',
  '.m4s': 'video/iso.segment',
  '.m3u8': 'application/vnd.apple.mpegurl',
};

/**
 * A static file server on 127.0.0.1 (its own origin): `/sdk/` is the built
 * SDK, `/hls/` hls.js's dist, `/media/` the generated media, the rest the
 * test pages. Range requests are answered, as media elements use them.
 */
export async function startStatic() {
  const mounts = [
    ['/sdk/', join(SDK_ROOT, 'dist')],
    ['/hls/', join(SDK_ROOT, 'node_modules', 'hls.js', 'dist')],
    ['/media/', MEDIA_DIR],
    ['/', join(here, 'pages')],
  ];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const [prefix, root] = mounts.find(([p]) => path.startsWith(p));
    const file = normalize(join(root, path.slice(prefix.length)));
    if (!file.startsWith(root) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
      return;
    }
    const size = statSync(file).size;
    const headers = {
      'Content-Type': TYPES[extname(file)] || 'application/octet-stream',
      'Accept-Ranges': 'bytes',
      'Cache-Control': 'no-store',
    };
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range || '');
    if (range) {
      const start = range[1] === '' ? Math.max(0, size - Number(range[2])) : Number(range[1]);
      const end = range[1] !== '' && range[2] !== '' ? Math.min(Number(range[2]), size - 1) : size - 1;
      if (start > end || start >= size) {
        res.writeHead(416, { 'Content-Range': `bytes */${size}` });
        res.end();
        return;
      }
      res.writeHead(206, { ...headers, 'Content-Range': `bytes ${start}-${end}/${size}`, 'Content-Length': end - start + 1 });
      createReadStream(file, { start, end }).pipe(res);
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Length': size });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  return {
    origin: `http://127.0.0.1:${port}`,
    stop: () => new Promise((r) => server.close(r)),
  };
}

/**
 * A pass-through in front of the server that records what the browser
 * really sent (method, headers, body) and forwards it unchanged. Playwright
 * loses sight of a page's requests once the page is closed, and a beacon
 * sent from `pagehide` leaves after that; this sees it arrive.
 */
export async function startRecorder(targetUrl) {
  const target = new URL(targetUrl);
  const seen = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method, path: req.url, headers: req.headers, body: body.toString('utf8'), at: Date.now() });
      const fwd = httpRequest(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
        (up) => {
          res.writeHead(up.statusCode, up.headers);
          up.pipe(res);
        },
      );
      fwd.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      fwd.end(body);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    seen,
    stop: () => new Promise((r) => server.close(r)),
  };
}

/** Debian's chromium, headless, with the flags this closed network needs. */
export async function launchChromium() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's chromium (scripts/install-system-deps)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--no-first-run',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

function ffmpeg(args) {
  try {
    execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  } catch (e) {
    throw new Error(`ffmpeg failed (is Debian's ffmpeg installed?): ${e.message}`);
  }
}

/**
 * A VP9/WebM clip (Debian's chromium plays VP9 natively): a moving test
 * pattern, `seconds` long, 25 fps, 320×240, no audio. Made once, then reused.
 */
export function webmClip(seconds) {
  mkdirSync(MEDIA_DIR, { recursive: true });
  const name = `clip-${seconds}s.webm`;
  const file = join(MEDIA_DIR, name);
  if (!existsSync(file)) {
    ffmpeg([
      '-f', 'lavfi', '-i', `testsrc2=size=320x240:rate=25`,
      '-t', String(seconds),
      '-c:v', 'libvpx-vp9', '-b:v', '300k', '-deadline', 'realtime', '-cpu-used', '8',
      '-g', '25', '-pix_fmt', 'yuv420p', '-an',
      `${file}.tmp.webm`,
    ]);
    execFileSync('mv', [`${file}.tmp.webm`, file]);
  }
  return `/media/${name}`;
}

/**
 * An HLS stream with two renditions (640×360 at ~800 kb/s and 320×180 at
 * ~200 kb/s), H.264 in fMP4 segments of 2 s, as hls.js plays through MSE.
 * Returns the master playlist's path and its renditions as the playlist
 * states them (BANDWIDTH, RESOLUTION).
 */
export function hlsStream(seconds) {
  const dir = join(MEDIA_DIR, `hls-${seconds}s`);
  const master = join(dir, 'master.m3u8');
  if (!existsSync(master)) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    ffmpeg([
      '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25',
      '-t', String(seconds),
      '-filter_complex', '[0:v]split=2[a][b];[a]scale=640:360[v0];[b]scale=320:180[v1]',
      '-map', '[v0]', '-map', '[v1]',
      '-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'main', '-pix_fmt', 'yuv420p',
      '-g', '50', '-keyint_min', '50', '-sc_threshold', '0',
      '-b:v:0', '800k', '-maxrate:v:0', '800k', '-bufsize:v:0', '1600k',
      '-b:v:1', '200k', '-maxrate:v:1', '200k', '-bufsize:v:1', '400k',
      '-f', 'hls', '-hls_time', '2', '-hls_playlist_type', 'vod', '-hls_segment_type', 'fmp4',
      '-hls_fmp4_init_filename', 'init.mp4',
      '-hls_segment_filename', join(dir, 'v%v', 'seg%d.m4s'),
      '-master_pl_name', 'master.m3u8',
      '-var_stream_map', 'v:0 v:1',
      join(dir, 'v%v', 'index.m3u8'),
    ]);
  }
  const text = readFileSync(master, 'utf8');
  const renditions = [...text.matchAll(/BANDWIDTH=(\d+).*?RESOLUTION=(\d+)x(\d+)/g)].map((m) => ({
    bandwidth: Number(m[1]),
    width: Number(m[2]),
    height: Number(m[3]),
  }));
  if (renditions.length !== 2) throw new Error(`expected 2 renditions in ${master}:\n${text}`);
  return { path: `/media/hls-${seconds}s/master.m3u8`, renditions };
}

/** A read-API client for the server. */
export function api(serverUrl) {
  const get = async (path) => {
    const resp = await fetch(serverUrl + path, { headers: { Authorization: `Bearer ${READ_KEY}` } });
    const body = await resp.json().catch(() => null);
    return { status: resp.status, body };
  };
  return {
    get,
    session: (id) => get(`/data/v1/sessions/${encodeURIComponent(id)}`),
    events: (id) => get(`/data/v1/sessions/${encodeURIComponent(id)}/events`),
    /** Poll a session until `ok(session)` holds; fails with the last answer after `ms`. */
    async waitFor(id, ok, ms = 20_000) {
      const until = Date.now() + ms;
      let last;
      for (;;) {
        last = await get(`/data/v1/sessions/${encodeURIComponent(id)}`);
        if (last.status === 200 && ok(last.body)) return last.body;
        if (Date.now() > until) {
          throw new Error(`session ${id} never matched in ${ms} ms; last: ${last.status} ${JSON.stringify(last.body)}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    },
  };
}

/** Everything a test file needs, started together and stopped together. */
export async function startAll({ origins = 1 } = {}) {
  const server = await startPlayhead();
  const statics = [];
  for (let i = 0; i < origins; i++) statics.push(await startStatic());
  const browser = await launchChromium();
  return {
    server,
    statics,
    browser,
    api: api(server.url),
    async stop() {
      await browser.close().catch(() => undefined);
      for (const s of statics) await s.stop();
      await server.stop();
    },
  };
}
