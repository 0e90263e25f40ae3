import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bridgeIframePlayer, parseMessage, isProgress } from '../dist/bridge.js';
import { FakeEnv, T0, settle } from './fake-env.mjs';

const PLAYER = 'https://player.example.com';

const progress = (t, ct = t) =>
  JSON.stringify({ event: 'infoDelivery', info: { currentTime: ct, currentTimeLastUpdated: T0 / 1000 + t, playbackRate: 1 } });
const playlog = (name, data = {}) =>
  JSON.stringify({
    event: 'infoDelivery',
    info: {
      currentTimeLastUpdated: T0 / 1000,
      playlogEventName: name,
      playlogData: { playback_module_version: '', system_time: T0 / 1000, ...data },
    },
  });

/** A window stand-in: only what the bridge registers on it. */
class FakeWindow extends EventTarget {}

function bridge(env, extra = {}) {
  return bridgeIframePlayer({
    endpoint: 'http://ph.test',
    property: 'ingest-key',
    playerOrigin: PLAYER + '/',
    videoId: 'v9',
    viewerId: 'u9',
    sessionId: 'iframe-1',
    window: new FakeWindow(),
    env,
    ...extra,
  });
}

test('only messages from the player origin are forwarded', async () => {
  const env = new FakeEnv();
  const b = bridge(env);
  assert.equal(b.handle({ origin: 'https://evil.example.com', data: playlog('playback_video_started') }), false);
  assert.equal(b.handle({ origin: 'https://player.example.com:8443', data: playlog('playback_video_started') }), false);
  assert.equal(b.handle({ origin: PLAYER, data: playlog('playback_video_started') }), true);
  await settle();
  assert.equal(b.stats.wrongOrigin, 2);
  assert.equal(env.posts.length, 1);
  assert.deepEqual(env.posts[0].body, {
    session_id: 'iframe-1',
    property: 'ingest-key',
    video_id: 'v9',
    viewer_id: 'u9',
    messages: [JSON.parse(playlog('playback_video_started'))],
  });
  assert.equal(env.posts[0].url, 'http://ph.test/v1/player-messages');
});

test('with an iframe, only its window counts, even from the right origin', () => {
  const env = new FakeEnv();
  const frameWindow = {};
  const b = bridge(env, { iframe: { contentWindow: frameWindow } });
  assert.equal(b.handle({ origin: PLAYER, data: playlog('play'), source: {} }), false);
  assert.equal(b.handle({ origin: PLAYER, data: playlog('play'), source: frameWindow }), true);
});

test('the listener is on the window and reads MessageEvent fields', async () => {
  const env = new FakeEnv();
  const win = new FakeWindow();
  const b = bridge(env, { window: win });
  win.dispatchEvent(new MessageEvent('message', { origin: PLAYER, data: playlog('playback_video_paused') }));
  win.dispatchEvent(new MessageEvent('message', { origin: 'http://other.test', data: playlog('playback_video_paused') }));
  await settle();
  assert.equal(b.stats.forwarded, 1);
  assert.equal(b.stats.wrongOrigin, 1);
  b.stop();
  win.dispatchEvent(new MessageEvent('message', { origin: PLAYER, data: playlog('playback_video_ended') }));
  assert.equal(b.stats.forwarded, 1, 'stopped: no longer listening');
});

test('messages are parsed from JSON strings; anything else is ignored', () => {
  assert.deepEqual(parseMessage('{"event":"actionDelivery","name":"back"}'), { event: 'actionDelivery', name: 'back' });
  assert.deepEqual(parseMessage({ event: 'infoDelivery', info: {} }), { event: 'infoDelivery', info: {} });
  for (const bad of ['not json', '[1,2]', '{"info":{}}', '{"event":""}', 'null', 42, null, undefined, '{"event":7}']) {
    assert.equal(parseMessage(bad), null, String(bad));
  }
  assert.equal(isProgress(JSON.parse(progress(3))), true);
  assert.equal(isProgress(JSON.parse(playlog('playback_video_started'))), false);
  assert.equal(isProgress({ event: 'actionDelivery', name: 'back' }), false);
  const env = new FakeEnv();
  const b = bridge(env);
  assert.equal(b.handle({ origin: PLAYER, data: 'hello' }), false);
  assert.equal(b.stats.unparsable, 1);
});

test('progress (every 0.5 s) is forwarded at most every 10 s; state changes at once', async () => {
  const env = new FakeEnv();
  const b = bridge(env);
  b.handle({ origin: PLAYER, data: playlog('playback_video_started') });
  await settle();
  assert.equal(env.posts.length, 1, 'a state change leaves at once');
  for (let i = 0; i < 50; i++) {
    // 0, 0.5, ..., 24.5 s
    b.handle({ origin: PLAYER, data: progress(i / 2) });
    if (i === 31) b.handle({ origin: PLAYER, data: playlog('playback_video_paused') });
    await env.advance(500);
  }
  await env.advance(2000);
  const messages = env.posts.flatMap((p) => p.body.messages);
  const times = messages.filter(isProgress).map((m) => m.info.currentTime);
  assert.deepEqual(times, [0, 10, 20]);
  assert.equal(b.stats.throttled, 47);
  const paused = env.posts.find((p) => p.body.messages.some((m) => m.info?.playlogEventName === 'playback_video_paused'));
  assert.equal(paused.at, T0 + 31 * 500, 'the pause was sent when it came');
  // Forwarded unchanged.
  assert.deepEqual(messages[1], JSON.parse(progress(0)));
});

test('the player origin must be exact', () => {
  assert.throws(() => bridge(new FakeEnv(), { playerOrigin: '*' }), TypeError);
  assert.throws(() => bridge(new FakeEnv(), { playerOrigin: '' }), TypeError);
});

test('stop() hands what waits to sendBeacon', async () => {
  const env = new FakeEnv();
  const b = bridge(env);
  b.handle({ origin: PLAYER, data: progress(1) });
  b.stop();
  assert.equal(env.beacons.length, 1);
  assert.equal(env.beacons[0].body.messages[0].info.currentTime, 1);
  assert.equal(env.beacons[0].body.session_id, 'iframe-1');
});
