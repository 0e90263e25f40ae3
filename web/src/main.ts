// The dashboard: a single page over the read API. The path picks the page,
// the query string holds the range and filters (so URLs can be shared), and
// the read key lives in session storage.

import './style.css';
import { get, logout, propertyName, readKey, setUnauthorizedHandler, type Breakdown, type PropertyInfo } from './api';
import { disposeCharts } from './charts';
import { h, replace } from './dom';
import { formatTime } from './format';
import { adsPage } from './pages/ads';
import { errorPanel, type Ctx } from './pages/common';
import { errorsPage } from './pages/errors';
import { loginPage } from './pages/login';
import { overviewPage } from './pages/overview';
import { qualityPage } from './pages/quality';
import { realtimePage } from './pages/realtime';
import { sessionPage, sessionsPage } from './pages/sessions';
import { videoPage, videosPage } from './pages/videos';
import { apiQuery, currentFilters, currentRange, link, navigate, RANGES, removeFilter, setNavigationHandler, updateQuery } from './state';

type Page = (ctx: Ctx) => Promise<void>;

const NAV: [string, string][] = [
  ['/', 'Overview'],
  ['/quality', 'Quality'],
  ['/errors', 'Errors'],
  ['/ads', 'Ads'],
  ['/realtime', 'Realtime'],
  ['/videos', 'Videos'],
  ['/sessions', 'Sessions'],
];

/**
 * The page for a path, and the path's arguments. The server answers
 * index.html only for these first segments (`PAGES` in
 * crates/server/src/assets.rs): keep the two lists together.
 */
function route(path: string): { page: Page; args: string[]; section: string } | null {
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const [head, ...rest] = parts;
  switch (head) {
    case undefined:
      return { page: overviewPage, args: [], section: '/' };
    case 'quality':
      return { page: qualityPage, args: [], section: '/quality' };
    case 'errors':
      return { page: errorsPage, args: [], section: '/errors' };
    case 'ads':
      return { page: adsPage, args: [], section: '/ads' };
    case 'realtime':
      return { page: realtimePage, args: [], section: '/realtime' };
    case 'videos':
      return rest.length ? { page: videoPage, args: rest, section: '/videos' } : { page: videosPage, args: [], section: '/videos' };
    case 'sessions':
      return rest.length ? { page: sessionPage, args: rest, section: '/sessions' } : { page: sessionsPage, args: [], section: '/sessions' };
    default:
      return null;
  }
}

let info: PropertyInfo | null = null;
let leaving: (() => void)[] = [];
let generation = 0;
let loginReason: string | null = null;

const app = document.getElementById('app')!;

function toLocalInput(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

function rangePicker(): HTMLElement {
  const range = currentRange();
  const select = h(
    'select',
    {
      id: 'range',
      'aria-label': 'Time range',
      onchange: () => {
        const v = select.value;
        updateQuery((p) => {
          p.set('range', v);
          if (v === 'custom') {
            p.set('from', String(range.from));
            p.set('to', String(range.to));
          } else {
            p.delete('from');
            p.delete('to');
          }
        });
      },
    },
    RANGES.map((r) => h('option', { value: r.key, selected: r.key === range.key }, r.label)),
    h('option', { value: 'custom', selected: range.key === 'custom' }, 'Custom…'),
  );
  const wrap = h('div', { class: 'range' }, select);
  if (range.key === 'custom') {
    const from = h('input', { type: 'datetime-local', id: 'range-from', value: toLocalInput(range.from) });
    const to = h('input', { type: 'datetime-local', id: 'range-to', value: toLocalInput(range.to) });
    const apply = h(
      'button',
      {
        type: 'button',
        id: 'range-apply',
        onclick: () => {
          const f = new Date(from.value).getTime();
          const t = new Date(to.value).getTime();
          if (Number.isNaN(f) || Number.isNaN(t) || f >= t) {
            apply.setCustomValidity('the start must be before the end');
            apply.reportValidity();
            return;
          }
          updateQuery((p) => {
            p.set('range', 'custom');
            p.set('from', String(f));
            p.set('to', String(t));
          });
        },
      },
      'Apply',
    );
    wrap.append(from, '→', to, apply);
  }
  return wrap;
}

function filterBar(): HTMLElement {
  const filters = currentFilters();
  const dims = info?.dimensions ?? ['protocol', 'video_id', 'viewer_id', 'content_type', 'player_name', 'browser', 'os', 'device_type', 'country', 'referrer_domain', 'error_code', 'cdn'];
  const dimList = h('datalist', { id: 'filter-dimensions' }, dims.map((d) => h('option', { value: d })), h('option', { value: 'custom.' }));
  const valueList = h('datalist', { id: 'filter-values' });
  const dim = h('input', { id: 'filter-dimension', list: 'filter-dimensions', placeholder: 'dimension (browser, os, custom.<key>…)', autocomplete: 'off' });
  const value = h('input', { id: 'filter-value', list: 'filter-values', placeholder: 'value', autocomplete: 'off' });
  const message = h('span', { class: 'filter-message', role: 'status' });
  // Suggest the values seen in the range for the chosen dimension.
  dim.addEventListener('change', () => {
    valueList.replaceChildren();
    const d = dim.value.trim();
    if (!d || d === 'custom.') return;
    get<Breakdown>('/data/v1/metrics/breakdown', apiQuery(currentRange(), { metric: 'views', by: d, limit: '100' }))
      .then((b) => {
        replace(message, '');
        valueList.replaceChildren(...b.rows.map((r) => h('option', { value: r.key })));
      })
      .catch((e) => replace(message, e instanceof Error ? e.message : String(e)));
  });
  const form = h(
    'form',
    {
      class: 'filter-form',
      onsubmit: (e: Event) => {
        e.preventDefault();
        const d = dim.value.trim();
        const v = value.value;
        if (!d || d === 'custom.' || !v) {
          replace(message, 'Pick a dimension and a value.');
          return;
        }
        if (d !== 'property' && !dims.includes(d) && !/^custom\..+/.test(d)) {
          replace(message, `Unknown dimension “${d}”.`);
          return;
        }
        updateQuery((p) => p.append(d, v));
      },
    },
    dim,
    dimList,
    value,
    valueList,
    h('button', { type: 'submit', id: 'filter-add' }, 'Add filter'),
    message,
  );
  const chips = filters.map(([k, v], i) =>
    h(
      'span',
      { class: 'chip', 'data-filter': `${k}=${v}` },
      h('b', {}, k),
      ' = ',
      h('span', {}, v),
      h(
        'button',
        {
          type: 'button',
          class: 'chip-x',
          'aria-label': `remove filter ${k}`,
          onclick: () => removeFilter(i),
        },
        '×',
      ),
    ),
  );
  return h('div', { class: 'filters' }, chips.length ? h('div', { class: 'chips', id: 'filter-chips' }, chips) : null, form);
}

function header(section: string): HTMLElement {
  return h(
    'header',
    { class: 'top' },
    h('a', { class: 'brand', href: link('/') }, 'Playhead'),
    h('nav', {}, NAV.map(([path, label]) => h('a', { href: link(path), class: path === section ? 'active' : '' }, label))),
    h('span', { class: 'property', id: 'property-name', title: 'the property of this read key' }, 'property: ', h('b', {}, info?.name ?? propertyName() ?? '…')),
    h(
      'button',
      {
        type: 'button',
        id: 'logout',
        onclick: () => {
          logout();
          navigate('/login', true);
        },
      },
      'Log out',
    ),
  );
}

async function render(): Promise<void> {
  const gen = ++generation;
  leaving.forEach((f) => f());
  leaving = [];
  disposeCharts();
  const path = location.pathname;
  if (path === '/login' || !readKey()) {
    if (path !== '/login') {
      const next = location.pathname + location.search;
      history.replaceState(null, '', `/login?next=${encodeURIComponent(next)}`);
    }
    const reason = loginReason;
    loginReason = null;
    document.title = 'Log in · Playhead';
    loginPage(app, reason);
    return;
  }
  if (!info) {
    try {
      info = await get<PropertyInfo>('/data/v1/property');
    } catch {
      return; // a 401 has sent us to the login page
    }
    if (gen !== generation) return;
  }
  const r = route(path);
  const main = h('main', { id: 'page', 'data-path': path });
  const range = currentRange();
  main.setAttribute('data-from', String(range.from));
  main.setAttribute('data-to', String(range.to));
  // Realtime is always "now" (filters only); one session has neither.
  const single = r?.section === '/sessions' && r.args.length > 0;
  const toolbar = !r || single ? null : h('div', { class: 'toolbar' }, r.section === '/realtime' ? null : rangePicker(), filterBar());
  replace(app, header(r?.section ?? ''), toolbar, main);
  if (!r) {
    main.append(h('h1', {}, 'Not found'), h('p', {}, `No page at ${path}.`), h('a', { href: link('/') }, 'Overview'));
    main.setAttribute('data-ready', 'true');
    return;
  }
  document.title = `${NAV.find(([p]) => p === r.section)?.[1] ?? 'Playhead'} · Playhead`;
  const ctx: Ctx = { root: main, range, filters: currentFilters(), args: r.args, info, onLeave: (f) => leaving.push(f) };
  try {
    await r.page(ctx);
    main.setAttribute('data-ready', 'true');
  } catch (e) {
    if (gen !== generation) return;
    main.append(errorPanel(e));
    main.setAttribute('data-ready', 'error');
  }
  if (gen === generation) {
    main.append(h('p', { class: 'footer' }, `Loaded ${formatTime(Date.now())}`));
  }
}

setUnauthorizedHandler((message) => {
  info = null;
  loginReason = message;
  if (location.pathname !== '/login') {
    history.replaceState(null, '', `/login?next=${encodeURIComponent(location.pathname + location.search)}`);
  }
  void render();
});
setNavigationHandler(() => void render());
window.addEventListener('popstate', () => void render());

// Internal links navigate without a reload.
document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = (e.target as Element).closest('a');
  if (!a || a.target || !a.href) return;
  const url = new URL(a.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/data/')) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});

void render();
