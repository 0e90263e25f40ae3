// Case 4: closing the tab mid-play. The SDK's pagehide handler sends
// `viewend` by navigator.sendBeacon (text/plain, no preflight); the real
// server closes the session with it.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { INGEST_KEY, startAll, startRecorder, webmClip } from './harness.mjs';

let env;
before(async () => {
  env = await startAll();
});
after(async () => {
  await env?.stop();
});

test('closing the tab mid-play: viewend arrives by sendBeacon and closes the session', async () => {
  const src = webmClip(8);
  const sid = `e2e-unload-${Date.now()}`;
  // The page posts through a recorder that forwards to the real server, so
  // the test sees how each request was sent, even after the tab is gone.
  const recorder = await startRecorder(env.server.url);
  const page = await env.browser.newPage();
  const q = new URLSearchParams({ endpoint: recorder.url, key: INGEST_KEY, sid, video: 'clip-8s', src, loop: '1' });
  await page.goto(`${env.statics[0].origin}/video.html?${q}`);
  await page.waitForFunction(() => window.__media.some((m) => m.name === 'playing'), null, { timeout: 20_000 });
  await page.waitForTimeout(3000);
  const playingAt = await page.evaluate(() => window.__media.find((m) => m.name === 'playing').at);
  // The batch with `playing` went by fetch; the session is open.
  const open = await env.api.waitFor(sid, (s) => s.metrics.played === true);
  assert.equal(open.open, true);
  const closedAt = Date.now();
  await page.close();

  const s = await env.api.waitFor(sid, (s) => s.open === false);
  const { body } = await env.api.events(sid);
  const last = body.events[body.events.length - 1];
  const posts = recorder.seen.filter((r) => r.method === 'POST');
  const viewend = posts.filter((r) => r.body.includes('"type":"viewend"'));
  console.log(`unload: requests ${JSON.stringify(recorder.seen.map((r) =>
    `${r.method} ${r.headers['content-type'] || '-'} mode=${r.headers['sec-fetch-mode']}`))}; ` +
    `playing_time_ms ${s.metrics.playing_time_ms} (wall time from first frame to close ${closedAt - playingAt} ms), ended_at ${s.ended_at}`);
  assert.equal(last.type, 'viewend');
  assert.equal(s.state, 'closed');
  assert.equal(Date.parse(s.ended_at), Date.parse(last.t));
  // viewend went once, the way sendBeacon sends: a text/plain POST in
  // no-cors mode (fetch() from the SDK is application/json in cors mode).
  assert.equal(viewend.length, 1, 'viewend sent once');
  assert.match(viewend[0].headers['content-type'], /^text\/plain/);
  assert.equal(viewend[0].headers['sec-fetch-mode'], 'no-cors');
  assert.ok(viewend[0].at >= closedAt, 'sent when the tab closed');
  // The batches before it went by fetch as application/json, after a CORS preflight.
  assert.ok(recorder.seen.some((r) => r.method === 'OPTIONS'));
  assert.ok(posts.some((r) => /^application\/json/.test(r.headers['content-type']) && r.headers['sec-fetch-mode'] === 'cors'));
  assert.equal(s.metrics.played, true);
  assert.equal(s.metrics.completed, false);
  // Playing until the tab closed, about 3 s after the first frame.
  assert.ok(Math.abs(s.metrics.playing_time_ms - (closedAt - playingAt)) <= 500,
    `playing ${s.metrics.playing_time_ms} vs ${closedAt - playingAt}`);
  await recorder.stop();
});
