/**
 * The hls.js adapter: the `<video>` adapter plus what only hls.js knows.
 *
 * - `hlsLevelSwitched` → `renditionchange` with the level's `bitrate`
 *   (`bitrate_bps`), `width` and `height`;
 * - `hlsError` with `fatal: true` → a fatal `error` (`code` = hls.js
 *   `details`, `message` = its `type`); non-fatal ones only with
 *   `reportNonFatalErrors` (they repeat, e.g. on every stall).
 *
 * hls.js is a peer dependency: this module only calls the instance it is
 * given (`on`, `off`, `levels`), so it imports nothing from hls.js.
 */

import { trackVideo, type VideoOptions, type VideoTracker } from './html5.js';

/** What the adapter uses of an `Hls` instance (hls.js ≥ 1.0). */
export interface HlsLike {
  on(event: string, listener: (event: string, data: any) => void): void;
  off(event: string, listener: (event: string, data: any) => void): void;
  readonly levels: ReadonlyArray<{ bitrate?: number; width?: number; height?: number }>;
}

export interface HlsOptions extends VideoOptions {
  /** Also send non-fatal hls.js errors, as `fatal: false` (default false). */
  reportNonFatalErrors?: boolean;
}

/** hls.js event names (`Hls.Events.LEVEL_SWITCHED`, `Hls.Events.ERROR`). */
const LEVEL_SWITCHED = 'hlsLevelSwitched';
const ERROR = 'hlsError';

/** Track an hls.js player: `hls` attached (or to be attached) to `video`. */
export function trackHls(hls: HlsLike, video: HTMLMediaElement, options: HlsOptions): VideoTracker {
  const tracker = trackVideo(video, {
    ...options,
    player: options.player ?? { name: 'hls.js' },
    renditionFromVideoSize: false,
  });
  const { session } = tracker;
  let lastLevel = -1;
  const onLevel = (_: string, data: { level: number }) => {
    const level = hls.levels[data.level];
    if (!level || data.level === lastLevel) return;
    lastLevel = data.level;
    session.track('renditionchange', {
      playhead: video.currentTime,
      bitrate_bps: level.bitrate ? Math.round(level.bitrate) : undefined,
      width: level.width || undefined,
      height: level.height || undefined,
      level: data.level,
    });
  };
  const onError = (_: string, data: { fatal?: boolean; details?: string; type?: string }) => {
    if (!data.fatal && !options.reportNonFatalErrors) return;
    session.track('error', {
      playhead: video.currentTime,
      code: data.details || 'hlsError',
      message: data.type || '',
      fatal: Boolean(data.fatal),
    });
  };
  hls.on(LEVEL_SWITCHED, onLevel);
  hls.on(ERROR, onError);
  return {
    session,
    destroy() {
      hls.off(LEVEL_SWITCHED, onLevel);
      hls.off(ERROR, onError);
      tracker.destroy();
    },
  };
}
