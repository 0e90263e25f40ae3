/**
 * What the SDK needs from its surroundings: the network, a clock, timers and
 * randomness. In a browser `browserEnv()` gives the real ones; unit tests
 * pass their own so batching, retries and throttling can be checked without
 * a network or waiting.
 */

/** The answer of one POST: its status (0 when the request failed). */
export interface PostResult {
  status: number;
  /** `Retry-After` of a `503`/`429`, ms, when the page may read it. */
  retryAfterMs?: number;
}

export interface Env {
  /** POST a JSON body. Rejects (or resolves status 0) on a network failure. */
  post(url: string, body: string, contentType: string): Promise<PostResult>;
  /**
   * Queue a body to be sent even while the page unloads
   * (`navigator.sendBeacon`, sent as `text/plain`). Returns false when the
   * browser refused it.
   */
  beacon?(url: string, body: string): boolean;
  /** Milliseconds since the Unix epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  /** In [0, 1): the jitter of retry delays. */
  random(): number;
}

/** The real browser (or Node ≥ 18, which has `fetch`; no beacon there). */
export function browserEnv(): Env {
  const g = globalThis as typeof globalThis & { navigator?: Navigator };
  const nav = g.navigator;
  const env: Env = {
    async post(url, body, contentType) {
      const resp = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': contentType },
        body,
        // Lets a request started during unload finish (as sendBeacon does).
        keepalive: body.length < 60_000,
        credentials: 'omit',
      });
      const retryAfter = Number(resp.headers.get('Retry-After'));
      return {
        status: resp.status,
        retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
      };
    },
    now: () => Date.now(),
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    setInterval: (fn, ms) => setInterval(fn, ms),
    clearInterval: (h) => clearInterval(h as ReturnType<typeof setInterval>),
    random: () => Math.random(),
  };
  if (nav && typeof nav.sendBeacon === 'function') {
    // A string is sent as `text/plain;charset=UTF-8`: no CORS preflight,
    // which a page being unloaded could not wait for.
    env.beacon = (url, body) => nav.sendBeacon(url, body);
  }
  return env;
}

/** A random version-4 UUID (`crypto.randomUUID` where the page may use it). */
export function uuid(): string {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  const b = new Uint8Array(16);
  if (c && typeof c.getRandomValues === 'function') c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
