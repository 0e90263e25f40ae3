// Case 3: a page on one origin embeds a player iframe from another origin;
// the player posts real-shaped infoDelivery/actionDelivery JSON strings
// (progress every 0.5 s, then playback_error_occurred code 16
// ERROR_REASON_TOKEN_EXPIRED, then Back). A frame from a third origin and
// the page itself post player-shaped messages too. The SDK bridge forwards
// only the player's, to the real server.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { INGEST_KEY, startAll, webmClip } from './harness.mjs';

let env;
before(async () => {
  env = await startAll({ origins: 3 });
});
after(async () => {
  await env?.stop();
});

test('iframe player: token expired (code 16) fails the session; other origins are ignored', async () => {
  const [site, player, intruder] = env.statics;
  const src = player.origin + webmClip(6);
  const sid = `e2e-iframe-${Date.now()}`;
  const page = await env.browser.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  const q = new URLSearchParams({
    endpoint: env.server.url, key: INGEST_KEY, sid, video: 'embedded-1', src,
    player: player.origin, evil: intruder.origin, errorAfter: '3',
  });
  await page.goto(`${site.origin}/iframe.html?${q}`);
  const frameOf = async (origin) => {
    for (let i = 0; i < 200; i++) {
      const f = page.frames().find((f) => f.url().startsWith(origin));
      if (f) return f;
      await page.waitForTimeout(50);
    }
    throw new Error(`no frame from ${origin}`);
  };
  const playerFrame = await frameOf(player.origin);
  const intruderFrame = await frameOf(intruder.origin);
  await playerFrame.waitForFunction(() => window.__log && window.__log.done === true, null, { timeout: 30_000 });
  await intruderFrame.waitForFunction(() => window.__done === true, null, { timeout: 30_000 });
  const log = await playerFrame.evaluate(() => window.__log);
  const intruderPosted = await intruderFrame.evaluate(() => window.__posted);
  await page.evaluate(() => window.__bridge.flush());
  const bridgeStats = await page.evaluate(() => ({ ...window.__bridge.stats }));

  const s = await env.api.waitFor(sid, (s) => s.metrics.failed === true
    && s.metrics.played === true);
  // Wait for the Back action (sent 300 ms after the error) too.
  let events;
  for (let i = 0; i < 50; i++) {
    events = (await env.api.events(sid)).body.events;
    if (events.some((e) => e.type === 'custom' && e.data.name === 'back')) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const m = (await env.api.session(sid)).body.metrics;
  const progress = events.filter((e) => e.type === 'progress');
  console.log(`iframe: player posted ${log.progressPosted} progress messages, ${progress.length} reached the server; ` +
    `intruder posted ${intruderPosted}; bridge ${JSON.stringify(bridgeStats)}; playing ${m.playing_time_ms} ms ` +
    `(player: ${log.errorAt - log.startedAt} ms); startup ${m.startup_time_ms} ms (player reported ${log.startupMs})`);

  assert.equal(s.protocol, 'player_messages');
  assert.equal(s.video_id, 'embedded-1');
  assert.equal(m.play_requested, true);
  assert.equal(m.played, true);
  assert.equal(m.failed, true);
  assert.equal(m.completed, false);
  assert.equal(m.errors.length, 1);
  const err = m.errors[0];
  assert.deepEqual([err.code, err.message, err.fatal, err.source], ['16', 'ERROR_REASON_TOKEN_EXPIRED', true, 'player']);
  assert.ok(Math.abs(err.t - log.errorAt) <= 2, `error at ${err.t} vs ${log.errorAt}`);
  // The startup time the player reported wins (metrics.md).
  assert.equal(m.startup_time_ms, log.startupMs);
  // Playing from playback_video_started to the error, by the player's clock.
  assert.ok(Math.abs(m.playing_time_ms - (log.errorAt - log.startedAt)) <= 3, `playing ${m.playing_time_ms}`);
  assert.equal(m.playback_success_score, 0);
  // Progress: every 0.5 s from the player, at most one per 10 s forwarded.
  assert.ok(log.progressPosted >= 5, `posted ${log.progressPosted}`);
  assert.equal(progress.length, 1);
  assert.equal(bridgeStats.throttled, log.progressPosted - 1);
  assert.ok(progress[0].playhead >= 0 && progress[0].playhead < 1, `first progress at ${progress[0].playhead}`);
  // The Back button: a custom event.
  assert.ok(events.some((e) => e.type === 'custom' && e.data.name === 'back' && e.data.event === 'actionDelivery'));
  // Nothing from the intruder frame or the page itself.
  assert.ok(intruderPosted >= 30);
  assert.ok(bridgeStats.wrongOrigin >= intruderPosted + 1, `wrong origin ${bridgeStats.wrongOrigin}`);
  assert.equal(events.some((e) => e.type === 'ended'), false, 'the intruder\'s playback_video_ended is absent');
  assert.equal(events.some((e) => e.data.name === 'intruder' || e.data.name === 'from-host-page'), false);
  assert.equal(events.some((e) => e.data.playback_module_version === 'intruder'), false);
  assert.ok(events.every((e) => e.playhead === null || e.playhead < 10), 'no playhead 4242');
  assert.ok(m.max_playhead_s < 10, `max playhead ${m.max_playhead_s}`);
  assert.deepEqual(
    events.map((e) => e.type).filter((t) => t !== 'progress'),
    ['play', 'custom', 'playing', 'error', 'custom'],
  );
  assert.deepEqual(pageErrors, []);
  await page.close();
});
