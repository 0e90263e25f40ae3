// How each metric (names from spec/metrics.md) is labelled and shown.

export type Kind = 'count' | 'duration' | 'ms' | 'fraction' | 'percent' | 'score' | 'bps' | 'rate';

export interface MetricInfo {
  label: string;
  kind: Kind;
  /** Whether a rise is good news (colours the change against the previous period). */
  higherIsBetter: boolean;
}

export const METRICS: Record<string, MetricInfo> = {
  views: { label: 'Views', kind: 'count', higherIsBetter: true },
  plays: { label: 'Plays', kind: 'count', higherIsBetter: true },
  unique_viewers: { label: 'Unique viewers', kind: 'count', higherIsBetter: true },
  unique_plays: { label: 'Unique plays', kind: 'count', higherIsBetter: true },
  play_rate: { label: 'Play rate', kind: 'fraction', higherIsBetter: true },
  watch_time_ms: { label: 'Watch time', kind: 'duration', higherIsBetter: true },
  playing_time_ms: { label: 'Playing time', kind: 'duration', higherIsBetter: true },
  avg_watch_time_ms: { label: 'Watch time per play', kind: 'duration', higherIsBetter: true },
  viewer_experience_score: { label: 'Viewer experience score', kind: 'score', higherIsBetter: true },
  startup_score: { label: 'Startup score', kind: 'score', higherIsBetter: true },
  smoothness_score: { label: 'Smoothness score', kind: 'score', higherIsBetter: true },
  playback_success_score: { label: 'Playback success score', kind: 'score', higherIsBetter: true },
  startup_time_ms_p50: { label: 'Startup time p50', kind: 'ms', higherIsBetter: false },
  startup_time_ms_p90: { label: 'Startup time p90', kind: 'ms', higherIsBetter: false },
  startup_time_ms_p95: { label: 'Startup time p95', kind: 'ms', higherIsBetter: false },
  rebuffer_percentage: { label: 'Rebuffer %', kind: 'fraction', higherIsBetter: false },
  rebuffer_frequency: { label: 'Rebuffers per minute', kind: 'rate', higherIsBetter: false },
  playback_failure_percentage: { label: 'Playback failures %', kind: 'percent', higherIsBetter: false },
  exit_before_start_percentage: { label: 'Exits before start %', kind: 'percent', higherIsBetter: false },
  completion_rate: { label: 'Completion rate', kind: 'fraction', higherIsBetter: true },
  bitrate_avg_bps: { label: 'Average bitrate', kind: 'bps', higherIsBetter: true },
  ad_impressions: { label: 'Ad impressions', kind: 'count', higherIsBetter: true },
  ads_started: { label: 'Ads started', kind: 'count', higherIsBetter: true },
  ads_completed: { label: 'Ads completed', kind: 'count', higherIsBetter: true },
  ad_completion_rate: { label: 'Ad completion rate', kind: 'fraction', higherIsBetter: true },
  concurrent_viewers: { label: 'Concurrent viewers (max)', kind: 'count', higherIsBetter: true },
  content_starts: { label: 'Content starts', kind: 'count', higherIsBetter: true },
  media_time_spent_ms: { label: 'Media time spent', kind: 'duration', higherIsBetter: true },
  stall_count: { label: 'Stalls', kind: 'count', higherIsBetter: false },
  resumes: { label: 'Resumes', kind: 'count', higherIsBetter: true },
};

export function metricInfo(name: string): MetricInfo {
  return METRICS[name] ?? { label: name, kind: 'rate', higherIsBetter: true };
}

const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function fixed(v: number, digits: number): string {
  return new Intl.NumberFormat('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(v);
}

export function formatDuration(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${fixed(s, 1)} s`;
  if (s < 3600) return `${fixed(s / 60, 1)} min`;
  return `${fixed(s / 3600, 1)} h`;
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${intFmt.format(ms)} ms` : `${fixed(ms / 1000, 2)} s`;
}

/** A metric value for display; `–` when undefined. */
export function formatValue(kind: Kind, v: number | null | undefined): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  switch (kind) {
    case 'count':
      return intFmt.format(v);
    case 'duration':
      return formatDuration(v);
    case 'ms':
      return formatMs(v);
    case 'fraction':
      return `${fixed(v * 100, 2)} %`;
    case 'percent':
      return `${fixed(v, 2)} %`;
    case 'score':
      return fixed(v, 1);
    case 'bps':
      return v >= 1e6 ? `${fixed(v / 1e6, 2)} Mbps` : `${intFmt.format(v / 1000)} kbps`;
    case 'rate':
      return fixed(v, 2);
  }
}

export function formatMetric(name: string, v: number | null | undefined): string {
  return formatValue(metricInfo(name).kind, v);
}

/** A short axis label for chart values of a kind. */
export function axisFormatter(kind: Kind): (v: number) => string {
  switch (kind) {
    case 'duration':
      return (v) => formatDuration(v);
    case 'ms':
      return (v) => formatMs(v);
    case 'fraction':
      return (v) => `${+(v * 100).toFixed(2)} %`;
    case 'percent':
      return (v) => `${+v.toFixed(2)} %`;
    case 'bps':
      return (v) => `${+(v / 1e6).toFixed(1)} Mbps`;
    default:
      return (v) => intFmt.format(v);
  }
}

/** Change against the previous period, as a signed percentage (null when undefined). */
export function change(now: number | null | undefined, before: number | null | undefined): number | null {
  if (now === null || now === undefined || before === null || before === undefined) return null;
  if (before === 0) return now === 0 ? 0 : null;
  return ((now - before) / Math.abs(before)) * 100;
}

export function formatTime(iso: string | number): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
