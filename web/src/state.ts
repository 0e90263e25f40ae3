// What the page shows lives in its URL, so any view can be shared:
// `?range=24h` (or `range=custom&from=<ms>&to=<ms>`) and one `dimension=value`
// pair per filter, exactly as the API takes them. A few page options have
// their own reserved names.

export const RANGES = [
  { key: '1h', label: 'Last hour', ms: 3_600_000 },
  { key: '24h', label: 'Last day', ms: 86_400_000 },
  { key: '7d', label: 'Last 7 days', ms: 7 * 86_400_000 },
  { key: '30d', label: 'Last 30 days', ms: 30 * 86_400_000 },
] as const;

export const DEFAULT_RANGE = '24h';

/** Query parameters that are not dimension filters. */
const RESERVED = new Set(['range', 'from', 'to', 'q', 'failed', 'metric', 'next']);

export interface Range {
  key: string;
  from: number;
  to: number;
}

function params(): URLSearchParams {
  return new URLSearchParams(location.search);
}

export function param(name: string): string | null {
  return params().get(name);
}

function parseTime(v: string | null): number | null {
  if (!v) return null;
  if (/^\d+$/.test(v)) return Number(v);
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : t;
}

/**
 * The range to show, resolved against `now`: a relative range ends now; a
 * custom one is fixed. Resolved once per render, so every number on a page
 * is over the same [from, to).
 */
export function currentRange(now = Date.now()): Range {
  const p = params();
  const key = p.get('range') ?? DEFAULT_RANGE;
  if (key === 'custom') {
    const from = parseTime(p.get('from'));
    const to = parseTime(p.get('to'));
    if (from !== null && to !== null && from < to) return { key, from, to };
  }
  const r = RANGES.find((x) => x.key === key) ?? RANGES.find((x) => x.key === DEFAULT_RANGE)!;
  return { key: r.key, from: now - r.ms, to: now };
}

/** Dimension filters from the URL, in order. */
export function currentFilters(): [string, string][] {
  return [...params().entries()].filter(([k]) => !RESERVED.has(k));
}

/** API query parameters: the range and the filters, plus `extra`. */
export function apiQuery(range: Range, extra: Record<string, string> = {}, filters = currentFilters()): URLSearchParams {
  const q = new URLSearchParams();
  q.set('from', String(range.from));
  q.set('to', String(range.to));
  for (const [k, v] of filters) q.append(k, v);
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  return q;
}

/** The interval that gives a readable number of points for a range. */
export function intervalFor(range: Range): string {
  const span = range.to - range.from;
  if (span <= 3 * 3_600_000) return '1m';
  if (span <= 2 * 86_400_000) return '5m';
  if (span <= 31 * 86_400_000) return '1h';
  return '1d';
}

export function intervalMs(interval: string): number {
  return { '1m': 60_000, '5m': 300_000, '1h': 3_600_000, '1d': 86_400_000 }[interval] ?? 3_600_000;
}

let onNavigate: () => void = () => {};

export function setNavigationHandler(f: () => void): void {
  onNavigate = f;
}

/** Go to a path (with its query string), keeping history. */
export function navigate(url: string, replace = false): void {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  onNavigate();
}

/** Change query parameters of the current page: `null` removes one. */
export function updateQuery(change: (p: URLSearchParams) => void): void {
  const p = params();
  change(p);
  const qs = p.toString();
  navigate(location.pathname + (qs ? `?${qs}` : ''));
}

/** Remove the `n`-th filter (in `currentFilters()` order). */
export function removeFilter(n: number): void {
  updateQuery((p) => {
    const entries = [...p.entries()];
    let i = -1;
    const keep = entries.filter(([k]) => RESERVED.has(k) || ++i !== n);
    for (const k of new Set(p.keys())) p.delete(k);
    for (const [k, v] of keep) p.append(k, v);
  });
}

/** The current query string with only the range and filters (for links). */
export function shareableQuery(): string {
  const p = params();
  const keep = new URLSearchParams();
  for (const [k, v] of p.entries()) {
    if (k === 'range' || k === 'from' || k === 'to' || !RESERVED.has(k)) keep.append(k, v);
  }
  const qs = keep.toString();
  return qs ? `?${qs}` : '';
}

/** A link to another page that keeps the range and filters. */
export function link(path: string): string {
  return path + shareableQuery();
}
