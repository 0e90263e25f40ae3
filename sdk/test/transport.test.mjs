import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Transport } from '../dist/transport.js';
import { FakeEnv, T0, settle } from './fake-env.mjs';

const URL = 'http://ph.test/v1/events';
const make = (env, options = {}) =>
  new Transport(env, URL, (items) => JSON.stringify({ items }), options);

test('items wait for the flush interval, then leave in one batch', async () => {
  const env = new FakeEnv();
  const t = make(env, { flushIntervalMs: 1000 });
  t.push(1);
  await env.advance(400);
  t.push(2);
  t.push(3);
  await env.advance(599);
  assert.equal(env.posts.length, 0, 'nothing before the interval');
  await env.advance(1);
  assert.equal(env.posts.length, 1);
  assert.deepEqual(env.posts[0].body.items, [1, 2, 3]);
  assert.equal(env.posts[0].at, T0 + 1000);
  assert.equal(env.posts[0].contentType, 'application/json');
  assert.equal(t.stats.sent, 3);
});

test('a full batch or an urgent item leaves at once', async () => {
  const env = new FakeEnv();
  const t = make(env, { batchSize: 2, flushIntervalMs: 5000 });
  t.push('a');
  t.push('b');
  await settle();
  assert.deepEqual(env.posts.map((p) => p.body.items), [['a', 'b']]);
  t.push('c', true);
  await settle();
  assert.deepEqual(env.posts.map((p) => p.body.items), [['a', 'b'], ['c']]);
  assert.equal(env.posts[1].at, T0, 'urgent: no waiting');
});

test('failures retry the same batch with exponential backoff', async () => {
  const env = new FakeEnv();
  env.answers = [503, 'offline', 500, 202];
  const t = make(env, { retryBaseMs: 1000, retryMaxMs: 30_000 });
  t.push('x', true);
  await env.advance(60_000);
  // random() = 1 → jitter factor 1: delays 1000, 2000, 4000.
  assert.deepEqual(env.posts.map((p) => p.at - T0), [0, 1000, 3000, 7000]);
  for (const p of env.posts) assert.deepEqual(p.body.items, ['x']);
  assert.equal(t.stats.retries, 3);
  assert.equal(t.stats.sent, 1);
  assert.equal(t.pending, 0);
});

test('backoff is capped and jittered between half and all of it', () => {
  const env = new FakeEnv();
  const t = make(env, { retryBaseMs: 1000, retryMaxMs: 8000 });
  env.randomValue = 0;
  assert.deepEqual([1, 2, 3, 4, 5, 9].map((n) => t.backoff(n)), [500, 1000, 2000, 4000, 4000, 4000]);
  env.randomValue = 1;
  assert.deepEqual([1, 2, 3, 4, 5, 9].map((n) => t.backoff(n)), [1000, 2000, 4000, 8000, 8000, 8000]);
});

test('items pushed while backing off wait for the retry', async () => {
  const env = new FakeEnv();
  env.answers = ['offline'];
  const t = make(env, { retryBaseMs: 1000 });
  t.push(1, true);
  await settle();
  t.push(2, true);
  await settle();
  assert.equal(env.posts.length, 1, 'no request during the backoff');
  await env.advance(1000);
  assert.deepEqual(env.posts.map((p) => p.body.items), [[1], [1, 2]]);
});

test('a 4xx other than 408/429 drops the batch; the next one goes on', async () => {
  const env = new FakeEnv();
  env.answers = [400, 202];
  const t = make(env, { batchSize: 1 });
  t.push('bad');
  t.push('good');
  await env.advance(10);
  assert.deepEqual(env.posts.map((p) => p.body.items), [['bad'], ['good']]);
  assert.equal(t.stats.dropped, 1);
  assert.equal(t.stats.sent, 1);
  assert.equal(t.stats.lastFailureStatus, 400);
});

test('429 and 408 are retried, not dropped', async () => {
  const env = new FakeEnv();
  env.answers = [429, 408, 202];
  const t = make(env);
  t.push('x', true);
  await env.advance(10_000);
  assert.equal(env.posts.length, 3);
  assert.equal(t.stats.dropped, 0);
  assert.equal(t.stats.sent, 1);
});

test('offline, the queue keeps the newest maxQueue items', async () => {
  const env = new FakeEnv();
  env.answers = ['offline'];
  const t = make(env, { batchSize: 2, maxQueue: 5, retryBaseMs: 1000 });
  for (let i = 1; i <= 12; i++) t.push(i);
  await settle();
  assert.equal(t.pending, 5);
  assert.equal(t.stats.dropped, 7);
  await env.advance(5000);
  const sent = env.posts.slice(1).flatMap((p) => p.body.items);
  assert.deepEqual(sent, [8, 9, 10, 11, 12]);
  assert.equal(t.stats.sent, 5);
});

test('maxQueue below batchSize is refused', () => {
  assert.throws(() => make(new FakeEnv(), { batchSize: 10, maxQueue: 5 }), RangeError);
});

test('flushBeacon sends the queue and the batch in flight, in bodies under the limit', async () => {
  const env = new FakeEnv();
  env.answers = ['offline'];
  const t = make(env, { batchSize: 100, maxBeaconBytes: 200 });
  const item = 'x'.repeat(40);
  t.push(item, true); // in flight, then failed and back in the queue
  await settle();
  for (let i = 0; i < 9; i++) t.push(item);
  const n = t.flushBeacon();
  assert.equal(n, 10);
  assert.ok(env.beacons.length >= 3, `split into ${env.beacons.length}`);
  for (const b of env.beacons) assert.ok(b.bytes <= 200, `${b.bytes} bytes`);
  assert.equal(env.beacons.flatMap((b) => b.body.items).length, 10);
  assert.equal(t.pending, 0);
  await env.advance(60_000);
  assert.equal(env.posts.length, 1, 'the retry timer was cancelled');
});

test('a beacon the browser refuses goes by post (keepalive) as text/plain', async () => {
  const env = new FakeEnv();
  env.beaconAccepts = false;
  const t = make(env);
  t.push('last');
  assert.equal(t.flushBeacon(), 0);
  await settle();
  assert.equal(env.posts.length, 1);
  assert.equal(env.posts[0].contentType, 'text/plain');
  assert.equal(t.stats.sent, 1);
});
