import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Session } from '../dist/session.js';
import { trackVideo } from '../dist/html5.js';
import { FakeEnv, T0, settle } from './fake-env.mjs';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function session(env, extra = {}) {
  return new Session({
    endpoint: 'http://ph.test/',
    property: 'ingest-key',
    videoId: 'v1',
    viewerId: 'u1',
    player: { name: 'test' },
    custom: { plan: 'gold' },
    env,
    ...extra,
  });
}

test('events get consecutive seq numbers and the clock time', async () => {
  const env = new FakeEnv();
  const s = session(env);
  assert.match(s.id, UUID_V4);
  s.track('viewinit');
  await env.advance(250);
  s.track('play', { playhead: 0 });
  await env.advance(1000);
  assert.equal(env.posts.length, 1);
  const { url, body } = env.posts[0];
  assert.equal(url, 'http://ph.test/v1/events');
  assert.equal(body.property, 'ingest-key');
  assert.deepEqual(body.session, {
    id: s.id,
    video_id: 'v1',
    viewer_id: 'u1',
    player: { name: 'test' },
    custom: { plan: 'gold' },
  });
  assert.deepEqual(body.events, [
    { seq: 1, ts: T0, type: 'viewinit' },
    { seq: 2, ts: T0 + 250, type: 'play', playhead: 0 },
  ]);
  s.track('playing', { playhead: 0 });
  await settle();
  assert.equal(env.posts.length, 2, '`playing` is sent at once');
  assert.equal(env.posts[1].body.events[0].seq, 3);
  assert.equal(s.lastSeq, 3);
});

test('a retried batch keeps its seq numbers (the server deduplicates on them)', async () => {
  const env = new FakeEnv();
  env.answers = [503];
  const s = session(env);
  s.track('play', { playhead: 0 });
  s.track('playing', { playhead: 0 });
  await env.advance(5000);
  assert.equal(env.posts.length, 2);
  assert.deepEqual(env.posts[0].body.events, env.posts[1].body.events);
  assert.deepEqual(env.posts[1].body.events.map((e) => e.seq), [1, 2]);
});

test('viewend goes by sendBeacon, with what waits; later events are ignored', async () => {
  const env = new FakeEnv();
  const s = session(env);
  s.track('heartbeat', { playhead: 12.5 });
  s.end({ playhead: 13 });
  assert.equal(env.beacons.length, 1);
  assert.deepEqual(env.beacons[0].body.events.map((e) => [e.seq, e.type]), [
    [1, 'heartbeat'],
    [2, 'viewend'],
  ]);
  assert.equal(s.track('play'), null);
  s.end();
  await env.advance(10_000);
  assert.equal(env.posts.length, 0, 'viewend was not also fetched');
  assert.equal(env.beacons.length, 1);
});

test('the duration and content type are learnt from the media', async () => {
  const env = new FakeEnv();
  const s = session(env);
  s.setDuration(NaN);
  s.setDuration(12.5);
  s.track('ended', { playhead: 12.5 });
  await settle();
  assert.equal(env.posts[0].body.session.video_duration_s, 12.5);
  assert.equal(env.posts[0].body.session.content_type, 'vod');
  const live = session(env);
  live.setDuration(Infinity);
  live.track('ended');
  await settle();
  assert.equal(env.posts[1].body.session.content_type, 'live');
  assert.equal(env.posts[1].body.session.video_duration_s, undefined);
});

test('an invalid playhead is left out rather than refused by the server', async () => {
  const env = new FakeEnv();
  const s = session(env);
  s.track('playing', { playhead: NaN });
  await settle();
  assert.equal('playhead' in env.posts[0].body.events[0], false);
});

/** A stand-in media element: an EventTarget with the properties the adapter reads. */
class FakeVideo extends EventTarget {
  currentTime = 0;
  playbackRate = 1;
  duration = NaN;
  readyState = 0;
  videoWidth = 0;
  videoHeight = 0;
  error = null;
  frames = { droppedVideoFrames: 0, totalVideoFrames: 0 };
  getVideoPlaybackQuality() {
    return this.frames;
  }
  fire(name) {
    this.dispatchEvent(new Event(name));
  }
}

test('the <video> adapter maps media events and sends heartbeats with frame counts', async () => {
  const env = new FakeEnv();
  const video = new FakeVideo();
  const tracker = trackVideo(video, { endpoint: 'http://ph.test', property: 'k', env });
  video.duration = 30;
  video.videoWidth = 640;
  video.videoHeight = 360;
  video.fire('loadedmetadata');
  video.fire('play');
  await env.advance(300);
  video.fire('playing');
  await env.advance(4700);
  video.currentTime = 4.7;
  video.playbackRate = 1.5;
  video.fire('ratechange');
  video.frames = { droppedVideoFrames: 2, totalVideoFrames: 250 };
  await env.advance(5000); // heartbeat at 10 s
  video.currentTime = 12;
  video.fire('waiting');
  video.videoWidth = 1280;
  video.videoHeight = 720;
  video.fire('resize');
  video.fire('seeking');
  video.fire('seeked');
  video.fire('pause');
  video.fire('ended');
  await settle();
  tracker.destroy();
  const events = [...env.posts.flatMap((p) => p.body.events), ...env.beacons.flatMap((b) => b.body.events)];
  assert.deepEqual(
    events.map((e) => e.type),
    ['viewinit', 'renditionchange', 'play', 'playing', 'ratechange', 'heartbeat', 'waiting',
      'renditionchange', 'seeking', 'seeked', 'pause', 'ended', 'viewend'],
  );
  assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1));
  const hb = events.find((e) => e.type === 'heartbeat');
  assert.deepEqual(hb, { seq: 6, ts: T0 + 10_000, type: 'heartbeat', playhead: 4.7, dropped_frames: 2, total_frames: 250 });
  assert.equal(events.find((e) => e.type === 'ratechange').rate, 1.5);
  assert.deepEqual(
    events.filter((e) => e.type === 'renditionchange').map((e) => [e.width, e.height]),
    [[640, 360], [1280, 720]],
  );
  assert.equal(env.posts.at(-1).body.session.video_duration_s, 30);
  // After destroy: no more heartbeats or events.
  const n = events.length;
  video.fire('play');
  await env.advance(30_000);
  assert.equal(env.posts.flatMap((p) => p.body.events).length + env.beacons.flatMap((b) => b.body.events).length, n);
});

/** A stand-in for an Hls instance: what trackHls uses (on, off, levels). */
class FakeHls {
  listeners = new Map();
  levels = [
    { bitrate: 220000, width: 320, height: 180 },
    { bitrate: 880000, width: 640, height: 360 },
  ];
  on(name, fn) {
    this.listeners.set(name, [...(this.listeners.get(name) || []), fn]);
  }
  off(name, fn) {
    this.listeners.set(name, (this.listeners.get(name) || []).filter((f) => f !== fn));
  }
  emit(name, data) {
    for (const fn of this.listeners.get(name) || []) fn(name, data);
  }
}

test('the hls.js adapter: level switches with bitrate and size, fatal errors only', async () => {
  const { trackHls } = await import('../dist/hls.js');
  const env = new FakeEnv();
  const video = new FakeVideo();
  const hls = new FakeHls();
  const tracker = trackHls(hls, video, { endpoint: 'http://ph.test', property: 'k', env });
  video.currentTime = 1.5;
  hls.emit('hlsLevelSwitched', { level: 0 });
  hls.emit('hlsLevelSwitched', { level: 0 }); // the same level again: nothing new
  hls.emit('hlsLevelSwitched', { level: 1 });
  hls.emit('hlsError', { fatal: false, type: 'mediaError', details: 'bufferStalledError' });
  hls.emit('hlsError', { fatal: true, type: 'networkError', details: 'manifestLoadError' });
  // The element's intrinsic size is left to hls.js's levels here.
  video.videoWidth = 640;
  video.videoHeight = 360;
  video.fire('resize');
  await env.advance(1000);
  tracker.destroy();
  assert.equal(hls.listeners.get('hlsLevelSwitched').length, 0, 'listeners removed');
  const events = [...env.posts.flatMap((p) => p.body.events), ...env.beacons.flatMap((b) => b.body.events)];
  assert.deepEqual(
    events.filter((e) => e.type === 'renditionchange').map((e) => [e.bitrate_bps, e.width, e.height, e.level]),
    [[220000, 320, 180, 0], [880000, 640, 360, 1]],
  );
  const errors = events.filter((e) => e.type === 'error');
  assert.deepEqual(errors.map((e) => [e.code, e.message, e.fatal, e.playhead]), [['manifestLoadError', 'networkError', true, 1.5]]);
  assert.equal(env.posts[0].body.session.player.name, 'hls.js');
});
