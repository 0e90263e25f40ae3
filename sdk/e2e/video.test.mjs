// Case 1: a <video> playing a real VP9/WebM file through the SDK; the
// session read back from the real server's query API.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { INGEST_KEY, startAll, webmClip } from './harness.mjs';

const CLIP_S = 6;
let env;
before(async () => {
  env = await startAll();
});
after(async () => {
  await env?.stop();
});

test('<video> to its end: played, startup time, playing time close to real time, completed', async () => {
  const src = webmClip(CLIP_S);
  const sid = `e2e-video-${Date.now()}`;
  const page = await env.browser.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  const q = new URLSearchParams({ endpoint: env.server.url, key: INGEST_KEY, sid, video: 'clip-6s', src, hb: '2000' });
  await page.goto(`${env.statics[0].origin}/video.html?${q}`);
  assert.equal(await page.evaluate(() => window.__played), 'ok', 'video.play() resolved');
  await page.waitForFunction(() => window.__media.some((m) => m.name === 'ended'), null, { timeout: 30_000 });
  const media = await page.evaluate(() => window.__media);
  const at = (name) => media.find((m) => m.name === name).at;
  // What the page saw: from the first frame to the end.
  const realPlayingMs = at('ended') - at('playing');
  const pageStartupMs = at('playing') - at('play');

  const s = await env.api.waitFor(sid, (s) => s.metrics.completed === true);
  const m = s.metrics;
  console.log(`video: real playing ${realPlayingMs} ms, server playing_time_ms ${m.playing_time_ms}, ` +
    `startup ${m.startup_time_ms} ms (page ${pageStartupMs} ms), frames ${m.dropped_frames}/${m.total_frames}`);
  assert.equal(s.protocol, 'native');
  assert.equal(s.video_id, 'clip-6s');
  assert.equal(s.viewer_id, 'e2e-viewer');
  assert.equal(m.play_requested, true);
  assert.equal(m.played, true);
  assert.equal(m.failed, false);
  assert.equal(m.completed, true);
  // Startup: play intent to first frame, as the SDK stamped them (the page's
  // own listeners ran a moment before the SDK's, so allow a few ms).
  assert.ok(m.startup_time_ms > 0 && m.startup_time_ms < 5000, `startup ${m.startup_time_ms}`);
  assert.ok(Math.abs(m.startup_time_ms - pageStartupMs) <= 50, `startup ${m.startup_time_ms} vs page ${pageStartupMs}`);
  // Playing time: the server's state accounting against the page's clock
  // (a stall, should a slow machine have one, is rebuffer time instead).
  const accounted = m.playing_time_ms + m.rebuffer_time_ms;
  assert.ok(Math.abs(accounted - realPlayingMs) <= 250, `playing ${m.playing_time_ms} + stalled ${m.rebuffer_time_ms} vs real ${realPlayingMs}`);
  // ... and against the clip itself: 6 s of media at rate 1.
  assert.ok(Math.abs(m.playing_time_ms - CLIP_S * 1000) <= 1000, `playing ${m.playing_time_ms} vs ${CLIP_S * 1000}`);
  // The duration came from loadedmetadata; the whole clip was watched once.
  assert.ok(Math.abs(s.duration_s - CLIP_S) < 0.1, `duration ${s.duration_s}`);
  assert.ok(Math.abs(m.max_playhead_s - CLIP_S) < 0.1, `max playhead ${m.max_playhead_s}`);
  assert.ok(m.content_watched_s > CLIP_S - 0.5, `watched ${m.content_watched_s}`);
  assert.deepEqual(m.progress_markers, [10, 25, 50, 75, 95]);
  // Heartbeats (every 2 s here) carried getVideoPlaybackQuality()'s counts.
  assert.ok(m.total_frames >= 50 && m.total_frames <= CLIP_S * 25 + 5, `total frames ${m.total_frames}`);
  assert.ok(m.dropped_frames >= 0 && m.dropped_frames <= m.total_frames);

  const { body } = await env.api.events(sid);
  const types = body.events.map((e) => e.type);
  assert.deepEqual(types.slice(0, 1), ['viewinit']);
  for (const t of ['play', 'playing', 'renditionchange', 'heartbeat', 'pause', 'ended']) {
    assert.ok(types.includes(t), `${t} in ${types}`);
  }
  const rendition = body.events.find((e) => e.type === 'renditionchange');
  assert.deepEqual([rendition.data.width, rendition.data.height], [320, 240]);
  // seq numbers are the SDK's, 1..n without gaps: nothing lost, nothing twice.
  assert.deepEqual(body.events.map((e) => e.data.seq).sort((a, b) => a - b), body.events.map((_, i) => i + 1));
  assert.deepEqual(pageErrors, []);
  await page.close();
});
