// The read API (`spec/api.md`), with the read key kept in session storage:
// it lasts as long as the tab and is never sent anywhere but this server.

const KEY = 'playhead.readKey';
const PROPERTY = 'playhead.property';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function readKey(): string | null {
  return sessionStorage.getItem(KEY);
}

export function propertyName(): string | null {
  return sessionStorage.getItem(PROPERTY);
}

export function logout(): void {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(PROPERTY);
}

/** Called on a 401 with a valid-looking session: the key stopped working. */
let onUnauthorized: (message: string) => void = () => {};
export function setUnauthorizedHandler(f: (message: string) => void): void {
  onUnauthorized = f;
}

async function request<T>(path: string, query: URLSearchParams | undefined, key: string): Promise<T> {
  const url = query && [...query.keys()].length ? `${path}?${query}` : path;
  let resp: Response;
  try {
    resp = await fetch(url, { headers: { Authorization: `Bearer ${key}` } });
  } catch (e) {
    throw new ApiError(0, `could not reach the server (${e instanceof Error ? e.message : String(e)})`);
  }
  const text = await resp.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!resp.ok) {
    const msg =
      body && typeof body === 'object' && 'error' in body && typeof body.error === 'string'
        ? body.error
        : `${resp.status} ${resp.statusText}`;
    throw new ApiError(resp.status, msg);
  }
  return body as T;
}

/** GET with the stored key; a 401 logs out and sends to the login page. */
export async function get<T>(path: string, query?: URLSearchParams): Promise<T> {
  const key = readKey();
  if (!key) {
    onUnauthorized('Log in with a read key.');
    throw new ApiError(401, 'not logged in');
  }
  try {
    return await request<T>(path, query, key);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      logout();
      onUnauthorized(`The server refused the read key: ${e.message}.`);
    }
    throw e;
  }
}

export interface PropertyInfo {
  name: string;
  dimensions: string[];
  metrics: string[];
}

/** Check a key against the server; on success keep it. */
export async function login(key: string): Promise<PropertyInfo> {
  const info = await request<PropertyInfo>('/data/v1/property', undefined, key);
  sessionStorage.setItem(KEY, key);
  sessionStorage.setItem(PROPERTY, info.name);
  return info;
}

// Response shapes (only the fields the dashboard reads).

export type Metrics = Record<string, number | null | Record<string, number>>;

export interface Overview {
  from: string;
  to: string;
  metrics: Metrics;
}

export interface Point {
  t: string;
  value: number | null;
}

export interface Timeseries {
  metric: string;
  interval: string;
  points: Point[];
}

export interface BreakdownRow {
  key: string;
  value: number | null;
  views: number;
}

export interface Breakdown {
  metric: string;
  by: string;
  rows: BreakdownRow[];
}

export interface RealtimeView {
  concurrent_viewers: number;
  by_video: { video_id: string; viewers: number }[];
  viewers_last_5m: number;
}

export interface Retention {
  video_id: string;
  bucket_s: number;
  plays: number;
  points: { position_s: number; share: number }[];
}

export interface SessionErrorRecord {
  t: number;
  code: string;
  message: string;
  fatal: boolean;
  source: string | null;
}

export interface Session {
  id: string;
  property: string;
  protocol: string;
  video_id: string | null;
  viewer_id: string | null;
  state: string;
  open: boolean;
  started_at: string;
  last_event_at: string;
  ended_at: string | null;
  duration_s: number | null;
  content_type: string | null;
  dimensions: Record<string, string>;
  custom: Record<string, string>;
  metrics: Record<string, unknown> & { errors?: SessionErrorRecord[] };
}

export interface SessionList {
  sessions: Session[];
  next_cursor: string | null;
}

export interface SessionEvent {
  t: string;
  type: string;
  playhead: number | null;
  state_after: string;
  data: Record<string, unknown>;
}

export interface ErrorGroup {
  code: string;
  message: string;
  count: number;
  fatal: number;
  sessions: number;
  last_seen: string;
  last_session_id: string;
}

export interface ErrorList {
  errors: ErrorGroup[];
  affected_sessions: number;
  truncated: boolean;
}
