/**
 * The embedded-player bridge: an iframe player (BlendVision compatible)
 * posts JSON strings to its host page (`spec/protocols.md` §5); the bridge
 * listens, and forwards them to `POST /v1/player-messages` as
 * `{"session_id","property","video_id","viewer_id","messages":[..]}`.
 *
 * - Only messages whose `origin` is exactly `playerOrigin` are read (and,
 *   when `iframe` is given, only those from its window): any other page or
 *   frame can post to this window too.
 * - Each message is parsed (`JSON.parse` of the string; an object posted as
 *   is is taken as is) and must have a string `event`; others are ignored.
 * - Playback events (`playlogEventName`) and actions are forwarded at once.
 *   Progress (`currentTime` without a name, every 0.5 s from the player) is
 *   forwarded at most every `progressIntervalMs` (10 s).
 * - Messages are forwarded as parsed, unchanged: the server does all the
 *   mapping.
 */

import { browserEnv, uuid, type Env } from './env.js';
import { Transport, type TransportOptions, type TransportStats } from './transport.js';

export interface BridgeOptions extends TransportOptions {
  /** Playhead's base URL, e.g. `https://analytics.example.com`. */
  endpoint: string;
  /** The property's public ingest key. */
  property: string;
  /** The player's origin, e.g. `https://player.example.com` (no path, no trailing slash). */
  playerOrigin: string;
  /** Only messages from this iframe's window (optional, on top of the origin). */
  iframe?: { contentWindow: unknown };
  /** Defaults to a random UUID. */
  sessionId?: string;
  videoId?: string;
  viewerId?: string;
  /** Least time between two forwarded progress messages, ms (default 10000). */
  progressIntervalMs?: number;
  /** Send what waits by `sendBeacon` on `pagehide` (default true). */
  flushOnPageHide?: boolean;
  /** The window to listen on; defaults to the page's. */
  window?: Pick<Window, 'addEventListener' | 'removeEventListener'>;
  /** Network, clock and timers; defaults to the browser's. */
  env?: Env;
}

/** A parsed player message (forwarded as is). */
export interface PlayerMessage {
  event: string;
  info?: Record<string, unknown>;
  name?: string;
  [key: string]: unknown;
}

export interface BridgeStats {
  /** Messages forwarded (queued for the server). */
  forwarded: number;
  /** Messages from another origin or window: ignored. */
  wrongOrigin: number;
  /** Messages that were not a JSON object with a string `event`: ignored. */
  unparsable: number;
  /** Progress messages dropped by the throttle. */
  throttled: number;
}

export interface Bridge {
  readonly sessionId: string;
  readonly stats: BridgeStats;
  readonly transportStats: TransportStats;
  /**
   * Handle one `message` event (what the listener calls). Returns whether
   * the message was forwarded.
   */
  handle(event: { origin: string; data: unknown; source?: unknown }): boolean;
  /** Send what waits now. */
  flush(): Promise<void>;
  /** Stop listening; send what waits by `sendBeacon`. */
  stop(): void;
}

/** Parse a posted message: a JSON string (or an object) with a string `event`. */
export function parseMessage(data: unknown): PlayerMessage | null {
  let value = data;
  if (typeof data === 'string') {
    try {
      value = JSON.parse(data);
    } catch {
      return null;
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const m = value as PlayerMessage;
  return typeof m.event === 'string' && m.event !== '' ? m : null;
}

/** A progress report: `infoDelivery` with `currentTime` and no event name. */
export function isProgress(m: PlayerMessage): boolean {
  const info = m.info;
  return (
    m.event === 'infoDelivery' &&
    info !== null &&
    typeof info === 'object' &&
    !('playlogEventName' in info) &&
    'currentTime' in info
  );
}

/** Listen to an iframe player's messages and forward them to Playhead. */
export function bridgeIframePlayer(options: BridgeOptions): Bridge {
  if (!options.endpoint) throw new TypeError('endpoint is required');
  if (!options.property) throw new TypeError('property (the ingest key) is required');
  if (!options.playerOrigin || options.playerOrigin === '*') {
    throw new TypeError('playerOrigin must be the player\'s exact origin');
  }
  const origin = options.playerOrigin.replace(/\/+$/, '');
  const env = options.env ?? browserEnv();
  const sessionId = options.sessionId ?? uuid();
  const intervalMs = options.progressIntervalMs ?? 10_000;
  const head = {
    session_id: sessionId,
    property: options.property,
    video_id: options.videoId,
    viewer_id: options.viewerId,
  };
  const transport = new Transport<PlayerMessage>(
    env,
    options.endpoint.replace(/\/+$/, '') + '/v1/player-messages',
    (messages) => JSON.stringify({ ...head, messages }),
    options,
  );
  const stats: BridgeStats = { forwarded: 0, wrongOrigin: 0, unparsable: 0, throttled: 0 };
  let lastProgressAt: number | undefined;

  const handle: Bridge['handle'] = (event) => {
    if (event.origin !== origin) {
      stats.wrongOrigin++;
      return false;
    }
    if (options.iframe && event.source !== options.iframe.contentWindow) {
      stats.wrongOrigin++;
      return false;
    }
    const m = parseMessage(event.data);
    if (!m) {
      stats.unparsable++;
      return false;
    }
    if (isProgress(m)) {
      const now = env.now();
      if (lastProgressAt !== undefined && now - lastProgressAt < intervalMs) {
        stats.throttled++;
        return false;
      }
      lastProgressAt = now;
      transport.push(m, false);
    } else {
      transport.push(m, true);
    }
    stats.forwarded++;
    return true;
  };

  const win =
    options.window ?? (globalThis as { window?: BridgeOptions['window'] }).window ?? undefined;
  const onMessage = (e: Event) => {
    const me = e as MessageEvent;
    handle({ origin: me.origin, data: me.data, source: me.source });
  };
  const onPageHide = () => transport.flushBeacon();
  if (win) {
    win.addEventListener('message', onMessage);
    if (options.flushOnPageHide !== false) win.addEventListener('pagehide', onPageHide);
  }

  return {
    sessionId,
    stats,
    get transportStats() {
      return transport.stats;
    },
    handle,
    flush: () => transport.flush(),
    stop() {
      if (win) {
        win.removeEventListener('message', onMessage);
        win.removeEventListener('pagehide', onPageHide);
      }
      transport.flushBeacon();
    },
  };
}
