/**
 * One playback session in Playhead's native protocol (`POST /v1/events`,
 * `spec/protocols.md` §6): numbers events with `seq`, stamps them, and hands
 * them to a `Transport`. The adapters (`trackVideo`, `trackHls`) feed it;
 * it can also be driven by hand for a player without an adapter.
 */

import { browserEnv, uuid, type Env } from './env.js';
import { Transport, type TransportOptions, type TransportStats } from './transport.js';

/** Native event types (`spec/protocols.md` §6). */
export type EventType =
  | 'viewinit'
  | 'play'
  | 'playing'
  | 'pause'
  | 'seeking'
  | 'seeked'
  | 'waiting'
  | 'ratechange'
  | 'renditionchange'
  | 'resize'
  | 'heartbeat'
  | 'error'
  | 'ended'
  | 'viewend'
  | 'adbreakstart'
  | 'adstart'
  | 'adquartile'
  | 'adcomplete'
  | 'adskip'
  | 'adbreakend';

/** Fields an event may carry besides `seq`, `ts` and `type`. */
export interface EventFields {
  playhead?: number;
  rate?: number;
  bitrate_bps?: number;
  width?: number;
  height?: number;
  dropped_frames?: number;
  total_frames?: number;
  code?: string | number;
  message?: string;
  fatal?: boolean;
  ad_id?: string;
  duration_s?: number;
  quartile?: 1 | 2 | 3;
  [extra: string]: unknown;
}

export interface NativeEvent extends EventFields {
  seq: number;
  ts: number;
  type: EventType;
}

export interface SessionOptions extends TransportOptions {
  /** Playhead's base URL, e.g. `https://analytics.example.com`. */
  endpoint: string;
  /** The property's public ingest key. */
  property: string;
  /** Defaults to a random UUID. */
  sessionId?: string;
  videoId?: string;
  viewerId?: string;
  /** Content length, s; an adapter fills it from the media when left out. */
  videoDurationS?: number;
  contentType?: 'vod' | 'live';
  player?: { name?: string; version?: string };
  cdn?: string;
  /** Defaults to `document.referrer`. */
  referrer?: string;
  /** Custom metadata: one dimension each (`custom.<key>`). */
  custom?: Record<string, string | number | boolean>;
  /** Network, clock and timers; defaults to the browser's. */
  env?: Env;
}

/** Events after which the batch leaves at once: the session's outcome. */
const URGENT: ReadonlySet<EventType> = new Set(['ended', 'error', 'viewend', 'playing']);

export class Session {
  readonly id: string;
  private seq = 0;
  private readonly env: Env;
  private readonly transport: Transport<NativeEvent>;
  private readonly meta: Record<string, unknown>;
  private ended = false;

  constructor(private readonly options: SessionOptions) {
    if (!options.endpoint) throw new TypeError('endpoint is required');
    if (!options.property) throw new TypeError('property (the ingest key) is required');
    this.env = options.env ?? browserEnv();
    this.id = options.sessionId ?? uuid();
    const doc = (globalThis as { document?: Document }).document;
    const referrer = options.referrer ?? (doc && doc.referrer ? doc.referrer : undefined);
    this.meta = dropUndefined({
      id: this.id,
      video_id: options.videoId,
      viewer_id: options.viewerId,
      video_duration_s: options.videoDurationS,
      content_type: options.contentType,
      player: options.player,
      cdn: options.cdn,
      referrer,
      custom: options.custom,
    });
    const url = options.endpoint.replace(/\/+$/, '') + '/v1/events';
    this.transport = new Transport(
      this.env,
      url,
      (events) => JSON.stringify({ property: options.property, session: this.meta, events }),
      options,
    );
  }

  /** Whether `viewend` was sent: the session takes no more events. */
  get isEnded(): boolean {
    return this.ended;
  }

  get stats(): TransportStats {
    return this.transport.stats;
  }

  /** The `seq` of the last event tracked (0 before any). */
  get lastSeq(): number {
    return this.seq;
  }

  /**
   * Set what the session says of itself once it is known (the duration
   * after `loadedmetadata`); sent with every later batch.
   */
  setDuration(durationS: number): void {
    if (Number.isFinite(durationS) && durationS > 0) {
      if (this.options.videoDurationS === undefined) this.meta.video_duration_s = durationS;
      if (this.options.contentType === undefined) this.meta.content_type = 'vod';
    } else if (durationS === Infinity && this.options.contentType === undefined) {
      this.meta.content_type = 'live';
    }
  }

  /** Track one event now. Returns it (with its `seq` and `ts`), or null after `viewend`. */
  track(type: EventType, fields: EventFields = {}): NativeEvent | null {
    return this.record(type, fields, URGENT.has(type));
  }

  private record(type: EventType, fields: EventFields, urgent: boolean): NativeEvent | null {
    if (this.ended) return null;
    const ev: NativeEvent = { ...dropUndefined(fields), seq: ++this.seq, ts: this.env.now(), type };
    if (ev.playhead !== undefined && !(Number.isFinite(ev.playhead) && ev.playhead >= 0)) {
      delete ev.playhead;
    }
    this.transport.push(ev, urgent);
    return ev;
  }

  /** Send what waits now (fetch). */
  flush(): Promise<void> {
    return this.transport.flush();
  }

  /** Send what waits by `sendBeacon` (the page is going away or hidden). */
  flushBeacon(): number {
    return this.transport.flushBeacon();
  }

  /**
   * End the view: `viewend`, sent by `sendBeacon` so it survives the page
   * closing. Later events are ignored.
   */
  end(fields: EventFields = {}): void {
    if (this.ended) return;
    // Queued, not fetched: the beacon below carries it (with what waits).
    this.record('viewend', fields, false);
    this.ended = true;
    this.transport.flushBeacon();
  }
}

function dropUndefined<T extends Record<string, unknown>>(o: T): T {
  const out = {} as Record<string, unknown>;
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as T;
}
