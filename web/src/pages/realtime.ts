// Realtime: viewers now (sessions with an event in the last 60 s), polled
// every few seconds, and the videos they watch.

import { get, type RealtimeView } from '../api';
import { barChart, disposeChart, liveChart } from '../charts';
import { h, replace, table } from '../dom';
import { apiQuery, link } from '../state';
import { chartPanel, errorText, type Ctx } from './common';

export const POLL_MS = 5000;

export async function realtimePage(ctx: Ctx): Promise<void> {
  const now = h('div', { class: 'big-number', id: 'realtime-viewers' }, '…');
  const last5 = h('div', { class: 'big-number secondary', id: 'realtime-5m' }, '…');
  const status = h('p', { class: 'note', id: 'realtime-status' }, 'Connecting…');
  const trend = chartPanel(`Concurrent viewers (every ${POLL_MS / 1000} s)`);
  const top = chartPanel('Top videos now', 'chart bars');
  const list = h('div', {});
  ctx.root.append(
    h('h1', {}, 'Realtime'),
    h(
      'div',
      { class: 'tiles small' },
      h('div', { class: 'tile' }, h('div', { class: 'tile-label' }, 'Concurrent viewers now'), now),
      h('div', { class: 'tile' }, h('div', { class: 'tile-label' }, 'Viewers in the last 5 minutes'), last5),
    ),
    status,
    h('div', { class: 'grid2' }, trend.panel, h('section', { class: 'panel' }, h('h2', {}, 'Top videos now'), top.chartBox, list)),
  );
  const live = liveChart(trend.chartBox, 'concurrent viewers');
  let bars: ReturnType<typeof barChart> | null = null;
  let polls = 0;
  const poll = async () => {
    // Realtime takes filters but no range: it is always "now".
    const q = apiQuery({ key: 'now', from: 0, to: 1 });
    q.delete('from');
    q.delete('to');
    try {
      const r = await get<RealtimeView>('/data/v1/realtime', q);
      polls += 1;
      const t = Date.now();
      replace(now, String(r.concurrent_viewers));
      now.setAttribute('data-value', String(r.concurrent_viewers));
      replace(last5, String(r.viewers_last_5m));
      live.push(t, r.concurrent_viewers);
      status.setAttribute('data-polls', String(polls));
      replace(status, `Updated ${new Date(t).toLocaleTimeString()} · refreshes every ${POLL_MS / 1000} s`);
      const rows = r.by_video.slice(0, 10).map((v) => ({ key: v.video_id, value: v.viewers, views: v.viewers }));
      if (bars) disposeChart(bars);
      bars = null;
      if (rows.length) {
        top.chartBox.hidden = false;
        bars = barChart(top.chartBox, rows, 'count');
      } else {
        top.chartBox.hidden = true;
      }
      replace(
        list,
        rows.length
          ? table(['video', 'viewers now'], r.by_video.slice(0, 10).map((v) => [h('a', { href: link(`/videos/${encodeURIComponent(v.video_id)}`) }, v.video_id), String(v.viewers)]))
          : h('p', { class: 'note' }, 'Nobody is watching right now.'),
      );
    } catch (e) {
      replace(status, `Update failed: ${errorText(e)}; retrying.`);
    }
  };
  await poll();
  const timer = window.setInterval(poll, POLL_MS);
  ctx.onLeave(() => window.clearInterval(timer));
}
