// Errors: how often playback fails, errors by code and by message, and the
// sessions they touched (each message links to its latest session).

import { get, type ErrorList } from '../api';
import { barChart, lineChart } from '../charts';
import { h, table } from '../dom';
import { formatTime } from '../format';
import { apiQuery, link } from '../state';
import { chartPanel, overview, tiles, timeseries, type Ctx } from './common';

export async function errorsPage(ctx: Ctx): Promise<void> {
  const tileGrid = h('div', { class: 'tiles small' });
  const byCode = chartPanel('Errors by code', 'chart bars');
  const trend = chartPanel('Playback failures % over time');
  const list = h('section', { class: 'panel' }, h('h2', {}, 'Errors by code and message'), h('p', { class: 'note' }, 'Loading…'));
  ctx.root.append(h('h1', {}, 'Errors'), tileGrid, h('div', { class: 'grid2' }, byCode.panel, trend.panel), list);
  await Promise.all([
    tiles(ctx, ['playback_failure_percentage', 'exit_before_start_percentage', 'views'], tileGrid, false),
    overview(ctx.range).then((o) => {
      const counts = (o.metrics.errors ?? {}) as Record<string, number>;
      const rows = Object.entries(counts)
        .map(([key, value]) => ({ key, value, views: value }))
        .sort((a, b) => b.value - a.value);
      if (rows.length === 0) byCode.chartBox.replaceWith(h('p', { class: 'note' }, 'No errors in this range.'));
      else barChart(byCode.chartBox, rows.slice(0, 15), 'count');
    }),
    timeseries(ctx.range, 'playback_failure_percentage').then((s) =>
      lineChart(trend.chartBox, [{ name: 'failures %', points: s.points, area: true }], 'percent'),
    ),
    get<ErrorList>('/data/v1/errors', apiQuery(ctx.range)).then((e) => {
      const rows = e.errors.map((g) => [
        h('code', {}, g.code),
        h('span', { class: 'message' }, g.message || '(no message)'),
        String(g.count),
        g.fatal ? `${g.fatal} fatal` : 'not fatal',
        String(g.sessions),
        formatTime(g.last_seen),
        h('a', { href: link(`/sessions/${encodeURIComponent(g.last_session_id)}`) }, 'latest session'),
      ]);
      list.replaceChildren(
        h('h2', {}, 'Errors by code and message'),
        h('p', { class: 'note' }, `${e.affected_sessions} sessions had at least one error${e.truncated ? ' (only the most recent were read)' : ''}.`),
        rows.length
          ? table(['code', 'message', 'occurrences', 'fatal', 'affected sessions', 'last seen', ''], rows, { id: 'errors-table' })
          : h('p', { class: 'note' }, 'No errors in this range.'),
      );
    }),
  ]);
}
