// Case 2: hls.js playing an ffmpeg-made HLS stream with two renditions
// (H.264 in fMP4, through MSE), with a forced switch from the low to the
// high rendition; the session read back from the real server.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { INGEST_KEY, hlsStream, startAll } from './harness.mjs';

const STREAM_S = 10;
let env;
before(async () => {
  env = await startAll();
});
after(async () => {
  await env?.stop();
});

test('hls.js: renditions with their bitrates, a forced switch, fatal errors none, completed', async () => {
  const { path, renditions } = hlsStream(STREAM_S);
  const low = renditions.reduce((a, b) => (a.height < b.height ? a : b));
  const high = renditions.reduce((a, b) => (a.height > b.height ? a : b));
  const sid = `e2e-hls-${Date.now()}`;
  const page = await env.browser.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  const q = new URLSearchParams({ endpoint: env.server.url, key: INGEST_KEY, sid, video: 'hls-10s', src: path });
  await page.goto(`${env.statics[0].origin}/hls.html?${q}`);
  await page.waitForFunction(() => window.__played !== undefined, null, { timeout: 20_000 });
  assert.equal(await page.evaluate(() => window.__played), 'ok');
  // Play about 3 s on the low rendition, then force the high one.
  await page.waitForFunction(() => document.getElementById('v').currentTime > 3, null, { timeout: 20_000 });
  await page.evaluate(() => window.__switchUp());
  await page.waitForFunction(() => window.__media.some((m) => m.name === 'ended'), null, { timeout: 40_000 });
  const { media, levels } = await page.evaluate(() => ({ media: window.__media, levels: window.__levels }));
  const at = (name) => media.find((m) => m.name === name).at;

  const s = await env.api.waitFor(sid, (s) => s.metrics.completed === true);
  const m = s.metrics;
  const { body } = await env.api.events(sid);
  const renditionEvents = body.events.filter((e) => e.type === 'renditionchange');
  console.log(`hls: playlist ${JSON.stringify(renditions)}; level switches seen by the page ${JSON.stringify(levels.map((l) => l.bitrate))}; ` +
    `server renditionchange ${JSON.stringify(renditionEvents.map((e) => [e.data.bitrate_bps, e.data.width, e.data.height]))}, ` +
    `bitrate_avg_bps ${m.bitrate_avg_bps}, bitrate_changes ${m.bitrate_changes}, playing ${m.playing_time_ms} ms (real ${at('ended') - at('playing')} ms)`);
  // The two renditions, in order, with the playlist's BANDWIDTH and size.
  assert.deepEqual(
    renditionEvents.map((e) => [e.data.bitrate_bps, e.data.width, e.data.height]),
    [[low.bandwidth, low.width, low.height], [high.bandwidth, high.width, high.height]],
  );
  assert.equal(m.bitrate_changes, 1);
  // Weighted by playing time: strictly between the two, as both played.
  assert.ok(m.bitrate_avg_bps > low.bandwidth && m.bitrate_avg_bps < high.bandwidth, `avg ${m.bitrate_avg_bps}`);
  // The switch came after ~3 s of the low rendition; so the average is
  // (low × t_low + high × t_high) / (t_low + t_high), with t_low the time
  // from the first frame to the switch the page saw.
  const tLow = levels[1].at - at('playing');
  const tHigh = at('ended') - levels[1].at;
  const expectedAvg = (low.bandwidth * tLow + high.bandwidth * tHigh) / (tLow + tHigh);
  assert.ok(Math.abs(m.bitrate_avg_bps - expectedAvg) / expectedAvg < 0.05, `avg ${m.bitrate_avg_bps} vs ${expectedAvg}`);
  assert.equal(m.played, true);
  assert.equal(m.failed, false);
  assert.deepEqual(m.errors, []);
  assert.equal(m.completed, true);
  // The forced switch may stall a moment: that is rebuffer time, not playing.
  const accounted = m.playing_time_ms + m.rebuffer_time_ms;
  assert.ok(Math.abs(accounted - (at('ended') - at('playing'))) <= 500, `playing ${m.playing_time_ms} + stalled ${m.rebuffer_time_ms}`);
  assert.ok(Math.abs(m.playing_time_ms - STREAM_S * 1000) <= 1500, `playing ${m.playing_time_ms} vs ${STREAM_S * 1000}`);
  assert.deepEqual(pageErrors, []);
  await page.close();
});

test('hls.js: a fatal error (manifest 404) is a fatal error of the session', async () => {
  const sid = `e2e-hls-404-${Date.now()}`;
  const page = await env.browser.newPage();
  const q = new URLSearchParams({ endpoint: env.server.url, key: INGEST_KEY, sid, video: 'missing', src: '/media/no-such/master.m3u8' });
  await page.goto(`${env.statics[0].origin}/hls.html?${q}`);
  const s = await env.api.waitFor(sid, (s) => s.metrics.failed === true);
  console.log(`hls 404: errors ${JSON.stringify(s.metrics.errors)}`);
  assert.equal(s.metrics.errors.length, 1);
  assert.equal(s.metrics.errors[0].code, 'manifestLoadError');
  assert.equal(s.metrics.errors[0].message, 'networkError');
  assert.equal(s.metrics.errors[0].fatal, true);
  assert.equal(s.metrics.played, false);
  await page.close();
});
