// Browser tests of the dashboard: Debian's chromium driven by playwright-core
// against the real binary ($PLAYHEAD_BIN) and a seeded dataset. Every page
// is screenshotted into artifacts/dashboard/ at the repository root.
//
// Run with: npm test (in web/), after `cargo build -p playhead` and
// `export PLAYHEAD_BIN=<target>/debug/playhead`.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { api, HOSTILE_MESSAGE, HOSTILE_TITLE, HOSTILE_VIDEO, READ_KEY, seed, startServer, touchLive } from './server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const SHOTS = path.resolve(here, '../../artifacts/dashboard');
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

let server;
let browser;
let page;
let sessions;
/** Every dialog (alert, confirm…) the page opened: must stay empty. */
const dialogs = [];
const pageErrors = [];

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM} (Debian package chromium; scripts/install-system-deps)`);
  mkdirSync(SHOTS, { recursive: true });
  server = await startServer();
  sessions = await seed(server.url);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  page = await context.newPage();
  page.on('dialog', async (d) => {
    dialogs.push(d.message());
    await d.dismiss();
  });
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** Wait until the page at `pathname` finished loading (`main[data-ready]`). */
async function ready(pathname, previousFrom = null) {
  await page.waitForFunction(
    ([p, prev]) => {
      const m = document.querySelector('main#page');
      return m && m.dataset.path === p && m.dataset.ready && (prev === null || m.dataset.from !== prev);
    },
    [pathname, previousFrom],
    { timeout: 30_000 },
  );
  const state = await page.getAttribute('main#page', 'data-ready');
  assert.equal(state, 'true', `page ${pathname} failed to load: ${await page.textContent('main#page')}`);
}

async function range() {
  const from = await page.getAttribute('main#page', 'data-from');
  const to = await page.getAttribute('main#page', 'data-to');
  return { from, to };
}

/** Tiles on the page: metric → {value (raw), text}. */
async function tiles() {
  return page.$$eval('.tile[data-metric]', (els) =>
    Object.fromEntries(
      els.map((e) => [e.dataset.metric, { value: e.dataset.value ?? null, text: e.querySelector('.tile-value')?.textContent ?? '' }]),
    ),
  );
}

function apiValue(v) {
  return v === null || v === undefined ? 'null' : String(v);
}

/** Every tile equals the API's `/data/v1/metrics` over the page's own range and filters. */
async function assertTilesEqualApi(extraQuery = '') {
  const { from, to } = await range();
  const expected = await api(server.url, `/data/v1/metrics?from=${from}&to=${to}${extraQuery}`);
  const shown = await tiles();
  assert.ok(Object.keys(shown).length >= 11, `tiles: ${Object.keys(shown)}`);
  for (const [metric, { value, text }] of Object.entries(shown)) {
    assert.equal(value, apiValue(expected.metrics[metric]), `tile ${metric}`);
    if (['views', 'plays', 'unique_viewers', 'concurrent_viewers'].includes(metric)) {
      assert.equal(text.replace(/,/g, ''), String(expected.metrics[metric]), `tile ${metric} text`);
    }
  }
  return expected.metrics;
}

test('the dashboard is served by the binary, and is this build', async () => {
  const resp = await fetch(`${server.url}/`);
  assert.equal(resp.status, 200);
  assert.match(resp.headers.get('content-type'), /^text\/html/);
  const served = await resp.text();
  const built = path.resolve(here, '../dist/index.html');
  if (existsSync(built)) {
    assert.equal(served, readFileSync(built, 'utf8'), 'PLAYHEAD_BIN embeds another dashboard build than web/dist: rebuild it (cargo build -p playhead)');
  }
  // API paths keep their JSON 404.
  const nope = await fetch(`${server.url}/data/v1/nope`);
  assert.equal(nope.status, 404);
  assert.match(nope.headers.get('content-type'), /application\/json/);
});

test('a wrong read key shows a clear message', async () => {
  await page.goto(`${server.url}/`);
  await page.waitForSelector('#read-key');
  assert.match(page.url(), /\/login\?next=/);
  await page.fill('#read-key', 'not-a-real-key');
  await page.click('#login-button');
  await page.waitForFunction(() => document.querySelector('#login-message')?.classList.contains('error'));
  const message = await page.textContent('#login-message');
  assert.match(message, /Wrong read key/);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('playhead.readKey')), null);
  await shot('login-wrong-key');
});

test('log in: the overview shows non-zero numbers equal to the API for the same range', async () => {
  await page.fill('#read-key', READ_KEY);
  await page.click('#login-button');
  await ready('/');
  assert.equal((await page.textContent('#property-name')).trim(), 'property: default');
  const m = await assertTilesEqualApi();
  for (const k of ['views', 'plays', 'unique_viewers', 'watch_time_ms', 'viewer_experience_score', 'startup_time_ms_p50']) {
    assert.ok(m[k] > 0, `${k} is ${m[k]}`);
  }
  // Every seeded session started in the last day.
  assert.equal(m.views, sessions.length);
  // Each tile has its chart.
  assert.equal(await page.locator('.tile .tile-chart canvas').count(), 11);
  await shot('overview');
});

test('changing the time range changes the numbers and the URL', async () => {
  const before = await range();
  const viewsBefore = Number((await tiles()).views.value);
  await page.selectOption('#range', '1h');
  await ready('/', before.from);
  assert.match(page.url(), /[?&]range=1h/);
  const m = await assertTilesEqualApi();
  const hoursAgo = sessions.filter((s) => s.ago > 3_600_000).length;
  assert.ok(hoursAgo > 0);
  assert.equal(m.views, viewsBefore - hoursAgo);
  await shot('overview-last-hour');
});

test('a filter narrows every number and lives in a shareable URL', async () => {
  // The browser with the fewest sessions (from the API itself).
  const { from, to } = await range();
  const byBrowser = await api(server.url, `/data/v1/metrics/breakdown?metric=views&by=browser&from=${from}&to=${to}`);
  assert.ok(byBrowser.rows.length >= 2, JSON.stringify(byBrowser));
  const pick = byBrowser.rows[byBrowser.rows.length - 1];
  const prevFrom = from;
  await page.fill('#filter-dimension', 'browser');
  await page.fill('#filter-value', pick.key);
  await page.click('#filter-add');
  await ready('/', null);
  await page.waitForSelector('#filter-chips .chip');
  const url = new URL(page.url());
  assert.equal(url.searchParams.get('browser'), pick.key);
  assert.equal(url.searchParams.get('range'), '1h');
  const m = await assertTilesEqualApi(`&browser=${encodeURIComponent(pick.key)}`);
  assert.equal(m.views, pick.views);
  await shot('overview-filtered');
  // The same URL, opened again, shows the same view.
  await page.goto(url.toString());
  await ready('/', prevFrom);
  assert.equal(await page.getAttribute('#filter-chips .chip', 'data-filter'), `browser=${pick.key}`);
  await assertTilesEqualApi(`&browser=${encodeURIComponent(pick.key)}`);
  // Remove it, back to the whole last day.
  await page.click('#filter-chips .chip-x');
  await ready('/', null);
  assert.equal(new URL(page.url()).searchParams.get('browser'), null);
  await page.selectOption('#range', '24h');
  await page.waitForFunction(() => new URL(location.href).searchParams.get('range') === '24h');
  await ready('/', null);
});

test('a custom range: from and to picked by hand', async () => {
  const before = await range();
  await page.selectOption('#range', 'custom');
  await page.waitForSelector('#range-from');
  await ready('/', null);
  assert.equal(new URL(page.url()).searchParams.get('range'), 'custom');
  // Two to four hours ago, in the browser's local time, to the minute.
  const local = (ms) => page.evaluate((t) => {
    const d = new Date(t);
    const pad = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }, ms);
  const now = Date.now();
  await page.fill('#range-from', await local(now - 4 * 3_600_000));
  await page.fill('#range-to', await local(now - 2 * 3_600_000));
  await page.click('#range-apply');
  await ready('/', before.from);
  const { from, to } = await range();
  const url = new URL(page.url());
  assert.equal(url.searchParams.get('from'), from);
  assert.equal(url.searchParams.get('to'), to);
  const m = await assertTilesEqualApi();
  const inRange = sessions.filter((s) => s.t0 >= Number(from) && s.t0 < Number(to)).length;
  assert.ok(inRange > 0);
  assert.equal(m.views, inRange);
  await shot('overview-custom-range');
  await page.selectOption('#range', '24h');
  await page.waitForFunction(() => new URL(location.href).searchParams.get('range') === '24h');
  await ready('/', null);
});

test('quality page: series and breakdowns', async () => {
  await page.click('nav a:has-text("Quality")');
  await ready('/quality');
  // Five breakdowns, each a bar chart or a note.
  assert.equal(await page.locator('section.panel h2:has-text("By ")').count(), 5);
  assert.ok((await page.locator('main canvas').count()) >= 8);
  await assertPartialTiles();
  await shot('quality');
});

/** Tiles that are on a page (fewer than the overview's) equal the API's. */
async function assertPartialTiles(extraQuery = '') {
  const { from, to } = await range();
  const expected = await api(server.url, `/data/v1/metrics?from=${from}&to=${to}${extraQuery}`);
  const shown = await tiles();
  assert.ok(Object.keys(shown).length > 0);
  for (const [metric, { value }] of Object.entries(shown)) {
    assert.equal(value, apiValue(expected.metrics[metric]), `tile ${metric}`);
  }
}

test('errors page: by code and message, with the affected sessions', async () => {
  await page.click('nav a:has-text("Errors")');
  await ready('/errors');
  const { from, to } = await range();
  const expected = await api(server.url, `/data/v1/errors?from=${from}&to=${to}`);
  const rows = await page.$$eval('#errors-table tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
  assert.equal(rows.length, expected.errors.length);
  assert.ok(rows.length >= 2);
  expected.errors.forEach((e, i) => {
    assert.equal(rows[i][0], e.code);
    assert.equal(rows[i][1], e.message);
    assert.equal(rows[i][2], String(e.count));
    assert.equal(rows[i][4], String(e.sessions));
  });
  // The hostile message is on the page as text.
  assert.ok(rows.some((r) => r[1] === HOSTILE_MESSAGE));
  await assertPartialTiles();
  await shot('errors');
});

test('ads page: impressions and the quartile funnel', async () => {
  await page.click('nav a:has-text("Ads")');
  await ready('/ads');
  const { from, to } = await range();
  const m = (await api(server.url, `/data/v1/metrics?from=${from}&to=${to}`)).metrics;
  const stages = JSON.parse(await page.getAttribute('[data-stages]', 'data-stages'));
  assert.deepEqual(stages, [m.ad_impressions, m.ads_started, m.ad_quartiles.first, m.ad_quartiles.mid, m.ad_quartiles.third, m.ads_completed]);
  assert.ok(m.ad_impressions > 0);
  await assertPartialTiles();
  await shot('ads');
});

test('realtime page: viewers now, updated every few seconds', async () => {
  await touchLive(server.url, sessions);
  await page.click('nav a:has-text("Realtime")');
  await ready('/realtime');
  const shown = Number(await page.getAttribute('#realtime-viewers', 'data-value'));
  const now = await api(server.url, '/data/v1/realtime');
  // Both read "now"; the seeded live sessions are in the last 60 s.
  assert.equal(shown, now.concurrent_viewers);
  assert.ok(shown >= 1, `concurrent viewers ${shown}`);
  const polls = Number(await page.getAttribute('#realtime-status', 'data-polls'));
  await page.waitForFunction((p) => Number(document.querySelector('#realtime-status')?.dataset.polls) > p, polls, { timeout: 15_000 });
  await shot('realtime');
});

test('videos page and one video with its retention curve', async () => {
  await page.click('nav a:has-text("Videos")');
  await ready('/videos');
  const { from, to } = await range();
  const byVideo = await api(server.url, `/data/v1/metrics/breakdown?metric=views&by=video_id&limit=1000&from=${from}&to=${to}`);
  const names = await page.$$eval('#videos-table tbody tr td:first-child', (tds) => tds.map((td) => td.textContent));
  assert.deepEqual(new Set(names), new Set(byVideo.rows.map((r) => r.key)));
  assert.ok(names.includes(HOSTILE_VIDEO), 'the hostile video id is listed as text');
  await shot('videos');
  await page.click('#videos-table a.video-link >> text=intro-video');
  await ready('/videos/intro-video');
  const r = await range();
  const retention = await api(server.url, `/data/v1/videos/intro-video/retention?from=${r.from}&to=${r.to}`);
  assert.equal(await page.getAttribute('[data-plays]', 'data-plays'), String(retention.plays));
  assert.ok(retention.plays > 0);
  await assertPartialTiles('&video_id=intro-video');
  await shot('video');
  // The hostile video's own page, reached through its link.
  await page.goBack();
  await ready('/videos');
  await page.locator('#videos-table a.video-link', { hasText: HOSTILE_VIDEO }).click();
  await ready(`/videos/${encodeURIComponent(HOSTILE_VIDEO)}`);
  assert.equal(await page.textContent('h1.video-title'), HOSTILE_VIDEO);
  await shot('video-hostile');
});

test('sessions: search the list, open a session, see its timeline', async () => {
  await page.click('nav a:has-text("Sessions")');
  await ready('/sessions');
  const { from, to } = await range();
  const list = await api(server.url, `/data/v1/sessions?from=${from}&to=${to}&limit=200`);
  assert.equal(await page.locator('#sessions-table tbody tr').count(), list.sessions.length);
  await shot('sessions');
  await page.fill('#session-search', 'honey');
  await page.click('form.search button');
  await ready('/sessions');
  assert.equal(await page.locator('#sessions-table tbody tr').count(), 1);
  await page.click('#sessions-table a.session-link');
  await ready('/sessions/sess-hostile');
  const events = (await api(server.url, '/data/v1/sessions/sess-hostile/events')).events;
  const timeline = page.locator('#session-timeline');
  assert.equal(await timeline.getAttribute('data-events'), String(events.length));
  assert.ok(Number(await timeline.getAttribute('data-spans')) >= 5, 'states, a stall, a seek and the ads are spans');
  assert.ok(Number(await timeline.getAttribute('data-marks')) >= 3, 'the error, the stall and the seek are marked');
  assert.equal(await timeline.locator('canvas').count(), 1);
  assert.equal(await page.locator('#events-table tbody tr').count(), events.length);
  // Custom metadata and the error message, shown as the text they are.
  const about = await page.$$eval('table.about tr', (trs) => Object.fromEntries(trs.map((tr) => [tr.querySelector('th').textContent, tr.querySelector('td').textContent])));
  assert.equal(about['custom.title'], HOSTILE_TITLE);
  assert.equal(about.video, HOSTILE_VIDEO);
  const errorMessages = await page.$$eval('#session-errors tbody tr td:nth-child(3)', (tds) => tds.map((td) => td.textContent));
  assert.deepEqual(errorMessages, [HOSTILE_MESSAGE]);
  const s = await api(server.url, '/data/v1/sessions/sess-hostile');
  const score = await page.textContent('[data-metric="viewer_experience_score"] .tile-value');
  assert.equal(score, s.metrics.viewer_experience_score.toFixed(1));
  await shot('session');
});

test('a failed session: the fatal error is on its timeline', async () => {
  await page.goto(`${server.url}/sessions/sess-fatal-1`);
  await ready('/sessions/sess-fatal-1');
  const codes = await page.$$eval('#session-errors tbody tr td:nth-child(2)', (tds) => tds.map((td) => td.textContent));
  assert.deepEqual(codes, ['NET_SEGMENT_TIMEOUT', 'MEDIA_ERR_DECODE']);
  assert.ok(Number(await page.getAttribute('#session-timeline', 'data-marks')) >= 2);
  await shot('session-failed');
});

test('nothing a player sent ran as code', async () => {
  assert.deepEqual(dialogs, [], 'no dialog opened');
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  // No element was made from the data: no <script> or <img> in the page body.
  assert.equal(await page.locator('main script, main img, #app img').count(), 0);
  assert.deepEqual(pageErrors, [], 'no uncaught error in the page');
});

test('a key that stops working sends back to the login page with a message', async () => {
  await page.evaluate(() => sessionStorage.setItem('playhead.readKey', 'revoked-key'));
  await page.goto(`${server.url}/quality?range=1h`);
  await page.waitForSelector('#login-message.error');
  assert.match(await page.textContent('#login-message'), /read key/i);
  assert.match(page.url(), /\/login\?next=/);
});
