// Videos: per-video metrics, and for one video its numbers, its views over
// time and its retention curve.

import { get, type Breakdown, type Retention } from '../api';
import { barChart, lineChart, retentionChart } from '../charts';
import { h, table } from '../dom';
import { formatMetric } from '../format';
import { apiQuery, link } from '../state';
import { chartPanel, tiles, timeseries, type Ctx } from './common';

const COLUMNS = ['views', 'plays', 'watch_time_ms', 'completion_rate', 'viewer_experience_score', 'startup_time_ms_p50', 'rebuffer_percentage'];

export async function videosPage(ctx: Ctx): Promise<void> {
  const views = chartPanel('Views by video', 'chart bars');
  const list = h('section', { class: 'panel' }, h('h2', {}, 'Videos'), h('p', { class: 'note' }, 'Loading…'));
  ctx.root.append(h('h1', {}, 'Videos'), views.panel, list);
  const answers = await Promise.all(
    COLUMNS.map((metric) => get<Breakdown>('/data/v1/metrics/breakdown', apiQuery(ctx.range, { metric, by: 'video_id', limit: '1000' }))),
  );
  const byVideo = new Map<string, Record<string, number | null>>();
  answers.forEach((b, i) => {
    for (const r of b.rows) {
      const row = byVideo.get(r.key) ?? {};
      row[COLUMNS[i]] = r.value;
      byVideo.set(r.key, row);
    }
  });
  const videos = [...byVideo.entries()].sort((a, b) => (b[1].views ?? 0) - (a[1].views ?? 0));
  if (answers[0].rows.length) barChart(views.chartBox, answers[0].rows.slice(0, 15), 'count');
  else views.chartBox.replaceWith(h('p', { class: 'note' }, 'No video in this range.'));
  list.replaceChildren(
    h('h2', {}, `Videos (${videos.length})`),
    videos.length
      ? table(
          ['video', 'views', 'plays', 'watch time', 'completion', 'experience score', 'startup p50', 'rebuffer %'],
          videos.map(([id, m]) => [
            h('a', { href: link(`/videos/${encodeURIComponent(id)}`), class: 'video-link' }, id),
            ...COLUMNS.map((c) => formatMetric(c, m[c] ?? null)),
          ]),
          { id: 'videos-table' },
        )
      : h('p', { class: 'note' }, 'No video in this range.'),
  );
}

export async function videoPage(ctx: Ctx): Promise<void> {
  const id = ctx.args[0];
  // This video's numbers: the page's filters plus `video_id`.
  const filtered: Ctx = { ...ctx, filters: [...ctx.filters.filter(([k]) => k !== 'video_id'), ['video_id', id]] };
  const tileGrid = h('div', { class: 'tiles small' });
  const retention = chartPanel('Retention: share of plays still watching at each position', 'chart tall');
  const trend = chartPanel('Views and plays over time');
  const q = new URLSearchParams(link('').slice(1));
  q.delete('video_id');
  q.set('video_id', id);
  ctx.root.append(
    h('p', { class: 'crumbs' }, h('a', { href: link('/videos') }, 'Videos'), ' / ', h('span', {}, id)),
    h('h1', { class: 'video-title' }, id),
    h('p', {}, h('a', { href: `/sessions?${q}` }, 'Sessions of this video')),
    tileGrid,
    h('div', { class: 'grid2' }, retention.panel, trend.panel),
  );
  const withVideo = (r: typeof ctx.range, m: string) => timeseries(r, m, filtered.filters);
  await Promise.all([
    videoTiles(filtered, tileGrid),
    get<Retention>(`/data/v1/videos/${encodeURIComponent(id)}/retention`, apiQuery(ctx.range)).then((r) => {
      retention.chartBox.setAttribute('data-plays', String(r.plays));
      if (r.points.length) retentionChart(retention.chartBox, r.points);
      else retention.chartBox.replaceWith(h('p', { class: 'note' }, 'No plays of this video in this range.'));
    }),
    Promise.all([withVideo(ctx.range, 'views'), withVideo(ctx.range, 'plays')]).then(([v, p]) =>
      lineChart(trend.chartBox, [{ name: 'views', points: v.points }, { name: 'plays', points: p.points }], 'count'),
    ),
  ]);
}

async function videoTiles(ctx: Ctx, grid: HTMLElement): Promise<void> {
  await tiles(ctx, ['views', 'plays', 'watch_time_ms', 'completion_rate', 'viewer_experience_score', 'startup_time_ms_p50', 'rebuffer_percentage'], grid, false);
}
