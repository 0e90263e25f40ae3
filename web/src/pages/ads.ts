// Ads: impressions, the quartile funnel and completion.

import { get, type Breakdown } from '../api';
import { barChart, funnelChart, lineChart } from '../charts';
import { h } from '../dom';
import { apiQuery } from '../state';
import { chartPanel, num, tiles, timeseries, type Ctx } from './common';

export async function adsPage(ctx: Ctx): Promise<void> {
  const tileGrid = h('div', { class: 'tiles small' });
  const funnel = chartPanel('Quartile funnel', 'chart tall');
  const trend = chartPanel('Ads over time');
  const byVideo = chartPanel('Ad impressions by video', 'chart bars');
  ctx.root.append(h('h1', {}, 'Ads'), tileGrid, h('div', { class: 'grid2' }, funnel.panel, trend.panel), byVideo.panel);
  const now = await tiles(ctx, ['ad_impressions', 'ads_started', 'ads_completed', 'ad_completion_rate'], tileGrid);
  const q = (now.metrics.ad_quartiles ?? {}) as Record<string, number>;
  const stages = [
    { name: 'Impressions', value: num(now.metrics.ad_impressions) ?? 0 },
    { name: 'Started', value: num(now.metrics.ads_started) ?? 0 },
    { name: 'First quartile', value: q.first ?? 0 },
    { name: 'Midpoint', value: q.mid ?? 0 },
    { name: 'Third quartile', value: q.third ?? 0 },
    { name: 'Completed', value: num(now.metrics.ads_completed) ?? 0 },
  ];
  funnel.chartBox.setAttribute('data-stages', JSON.stringify(stages.map((s) => s.value)));
  funnelChart(funnel.chartBox, stages);
  await Promise.all([
    Promise.all(['ad_impressions', 'ads_started', 'ads_completed'].map((m) => timeseries(ctx.range, m))).then(([a, b, c]) =>
      lineChart(trend.chartBox, [{ name: 'impressions', points: a.points }, { name: 'started', points: b.points }, { name: 'completed', points: c.points }], 'count'),
    ),
    get<Breakdown>('/data/v1/metrics/breakdown', apiQuery(ctx.range, { metric: 'ad_impressions', by: 'video_id', limit: '12' })).then((b) => {
      const rows = b.rows.filter((r) => (r.value ?? 0) > 0);
      if (rows.length) barChart(byVideo.chartBox, rows, 'count');
      else byVideo.chartBox.replaceWith(h('p', { class: 'note' }, 'No ad impressions in this range.'));
    }),
  ]);
}
