// Sessions: a searchable list, and one session with its metrics, scores and
// event timeline.

import { ApiError, get, type Session, type SessionEvent, type SessionList } from '../api';
import { box, STATE_COLORS, timelineChart } from '../charts';
import { append, h, kvTable, replace, table, type Child } from '../dom';
import { formatMs, formatTime, formatValue } from '../format';
import { apiQuery, link, param, updateQuery } from '../state';
import { errorPanel, type Ctx } from './common';

const PAGE = 200;

function matches(s: Session, q: string): boolean {
  const hay = [s.id, s.video_id, s.viewer_id, s.protocol, s.state, ...Object.values(s.dimensions), ...Object.entries(s.custom).flat()];
  return hay.some((v) => typeof v === 'string' && v.toLowerCase().includes(q));
}

function customText(s: Session): string {
  return Object.entries(s.custom)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}

function row(s: Session): Child[] {
  const m = s.metrics as Record<string, number | boolean | null>;
  return [
    formatTime(s.started_at),
    h('a', { href: link(`/sessions/${encodeURIComponent(s.id)}`), class: 'session-link', 'data-id': s.id }, s.id.length > 20 ? `${s.id.slice(0, 18)}…` : s.id),
    s.video_id ?? '–',
    s.viewer_id ?? '–',
    s.protocol,
    s.state,
    formatValue('duration', m.watch_time_ms as number),
    formatValue('ms', m.startup_time_ms as number | null),
    formatValue('fraction', m.rebuffer_percentage as number),
    formatValue('score', m.viewer_experience_score as number | null),
    m.failed ? h('span', { class: 'badge bad' }, 'failed') : (s.metrics.errors?.length ?? 0) > 0 ? h('span', { class: 'badge' }, s.metrics.errors!.length === 1 ? '1 error' : `${s.metrics.errors!.length} errors`) : '',
    h('span', { class: 'custom' }, customText(s)),
  ];
}

export async function sessionsPage(ctx: Ctx): Promise<void> {
  const q = (param('q') ?? '').trim();
  const failedOnly = param('failed') === 'true';
  const search = h('input', { type: 'search', id: 'session-search', placeholder: 'Search id, video, viewer, metadata…', value: q });
  const form = h(
    'form',
    {
      class: 'search',
      onsubmit: (e: Event) => {
        e.preventDefault();
        updateQuery((p) => (search.value.trim() ? p.set('q', search.value.trim()) : p.delete('q')));
      },
    },
    search,
    h('button', { type: 'submit' }, 'Search'),
    h(
      'label',
      {},
      h('input', {
        type: 'checkbox',
        id: 'failed-only',
        checked: failedOnly,
        onchange: (e: Event) => updateQuery((p) => ((e.target as HTMLInputElement).checked ? p.set('failed', 'true') : p.delete('failed'))),
      }),
      ' failed only',
    ),
  );
  const count = h('p', { class: 'note', id: 'sessions-count' }, 'Loading…');
  const body = h('tbody', {});
  const more = h('button', { type: 'button', hidden: true }, 'Load more');
  const head = ['started', 'session', 'video', 'viewer', 'protocol', 'state', 'watch time', 'startup', 'rebuffer', 'score', '', 'custom'];
  ctx.root.append(
    h('h1', {}, 'Sessions'),
    form,
    count,
    h('section', { class: 'panel' }, h('table', { class: 'data', id: 'sessions-table' }, h('thead', {}, h('tr', {}, head.map((c) => h('th', {}, c)))), body), more),
  );
  let cursor: string | null = null;
  let loaded = 0;
  let shown = 0;
  const load = async () => {
    const extra: Record<string, string> = { limit: String(PAGE) };
    if (failedOnly) extra.failed = 'true';
    if (cursor) extra.cursor = cursor;
    const page = await get<SessionList>('/data/v1/sessions', apiQuery(ctx.range, extra, ctx.filters));
    loaded += page.sessions.length;
    const rows = q ? page.sessions.filter((s) => matches(s, q.toLowerCase())) : page.sessions;
    shown += rows.length;
    for (const s of rows) body.append(h('tr', {}, row(s).map((c) => h('td', {}, c))));
    cursor = page.next_cursor;
    more.hidden = !cursor;
    replace(count, q ? `${shown} of ${loaded} loaded sessions match “${q}”.` : `${loaded} sessions, newest first${cursor ? ' (more below)' : ''}.`);
    count.setAttribute('data-shown', String(shown));
  };
  more.addEventListener('click', () => void load().catch((e) => more.replaceWith(errorPanel(e))));
  await load();
}

function scoreTile(label: string, value: string, key: string): HTMLElement {
  return h('div', { class: 'tile', 'data-metric': key }, h('div', { class: 'tile-label' }, label), h('div', { class: 'tile-value' }, value));
}

function metricText(v: unknown): string {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export async function sessionPage(ctx: Ctx): Promise<void> {
  const id = ctx.args[0];
  const path = `/data/v1/sessions/${encodeURIComponent(id)}`;
  let s: Session;
  let events: SessionEvent[];
  try {
    [s, { events }] = await Promise.all([get<Session>(path), get<{ events: SessionEvent[] }>(`${path}/events`)]);
  } catch (e) {
    ctx.root.append(h('h1', {}, 'Session'), e instanceof ApiError && e.status === 404 ? h('div', { class: 'error-box' }, `No session “${id}” in this property.`) : errorPanel(e));
    return;
  }
  const m = s.metrics as Record<string, unknown>;
  const n = (k: string) => (typeof m[k] === 'number' ? (m[k] as number) : null);
  const endMs = Date.parse(s.ended_at ?? s.last_event_at);
  const timeline = box('chart timeline', { id: 'session-timeline' });
  const legend = h(
    'div',
    { class: 'legend' },
    Object.entries(STATE_COLORS)
      .filter(([k]) => k !== 'closed')
      .map(([k, c]) => h('span', { class: 'swatch', style: `--c:${c}` }, k)),
    h('span', { class: 'swatch', style: '--c:#c4b5fd' }, 'ad break'),
    h('span', { class: 'swatch', style: '--c:#7c3aed' }, 'ad'),
    h('span', { class: 'swatch mark' }, 'error / seek / stall'),
  );
  const about: [string, Child][] = [
    ['session id', s.id],
    ['protocol', s.protocol],
    ['state', s.open ? `${s.state} (open)` : s.state],
    ['video', s.video_id ? h('a', { href: link(`/videos/${encodeURIComponent(s.video_id)}`) }, s.video_id) : '–'],
    ['viewer', s.viewer_id ?? '–'],
    ['started', formatTime(s.started_at)],
    ['last event', formatTime(s.last_event_at)],
    ['ended', s.ended_at ? formatTime(s.ended_at) : '–'],
    ['video duration', s.duration_s === null ? '–' : `${s.duration_s} s`],
    ['content type', s.content_type ?? '–'],
    ...Object.entries(s.dimensions).map(([k, v]): [string, Child] => [k, v]),
    ...Object.entries(s.custom).map(([k, v]): [string, Child] => [`custom.${k}`, v]),
  ];
  const errors = s.metrics.errors ?? [];
  const t0 = events.length ? Date.parse(events[0].t) : Date.parse(s.started_at);
  append(ctx.root, [
    h('p', { class: 'crumbs' }, h('a', { href: link('/sessions') }, 'Sessions'), ' / ', h('span', {}, id)),
    h('h1', {}, 'Session ', h('code', {}, s.id)),
    h(
      'div',
      { class: 'tiles small', id: 'session-scores' },
      scoreTile('Viewer experience score', formatValue('score', n('viewer_experience_score')), 'viewer_experience_score'),
      scoreTile('Startup score', formatValue('score', n('startup_score')), 'startup_score'),
      scoreTile('Smoothness score', formatValue('score', n('smoothness_score')), 'smoothness_score'),
      scoreTile('Playback success score', formatValue('score', n('playback_success_score')), 'playback_success_score'),
      scoreTile('Watch time', formatValue('duration', n('watch_time_ms')), 'watch_time_ms'),
      scoreTile('Startup time', formatValue('ms', n('startup_time_ms')), 'startup_time_ms'),
      scoreTile('Rebuffering', `${n('rebuffer_count') ?? 0} × · ${formatValue('fraction', n('rebuffer_percentage'))}`, 'rebuffer_percentage'),
    ),
    h('section', { class: 'panel' }, h('h2', {}, 'Timeline'), legend, timeline),
    errors.length
      ? h(
          'section',
          { class: 'panel' },
          h('h2', {}, 'Errors'),
          table(
            ['time', 'code', 'message', 'fatal', 'source'],
            errors.map((e) => [formatTime(e.t), h('code', {}, e.code), e.message, e.fatal ? 'fatal' : 'no', e.source ?? '–']),
            { id: 'session-errors' },
          ),
        )
      : null,
    h(
      'div',
      { class: 'grid2' },
      h('section', { class: 'panel' }, h('h2', {}, 'About'), kvTable(about, 'kv about')),
      h('section', { class: 'panel' }, h('h2', {}, 'Metrics'), kvTable(Object.keys(m).sort().map((k): [string, Child] => [k, metricText(m[k])]), 'kv metrics')),
    ),
    h(
      'section',
      { class: 'panel' },
      h('h2', {}, `Events (${events.length})`),
      table(
        ['time', '+', 'event', 'playhead', 'state after', 'data'],
        events.map((e) => [
          formatTime(e.t),
          formatMs(Date.parse(e.t) - t0),
          e.type,
          e.playhead === null ? '–' : String(e.playhead),
          e.state_after,
          h('code', { class: 'event-data' }, JSON.stringify(e.data)),
        ]),
        { id: 'events-table' },
      ),
    ),
  ]);
  const stats = timelineChart(timeline, events, Number.isNaN(endMs) ? Date.now() : endMs);
  timeline.setAttribute('data-spans', String(stats.spans));
  timeline.setAttribute('data-marks', String(stats.marks));
  timeline.setAttribute('data-events', String(stats.events));
}
