// Quality: startup, smoothness, failures and exits before start over time,
// and broken down by browser, OS, device, video and protocol. A bar adds its
// value as a filter.

import { get, type Breakdown } from '../api';
import { barChart, lineChart } from '../charts';
import { h } from '../dom';
import { metricInfo } from '../format';
import { apiQuery, param, updateQuery } from '../state';
import { chartPanel, errorPanel, tiles, timeseries, type Ctx } from './common';

const BREAKDOWN_METRICS = [
  'viewer_experience_score',
  'startup_time_ms_p50',
  'rebuffer_percentage',
  'smoothness_score',
  'playback_failure_percentage',
  'exit_before_start_percentage',
  'views',
];

const BY = [
  ['browser', 'Browser'],
  ['os', 'OS'],
  ['device_type', 'Device'],
  ['video_id', 'Video'],
  ['protocol', 'Protocol'],
] as const;

export async function qualityPage(ctx: Ctx): Promise<void> {
  const metric = BREAKDOWN_METRICS.includes(param('metric') ?? '') ? param('metric')! : BREAKDOWN_METRICS[0];
  const tileGrid = h('div', { class: 'tiles small' });
  const startup = chartPanel('Startup time');
  const smooth = chartPanel('Smoothness score and rebuffering');
  const rebuf = chartPanel('Rebuffer %');
  const fail = chartPanel('Playback failures and exits before start');
  const picker = h(
    'select',
    {
      id: 'breakdown-metric',
      onchange: (e: Event) => updateQuery((p) => p.set('metric', (e.target as HTMLSelectElement).value)),
    },
    BREAKDOWN_METRICS.map((m) => h('option', { value: m, selected: m === metric }, metricInfo(m).label)),
  );
  const breakdowns = BY.map(([dim, label]) => ({ dim, ...chartPanel(`By ${label}`, 'chart bars') }));
  ctx.root.append(
    h('h1', {}, 'Quality of experience'),
    tileGrid,
    h('div', { class: 'grid2' }, startup.panel, smooth.panel, rebuf.panel, fail.panel),
    h('div', { class: 'section-head' }, h('h2', {}, 'Breakdowns'), h('label', {}, 'Metric ', picker), h('span', { class: 'hint' }, 'Click a bar to filter by it.')),
    h('div', { class: 'grid2' }, breakdowns.map((b) => b.panel)),
  );
  const work: Promise<unknown>[] = [
    tiles(ctx, ['viewer_experience_score', 'startup_time_ms_p50', 'smoothness_score', 'rebuffer_percentage', 'playback_failure_percentage', 'exit_before_start_percentage'], tileGrid, false),
  ];
  const series = async (names: string[]) => Promise.all(names.map((m) => timeseries(ctx.range, m)));
  work.push(
    series(['startup_time_ms_p50', 'startup_time_ms_p95']).then(([a, b]) =>
      lineChart(startup.chartBox, [{ name: 'p50', points: a.points }, { name: 'p95', points: b.points }], 'ms'),
    ),
    series(['smoothness_score', 'viewer_experience_score']).then(([a, b]) =>
      lineChart(smooth.chartBox, [{ name: 'smoothness score', points: a.points }, { name: 'viewer experience score', points: b.points }], 'score'),
    ),
    series(['rebuffer_percentage']).then(([a]) => lineChart(rebuf.chartBox, [{ name: 'rebuffer %', points: a.points, area: true }], 'fraction')),
    series(['playback_failure_percentage', 'exit_before_start_percentage']).then(([a, b]) =>
      lineChart(fail.chartBox, [{ name: 'failures %', points: a.points }, { name: 'exits before start %', points: b.points }], 'percent'),
    ),
  );
  for (const b of breakdowns) {
    work.push(
      get<Breakdown>('/data/v1/metrics/breakdown', apiQuery(ctx.range, { metric, by: b.dim, limit: '12' }))
        .then((bd) => {
          if (bd.rows.length === 0) b.chartBox.replaceWith(h('p', { class: 'note' }, 'No sessions with this dimension in the range.'));
          else barChart(b.chartBox, bd.rows, metricInfo(metric).kind, (key) => updateQuery((p) => p.append(b.dim, key)));
        })
        .catch((e) => b.chartBox.replaceWith(errorPanel(e))),
    );
  }
  await Promise.all(work);
}
