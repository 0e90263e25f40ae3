// Overview: the headline numbers, each with its series and its change
// against the previous period of the same length.

import { h } from '../dom';
import { formatTime } from '../format';
import { tiles, type Ctx } from './common';

export const OVERVIEW_METRICS = [
  'views',
  'plays',
  'unique_viewers',
  'watch_time_ms',
  'viewer_experience_score',
  'startup_time_ms_p50',
  'startup_time_ms_p95',
  'rebuffer_percentage',
  'playback_failure_percentage',
  'exit_before_start_percentage',
  'concurrent_viewers',
];

export async function overviewPage(ctx: Ctx): Promise<void> {
  const grid = h('div', { class: 'tiles', id: 'overview-tiles' });
  ctx.root.append(
    h('h1', {}, 'Overview'),
    h('p', { class: 'range-note' }, `Sessions started from ${formatTime(ctx.range.from)} to ${formatTime(ctx.range.to)}, compared with the period of the same length before.`),
    grid,
  );
  await tiles(ctx, OVERVIEW_METRICS, grid);
}
