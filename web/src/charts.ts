// Every chart of the dashboard, drawn by Apache ECharts (only the parts used
// are imported, so the bundle stays small). Charts draw on a canvas, and
// tooltips are set to `richText` so they are drawn there too: a video title
// or an error message in a chart is text, never HTML.

import * as echarts from 'echarts/core';
import { BarChart, CustomChart, FunnelChart, LineChart, ScatterChart } from 'echarts/charts';
import {
  DataZoomComponent,
  GridComponent,
  LegendComponent,
  MarkLineComponent,
  TooltipComponent,
} from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';
import type { CustomSeriesRenderItemAPI, CustomSeriesRenderItemParams } from 'echarts';
import type { BreakdownRow, Point, SessionEvent } from './api';
import { axisFormatter, formatMs, formatValue, type Kind } from './format';

echarts.use([
  LineChart,
  BarChart,
  FunnelChart,
  CustomChart,
  ScatterChart,
  GridComponent,
  TooltipComponent,
  LegendComponent,
  DataZoomComponent,
  MarkLineComponent,
  CanvasRenderer,
]);

type ECharts = echarts.ECharts;
type Option = echarts.EChartsCoreOption;

export const COLORS = ['#2563eb', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6', '#0ea5e9', '#64748b'];

const live: ECharts[] = [];

/** Start a chart in `el`; it is disposed when the page changes. */
export function chart(el: HTMLElement, option: Option): ECharts {
  const c = echarts.init(el, undefined, { renderer: 'canvas' });
  c.setOption({ color: COLORS, animation: false, tooltip: { renderMode: 'richText' }, ...option });
  live.push(c);
  return c;
}

/** Dispose one chart before the page changes. */
export function disposeChart(c: ECharts): void {
  const i = live.indexOf(c);
  if (i >= 0) live.splice(i, 1);
  c.dispose();
}

export function disposeCharts(): void {
  while (live.length) live.pop()!.dispose();
}

window.addEventListener('resize', () => live.forEach((c) => c.resize()));

/** A chart box: a div sized by CSS, with a data attribute tests can read. */
export function box(cls = 'chart', attrs: Record<string, string> = {}): HTMLDivElement {
  const d = document.createElement('div');
  d.className = cls;
  for (const [k, v] of Object.entries(attrs)) d.setAttribute(k, v);
  return d;
}

export interface LineSeries {
  name: string;
  points: Point[];
  area?: boolean;
}

/** Time series on a time axis; `compact` is the small chart of a tile. */
export function lineChart(el: HTMLElement, series: LineSeries[], kind: Kind, compact = false): ECharts {
  const fmt = axisFormatter(kind);
  return chart(el, {
    grid: compact
      ? { left: 4, right: 4, top: 6, bottom: 4, containLabel: false }
      : { left: 12, right: 16, top: series.length > 1 ? 32 : 16, bottom: 8, containLabel: true },
    legend: series.length > 1 && !compact ? { top: 0, data: series.map((s) => s.name) } : undefined,
    tooltip: {
      renderMode: 'richText',
      trigger: 'axis',
      valueFormatter: (v: unknown) => (typeof v === 'number' ? formatValue(kind, v) : '–'),
    },
    xAxis: { type: 'time', show: !compact },
    yAxis: {
      type: 'value',
      show: !compact,
      min: 0,
      minInterval: kind === 'count' ? 1 : undefined,
      axisLabel: { formatter: fmt },
      splitLine: { lineStyle: { color: '#eef0f3' } },
    },
    series: series.map((s) => ({
      name: s.name,
      type: 'line',
      // A few scattered values would be invisible as a line alone.
      showSymbol: s.points.filter((p) => p.value !== null).length <= 40,
      symbolSize: compact ? 3 : 5,
      connectNulls: false,
      step: false,
      areaStyle: s.area || compact ? { opacity: 0.15 } : undefined,
      lineStyle: { width: compact ? 1.5 : 2 },
      data: s.points.map((p) => [p.t, p.value]),
    })),
  });
}

/**
 * Horizontal bars, one per breakdown row (largest on top); `onPick` gets the
 * row's key when a bar is clicked.
 */
export function barChart(
  el: HTMLElement,
  rows: BreakdownRow[],
  kind: Kind,
  onPick?: (key: string) => void,
): ECharts {
  const shown = [...rows].reverse();
  const c = chart(el, {
    grid: { left: 8, right: 56, top: 8, bottom: 8, containLabel: true },
    tooltip: {
      renderMode: 'richText',
      trigger: 'item',
      formatter: (p: unknown) => {
        const i = (p as { dataIndex: number }).dataIndex;
        const r = shown[i];
        return `${r.key}\n${formatValue(kind, r.value)} · ${r.views} views`;
      },
    },
    xAxis: {
      type: 'value',
      minInterval: kind === 'count' ? 1 : undefined,
      axisLabel: { formatter: axisFormatter(kind) },
      splitLine: { lineStyle: { color: '#eef0f3' } },
    },
    yAxis: {
      type: 'category',
      data: shown.map((r) => r.key),
      axisLabel: { width: 150, overflow: 'truncate' },
    },
    series: [
      {
        type: 'bar',
        data: shown.map((r) => r.value),
        barMaxWidth: 22,
        label: { show: true, position: 'right', formatter: (p: { value: unknown }) => formatValue(kind, p.value as number) },
        cursor: onPick ? 'pointer' : 'default',
      },
    ],
  });
  if (onPick) c.on('click', (p) => onPick(shown[p.dataIndex].key));
  return c;
}

/** A funnel whose stages keep their order. */
export function funnelChart(el: HTMLElement, stages: { name: string; value: number }[]): ECharts {
  const top = Math.max(1, ...stages.map((s) => s.value));
  return chart(el, {
    tooltip: { renderMode: 'richText', trigger: 'item', formatter: '{b}: {c}' },
    series: [
      {
        type: 'funnel',
        sort: 'none',
        left: '10%',
        width: '80%',
        min: 0,
        max: top,
        minSize: '4%',
        gap: 3,
        label: {
          show: true,
          position: 'inside',
          formatter: (p: { name: string; value: unknown }) => {
            const v = Number(p.value);
            return `${p.name}: ${v} (${((v / top) * 100).toFixed(0)} %)`;
          },
          color: '#fff',
        },
        data: stages,
      },
    ],
  });
}

/** The retention curve: share of plays (0..1) that reached each position. */
export function retentionChart(el: HTMLElement, points: { position_s: number; share: number }[]): ECharts {
  return chart(el, {
    grid: { left: 12, right: 16, top: 16, bottom: 24, containLabel: true },
    tooltip: {
      renderMode: 'richText',
      trigger: 'axis',
      valueFormatter: (v: unknown) => `${((v as number) * 100).toFixed(1)} %`,
    },
    xAxis: {
      type: 'value',
      name: 'position',
      nameLocation: 'middle',
      nameGap: 24,
      axisLabel: { formatter: (v: number) => `${Math.floor(v / 60)}:${String(v % 60).padStart(2, '0')}` },
    },
    yAxis: { type: 'value', min: 0, max: 1, axisLabel: { formatter: (v: number) => `${Math.round(v * 100)} %` } },
    series: [
      {
        name: 'share of plays',
        type: 'line',
        showSymbol: false,
        areaStyle: { opacity: 0.2 },
        data: points.map((p) => [p.position_s, p.share]),
      },
    ],
  });
}

/** A line that grows as values arrive (the realtime page). */
export function liveChart(el: HTMLElement, name: string): { chart: ECharts; push: (t: number, v: number) => void } {
  const data: [number, number][] = [];
  const c = chart(el, {
    grid: { left: 12, right: 16, top: 16, bottom: 8, containLabel: true },
    tooltip: { renderMode: 'richText', trigger: 'axis' },
    xAxis: { type: 'time' },
    yAxis: { type: 'value', min: 0, minInterval: 1 },
    series: [{ name, type: 'line', showSymbol: true, symbolSize: 4, areaStyle: { opacity: 0.15 }, data }],
  });
  return {
    chart: c,
    push(t, v) {
      data.push([t, v]);
      if (data.length > 360) data.shift();
      c.setOption({ series: [{ data }] });
    },
  };
}

// ---- The session timeline ----------------------------------------------

const LANES = ['Player state', 'Ads', 'Stalls', 'Seeks', 'Errors'] as const;

export const STATE_COLORS: Record<string, string> = {
  init: '#cbd5e1',
  starting: '#60a5fa',
  playing: '#22c55e',
  paused: '#94a3b8',
  buffering: '#ef4444',
  seeking: '#f59e0b',
  ended: '#334155',
  closed: '#334155',
};

interface Span {
  lane: number;
  from: number;
  to: number;
  label: string;
  color: string;
}

interface Mark {
  lane: number;
  t: number;
  label: string;
}

export interface TimelineStats {
  spans: number;
  marks: number;
  events: number;
}

/**
 * Lay a session's canonical events out on a time axis: the player state
 * between events (`state_after` of each event holds until the next), ad
 * breaks and ads, stalls and seeks as spans; errors as marks. `endMs` closes
 * the last span (the session's end, or its last event).
 */
export function timelineLayout(events: SessionEvent[], endMs: number): { spans: Span[]; marks: Mark[] } {
  const spans: Span[] = [];
  const marks: Mark[] = [];
  const ts = events.map((e) => Date.parse(e.t));
  let breakStart: number | null = null;
  let adStart: { t: number; id: string } | null = null;
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    const t = ts[i];
    const next = i + 1 < events.length ? ts[i + 1] : Math.max(endMs, t);
    const prevState = i > 0 ? events[i - 1].state_after : null;
    // One span per run of the same state.
    if (e.state_after !== prevState || spans.length === 0) {
      spans.push({ lane: 0, from: t, to: next, label: e.state_after, color: STATE_COLORS[e.state_after] ?? '#a1a1aa' });
    } else {
      const last = [...spans].reverse().find((s) => s.lane === 0)!;
      last.to = next;
    }
    if (e.state_after === 'buffering') spans.push({ lane: 2, from: t, to: next, label: 'stall', color: STATE_COLORS.buffering });
    if (e.state_after === 'seeking') spans.push({ lane: 3, from: t, to: next, label: 'seek', color: STATE_COLORS.seeking });
    switch (e.type) {
      case 'adbreakstart':
        breakStart = t;
        break;
      case 'adbreakend':
        if (breakStart !== null) spans.push({ lane: 1, from: breakStart, to: t, label: 'ad break', color: '#c4b5fd' });
        breakStart = null;
        break;
      case 'adstart':
        adStart = { t, id: typeof e.data.ad_id === 'string' ? e.data.ad_id : 'ad' };
        break;
      case 'adcomplete':
      case 'adskip':
        if (adStart) spans.push({ lane: 1, from: adStart.t, to: t, label: `${adStart.id} (${e.type === 'adskip' ? 'skipped' : 'complete'})`, color: '#7c3aed' });
        adStart = null;
        break;
      case 'error': {
        const code = e.data.code ?? '';
        const msg = e.data.message ?? '';
        const fatal = e.data.severity === 'fatal' || e.data.fatal === true ? ' (fatal)' : '';
        marks.push({ lane: 4, t, label: `error ${String(code)}${fatal}: ${String(msg)}` });
        break;
      }
      case 'seeking':
      case 'seeked':
        marks.push({ lane: 3, t, label: `${e.type} at ${e.playhead ?? '?'} s` });
        break;
      case 'waiting':
        marks.push({ lane: 2, t, label: `stall at ${e.playhead ?? '?'} s` });
        break;
    }
  }
  const end = Math.max(endMs, ts.length ? ts[ts.length - 1] : endMs);
  if (breakStart !== null) spans.push({ lane: 1, from: breakStart, to: end, label: 'ad break', color: '#c4b5fd' });
  if (adStart) spans.push({ lane: 1, from: adStart.t, to: end, label: adStart.id, color: '#7c3aed' });
  // Ad breaks first, so the ads inside them are drawn on top.
  const rank = (sp: Span) => (sp.lane === 1 && sp.label === 'ad break' ? 0 : 1);
  spans.sort((a, b) => rank(a) - rank(b));
  return { spans, marks };
}

/** The session's event timeline (ECharts custom series) and its playhead. */
export function timelineChart(el: HTMLElement, events: SessionEvent[], endMs: number): TimelineStats {
  const { spans, marks } = timelineLayout(events, endMs);
  const t0 = events.length ? Date.parse(events[0].t) : endMs;
  const lanes = [...LANES].reverse(); // first lane on top
  const laneIndex = (l: number) => lanes.length - 1 - l;
  const rel = (t: number) => formatMs(Math.max(0, t - t0));
  const c = chart(el, {
    tooltip: {
      renderMode: 'richText',
      trigger: 'item',
      formatter: (p: unknown) => {
        const { seriesIndex, dataIndex } = p as { seriesIndex: number; dataIndex: number };
        if (seriesIndex === 0) {
          const s = spans[dataIndex];
          return `${s.label}\n+${rel(s.from)} → +${rel(s.to)} (${formatMs(s.to - s.from)})`;
        }
        if (seriesIndex === 1) {
          const m = marks[dataIndex];
          return `${m.label}\nat +${rel(m.t)}`;
        }
        const e = events[dataIndex];
        return `${e.type} → ${e.state_after}\nplayhead ${e.playhead ?? '–'} s at +${rel(Date.parse(e.t))}`;
      },
    },
    axisPointer: { link: [{ xAxisIndex: 'all' }] },
    grid: [
      { left: 110, right: 24, top: 12, height: 150 },
      { left: 110, right: 24, top: 200, height: 110 },
    ],
    xAxis: [
      { type: 'time', gridIndex: 0, min: t0, max: Math.max(endMs, t0 + 1), axisLabel: { show: false } },
      { type: 'time', gridIndex: 1, min: t0, max: Math.max(endMs, t0 + 1) },
    ],
    yAxis: [
      { type: 'category', gridIndex: 0, data: lanes, splitLine: { show: true, lineStyle: { color: '#eef0f3' } } },
      { type: 'value', gridIndex: 1, name: 'playhead (s)', nameLocation: 'middle', nameGap: 48, min: 0 },
    ],
    dataZoom: [{ type: 'inside', xAxisIndex: [0, 1], filterMode: 'weakFilter' }],
    series: [
      {
        type: 'custom',
        name: 'spans',
        xAxisIndex: 0,
        yAxisIndex: 0,
        encode: { x: [1, 2], y: 0 },
        data: spans.map((s) => ({
          value: [laneIndex(s.lane), s.from, s.to, s.lane === 1 && s.label !== 'ad break' ? 0.3 : 0.6],
          itemStyle: { color: s.color },
        })),
        renderItem: (params: CustomSeriesRenderItemParams, api: CustomSeriesRenderItemAPI) => {
          const lane = api.value(0);
          const start = api.coord([api.value(1), lane]);
          const end = api.coord([api.value(2), lane]);
          const size = api.size ? api.size([0, 1]) : [0, 20];
          const height = (Array.isArray(size) ? size[1] : size) * Number(api.value(3));
          const sys = params.coordSys as unknown as { x: number; y: number; width: number; height: number };
          const x0 = Math.max(start[0], sys.x);
          const x1 = Math.min(Math.max(end[0], start[0] + 2), sys.x + sys.width);
          if (x1 <= x0) return null;
          return {
            type: 'rect',
            shape: { x: x0, y: start[1] - height / 2, width: x1 - x0, height },
            style: { fill: api.visual('color') as string },
          };
        },
      },
      {
        type: 'scatter',
        name: 'marks',
        xAxisIndex: 0,
        yAxisIndex: 0,
        symbol: 'diamond',
        symbolSize: 12,
        itemStyle: { color: '#b91c1c' },
        data: marks.map((m) => [m.t, lanes[laneIndex(m.lane)]]),
      },
      {
        type: 'line',
        name: 'playhead',
        xAxisIndex: 1,
        yAxisIndex: 1,
        step: false,
        showSymbol: true,
        symbolSize: 4,
        lineStyle: { width: 1.5 },
        data: events.map((e) => [Date.parse(e.t), e.playhead]),
      },
    ],
  });
  void c;
  return { spans: spans.length, marks: marks.length, events: events.length };
}
