/**
 * Batching, retries and the offline queue, for any kind of item (native
 * events, iframe player messages).
 *
 * - Items wait in a queue bounded by `maxQueue`; when it is full the oldest
 *   item is dropped (and counted), so memory stays bounded while offline.
 * - A batch leaves when `batchSize` items wait, `flushIntervalMs` after the
 *   first of them, or at once for an urgent item. One request is in flight
 *   at a time.
 * - A network failure, a `5xx`, `408` or `429` puts the batch back at the
 *   front and retries after an exponential backoff with jitter
 *   (`retryBaseMs` × 2^(n−1), at most `retryMaxMs`, times 0.5–1). Any other
 *   `4xx` means the server will never take the batch: it is dropped.
 * - `flushBeacon()` (page unload) hands everything queued, the in-flight
 *   batch too, to `navigator.sendBeacon`. Re-sending is safe: the server is
 *   idempotent (native `seq`; content hashes for player messages).
 */

import type { Env } from './env.js';

export interface TransportOptions {
  /** Items per request (default 50). */
  batchSize?: number;
  /** Longest an item waits for its batch, ms (default 1000). */
  flushIntervalMs?: number;
  /** Most items kept while the server cannot be reached (default 1000). */
  maxQueue?: number;
  /** First retry delay, ms (default 1000). */
  retryBaseMs?: number;
  /** Longest retry delay, ms (default 30000). */
  retryMaxMs?: number;
  /** Largest body handed to `sendBeacon` (browsers refuse more than 64 KiB in flight). */
  maxBeaconBytes?: number;
}

export interface TransportStats {
  /** Items the server acknowledged. */
  sent: number;
  /** Items dropped: the queue was full, or the server refused them (4xx). */
  dropped: number;
  /** Requests that failed and were retried. */
  retries: number;
  /** Requests made (`post`), retries included; beacons not. */
  requests: number;
  /** Beacons handed to the browser. */
  beacons: number;
  /** Last status that made a batch wait or be dropped (0: network failure). */
  lastFailureStatus?: number;
}

const DEFAULTS = {
  batchSize: 50,
  flushIntervalMs: 1000,
  maxQueue: 1000,
  retryBaseMs: 1000,
  retryMaxMs: 30_000,
  maxBeaconBytes: 60_000,
};

export class Transport<T> {
  readonly stats: TransportStats = { sent: 0, dropped: 0, retries: 0, requests: 0, beacons: 0 };
  private readonly opts: typeof DEFAULTS;
  private queue: T[] = [];
  private inFlight: T[] | null = null;
  private timer: unknown = null;
  /** Consecutive failures of the batch at the front (0: not backing off). */
  private failures = 0;
  private closed = false;

  constructor(
    private readonly env: Env,
    private readonly url: string,
    /** The request body for a batch of items. */
    private readonly body: (items: T[]) => string,
    options: TransportOptions = {},
  ) {
    this.opts = { ...DEFAULTS, ...stripUndefined(options) };
    if (this.opts.batchSize < 1) throw new RangeError('batchSize must be at least 1');
    if (this.opts.maxQueue < this.opts.batchSize) {
      throw new RangeError('maxQueue must be at least batchSize');
    }
  }

  /** Items waiting (not counting the batch in flight). */
  get pending(): number {
    return this.queue.length;
  }

  /** Queue an item; `urgent` sends it (and what waits) now. */
  push(item: T, urgent = false): void {
    if (this.closed) return;
    this.queue.push(item);
    this.bound();
    if (this.failures > 0) return; // backing off: the retry timer sends it
    if (urgent || this.queue.length >= this.opts.batchSize) {
      void this.flush();
    } else if (this.timer === null) {
      this.timer = this.env.setTimeout(() => {
        this.timer = null;
        void this.flush();
      }, this.opts.flushIntervalMs);
    }
  }

  /**
   * Send what waits, batch after batch, until the queue is empty or a
   * request fails (then the retry timer takes over). Resolves when done.
   */
  async flush(): Promise<void> {
    if (this.inFlight) return;
    this.clearTimer();
    while (this.queue.length > 0 && !this.inFlight) {
      const batch = this.queue.splice(0, this.opts.batchSize);
      this.inFlight = batch;
      let status = 0;
      let retryAfterMs: number | undefined;
      try {
        this.stats.requests++;
        const r = await this.env.post(this.url, this.body(batch), 'application/json');
        status = r.status;
        retryAfterMs = r.retryAfterMs;
      } catch {
        status = 0;
      }
      this.inFlight = null;
      if (status >= 200 && status < 300) {
        this.failures = 0;
        this.stats.sent += batch.length;
        continue;
      }
      this.stats.lastFailureStatus = status;
      if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
        // The server will never accept this batch: retrying cannot help.
        this.failures = 0;
        this.stats.dropped += batch.length;
        continue;
      }
      if (this.closed) return;
      this.queue.unshift(...batch);
      this.bound();
      this.failures++;
      this.stats.retries++;
      const delay = Math.max(this.backoff(this.failures), retryAfterMs ?? 0);
      this.timer = this.env.setTimeout(() => {
        this.timer = null;
        void this.flush();
      }, delay);
      return;
    }
  }

  /** The delay before retry `n` (1-based), ms. */
  backoff(n: number): number {
    const cap = Math.min(this.opts.retryMaxMs, this.opts.retryBaseMs * 2 ** (n - 1));
    return Math.round(cap * (0.5 + this.env.random() / 2));
  }

  /**
   * Hand everything (the in-flight batch too) to `sendBeacon`, in bodies of
   * at most `maxBeaconBytes`; what the browser refuses goes by `post` with
   * `keepalive`. For `pagehide`: nothing after it is guaranteed to run.
   * Returns how many items went by beacon.
   */
  flushBeacon(): number {
    this.clearTimer();
    const items = [...(this.inFlight ?? []), ...this.queue];
    this.queue = [];
    this.failures = 0;
    let beaconed = 0;
    for (const chunk of this.chunks(items)) {
      const body = this.body(chunk);
      if (this.env.beacon && this.env.beacon(this.url, body)) {
        this.stats.beacons++;
        beaconed += chunk.length;
      } else {
        this.stats.requests++;
        this.env.post(this.url, body, 'text/plain').then(
          (r) => {
            if (r.status >= 200 && r.status < 300) this.stats.sent += chunk.length;
          },
          () => undefined,
        );
      }
    }
    return beaconed;
  }

  /** Stop: nothing more is sent or retried (queued items are dropped). */
  close(): void {
    this.closed = true;
    this.clearTimer();
    this.queue = [];
  }

  private *chunks(items: T[]): Generator<T[]> {
    let i = 0;
    while (i < items.length) {
      let n = Math.min(this.opts.batchSize, items.length - i);
      while (n > 1 && this.body(items.slice(i, i + n)).length > this.opts.maxBeaconBytes) {
        n = Math.ceil(n / 2);
      }
      yield items.slice(i, i + n);
      i += n;
    }
  }

  private bound(): void {
    const over = this.queue.length - this.opts.maxQueue;
    if (over > 0) {
      this.queue.splice(0, over);
      this.stats.dropped += over;
    }
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      this.env.clearTimeout(this.timer);
      this.timer = null;
    }
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
