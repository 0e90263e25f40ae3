// Pieces shared by the pages: the context a page renders in, metric tiles
// with their series and change, and error panels.

import { ApiError, get, type Overview, type PropertyInfo, type Timeseries } from '../api';
import { box, lineChart } from '../charts';
import { h, replace, type Child } from '../dom';
import { change, formatMetric, metricInfo } from '../format';
import { apiQuery, intervalFor, type Range } from '../state';

export interface Ctx {
  root: HTMLElement;
  range: Range;
  filters: [string, string][];
  /** Path segments after the page name (`/sessions/<id>` → [id]). */
  args: string[];
  info: PropertyInfo | null;
  /** Run `f` when the page is left (timers). */
  onLeave: (f: () => void) => void;
}

export function previousRange(r: Range): Range {
  const span = r.to - r.from;
  return { key: 'previous', from: r.from - span, to: r.from };
}

export async function overview(r: Range, extra: Record<string, string> = {}, filters?: [string, string][]): Promise<Overview> {
  return get<Overview>('/data/v1/metrics', apiQuery(r, extra, filters));
}

export async function timeseries(r: Range, metric: string, filters?: [string, string][]): Promise<Timeseries> {
  return get<Timeseries>('/data/v1/metrics/timeseries', apiQuery(r, { metric, interval: intervalFor(r) }, filters));
}

export function num(v: unknown): number | null {
  return typeof v === 'number' ? v : null;
}

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return e.status ? `${e.message} (HTTP ${e.status})` : e.message;
  return e instanceof Error ? e.message : String(e);
}

export function errorPanel(e: unknown): HTMLElement {
  return h('div', { class: 'error-box', role: 'alert' }, `Could not load this view: ${errorText(e)}`);
}

/**
 * A metric tile: the value over the range, its change against the previous
 * period, and its time series. `data-metric` and `data-value` carry the raw
 * number the tile shows (the browser tests compare them with the API).
 */
export function tile(metric: string, withChart = true): { el: HTMLElement; fill: (now: Overview, prev: Overview | null) => void; chartBox: HTMLElement | null } {
  const info = metricInfo(metric);
  const value = h('div', { class: 'tile-value' }, '…');
  const delta = h('div', { class: 'tile-delta' }, '');
  const chartBox = withChart ? box('tile-chart') : null;
  const el = h('div', { class: 'tile', 'data-metric': metric }, h('div', { class: 'tile-label' }, info.label), value, delta, chartBox);
  return {
    el,
    chartBox,
    fill(now, prev) {
      const v = num(now.metrics[metric]);
      el.setAttribute('data-value', v === null ? 'null' : String(v));
      replace(value, formatMetric(metric, v));
      if (!prev) return;
      const p = num(prev.metrics[metric]);
      const c = change(v, p);
      if (num(prev.metrics.views) === 0) {
        replace(delta, 'no data in the previous period');
        delta.className = 'tile-delta';
        return;
      }
      if (c === null) {
        replace(delta, p === null || p === 0 ? 'no data in the previous period' : '–');
        delta.className = 'tile-delta';
        return;
      }
      const good = c === 0 ? null : c > 0 === info.higherIsBetter;
      const arrow = c > 0 ? '▲' : c < 0 ? '▼' : '=';
      replace(delta, `${arrow} ${Math.abs(c).toFixed(1)} % vs previous period (${formatMetric(metric, p)})`);
      delta.className = `tile-delta ${good === null ? '' : good ? 'good' : 'bad'}`;
    },
  };
}

/** Tiles for `metrics` with their series, filled from the API. */
export async function tiles(ctx: Ctx, metrics: string[], parent: HTMLElement, withCharts = true): Promise<Overview> {
  const ts = metrics.map((m) => tile(m, withCharts));
  replace(parent, ts.map((t) => t.el));
  const [now, prev] = await Promise.all([overview(ctx.range, {}, ctx.filters), overview(previousRange(ctx.range), {}, ctx.filters)]);
  ts.forEach((t) => t.fill(now, prev));
  if (withCharts) {
    const series = await Promise.all(metrics.map((m) => timeseries(ctx.range, m, ctx.filters)));
    series.forEach((s, i) => {
      if (ts[i].chartBox) lineChart(ts[i].chartBox!, [{ name: metricInfo(metrics[i]).label, points: s.points }], metricInfo(metrics[i]).kind, true);
    });
  }
  return now;
}

/** A chart panel with a title; returns the panel and its chart box. */
export function chartPanel(title: string, cls = 'chart', ...extra: Child[]): { panel: HTMLElement; chartBox: HTMLDivElement } {
  const chartBox = box(cls);
  const panel = h('section', { class: 'panel' }, h('h2', {}, title), ...extra, chartBox);
  return { panel, chartBox };
}
