/**
 * Playhead player SDK.
 *
 * - `trackVideo(video, options)`: any HTML5 `<video>` (native protocol).
 * - `trackHls(hls, video, options)`: an hls.js player (adds renditions and
 *   fatal hls.js errors).
 * - `bridgeIframePlayer(options)`: an embedded iframe player's
 *   `postMessage` events, forwarded to `POST /v1/player-messages`.
 * - `Session`: the native protocol by hand, for players without an adapter.
 */

export { trackVideo, quality, type VideoOptions, type VideoTracker } from './html5.js';
export { trackHls, type HlsLike, type HlsOptions } from './hls.js';
export {
  bridgeIframePlayer,
  parseMessage,
  isProgress,
  type Bridge,
  type BridgeOptions,
  type BridgeStats,
  type PlayerMessage,
} from './bridge.js';
export {
  Session,
  type SessionOptions,
  type EventType,
  type EventFields,
  type NativeEvent,
} from './session.js';
export { Transport, type TransportOptions, type TransportStats } from './transport.js';
export { browserEnv, uuid, type Env, type PostResult } from './env.js';
