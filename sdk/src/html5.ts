/**
 * The HTML5 `<video>` adapter: media element events → native events.
 *
 * | media element            | native event                                   |
 * |--------------------------|------------------------------------------------|
 * | (adapter attached)       | `viewinit`                                     |
 * | `play`                   | `play` (intent)                                |
 * | `playing`                | `playing` (first frame, or resumed)            |
 * | `pause`                  | `pause`                                        |
 * | `seeking` / `seeked`     | `seeking` / `seeked`                           |
 * | `waiting`                | `waiting` (a stall)                            |
 * | `ratechange`             | `ratechange` (`rate`)                          |
 * | `resize` (intrinsic size)| `renditionchange` (`width`, `height`)          |
 * | element box resized      | `resize` (`width`, `height`)                   |
 * | `error`                  | `error` (`code` = `MediaError.code`, fatal)    |
 * | `ended`                  | `ended`                                        |
 * | every 10 s               | `heartbeat` (`dropped_frames`, `total_frames`) |
 * | `pagehide`               | `viewend`, by `sendBeacon`                     |
 *
 * Every event carries the playhead (`currentTime`).
 */

import { Session, type EventFields, type SessionOptions } from './session.js';

export interface VideoOptions extends SessionOptions {
  /** Heartbeat period, ms (default 10000). */
  heartbeatIntervalMs?: number;
  /** Send `viewend` by `sendBeacon` when the page is hidden for good (default true). */
  endOnPageHide?: boolean;
  /**
   * Report a change of the video's intrinsic size as `renditionchange`
   * (default true; the hls.js adapter reports renditions itself).
   */
  renditionFromVideoSize?: boolean;
}

export interface VideoTracker {
  readonly session: Session;
  /** Stop listening and end the view (`viewend`). */
  destroy(): void;
}

const MEDIA_ERRORS: Record<number, string> = {
  1: 'MEDIA_ERR_ABORTED',
  2: 'MEDIA_ERR_NETWORK',
  3: 'MEDIA_ERR_DECODE',
  4: 'MEDIA_ERR_SRC_NOT_SUPPORTED',
};

/** Track a `<video>` (or `<audio>`) element. */
export function trackVideo(video: HTMLMediaElement, options: VideoOptions): VideoTracker {
  const session = new Session(options);
  const env = options.env;
  const at = (extra: EventFields = {}): EventFields => ({ playhead: video.currentTime, ...extra });
  const listeners: Array<[EventTarget, string, EventListener]> = [];
  const on = (target: EventTarget, name: string, fn: EventListener) => {
    target.addEventListener(name, fn);
    listeners.push([target, name, fn]);
  };

  session.track('viewinit', at());
  const noteDuration = () => session.setDuration(video.duration);
  if (video.readyState >= 1) noteDuration();
  on(video, 'loadedmetadata', noteDuration);
  on(video, 'durationchange', noteDuration);

  on(video, 'play', () => session.track('play', at()));
  on(video, 'playing', () => session.track('playing', at()));
  on(video, 'pause', () => session.track('pause', at()));
  on(video, 'seeking', () => session.track('seeking', at()));
  on(video, 'seeked', () => session.track('seeked', at()));
  on(video, 'waiting', () => session.track('waiting', at()));
  on(video, 'ratechange', () => {
    if (video.playbackRate > 0) session.track('ratechange', at({ rate: video.playbackRate }));
  });
  on(video, 'ended', () => session.track('ended', at()));
  on(video, 'error', () => {
    const e = video.error;
    session.track(
      'error',
      at({
        code: e ? e.code : 'MEDIA_ERR_UNKNOWN',
        message: e ? e.message || MEDIA_ERRORS[e.code] || '' : 'media element error',
        fatal: true,
      }),
    );
  });
  // The intrinsic size changes when the stream switches rendition.
  let rendition = '';
  const noteRendition = () => {
    const v = video as HTMLVideoElement;
    if (!v.videoWidth || !v.videoHeight) return;
    const key = `${v.videoWidth}x${v.videoHeight}`;
    if (key === rendition) return;
    rendition = key;
    session.track('renditionchange', at({ width: v.videoWidth, height: v.videoHeight }));
  };
  if (options.renditionFromVideoSize !== false) {
    on(video, 'resize', noteRendition);
    on(video, 'loadedmetadata', noteRendition);
  }

  // The player's own size on the page.
  let observer: ResizeObserver | undefined;
  const RO = (globalThis as { ResizeObserver?: typeof ResizeObserver }).ResizeObserver;
  if (RO) {
    let box = '';
    observer = new RO((entries) => {
      const r = entries[entries.length - 1].contentRect;
      const width = Math.round(r.width);
      const height = Math.round(r.height);
      const key = `${width}x${height}`;
      if (key !== box && width > 0 && height > 0) {
        box = key;
        session.track('resize', at({ width, height }));
      }
    });
    observer.observe(video);
  }

  const heartbeat = () => {
    const fields = at();
    const q = quality(video);
    if (q) {
      fields.dropped_frames = q.dropped;
      fields.total_frames = q.total;
    }
    session.track('heartbeat', fields);
  };
  const intervalMs = options.heartbeatIntervalMs ?? 10_000;
  const timer = env
    ? env.setInterval(heartbeat, intervalMs)
    : setInterval(heartbeat, intervalMs);

  const win = (globalThis as { window?: Window }).window;
  const doc = (globalThis as { document?: Document }).document;
  if (win && options.endOnPageHide !== false) {
    on(win, 'pagehide', () => destroy());
  }
  if (doc) {
    // Hidden may mean never seen again (mobile): send what waits while we can.
    on(doc, 'visibilitychange', () => {
      if (doc.visibilityState === 'hidden') session.flushBeacon();
    });
  }

  let destroyed = false;
  function destroy() {
    if (destroyed) return;
    destroyed = true;
    if (env) env.clearInterval(timer);
    else clearInterval(timer as ReturnType<typeof setInterval>);
    observer?.disconnect();
    for (const [target, name, fn] of listeners) target.removeEventListener(name, fn);
    session.end(at());
  }

  return { session, destroy };
}

/** Cumulative dropped and decoded frames, where the browser tells. */
export function quality(video: HTMLMediaElement): { dropped: number; total: number } | null {
  const v = video as HTMLVideoElement & {
    webkitDroppedFrameCount?: number;
    webkitDecodedFrameCount?: number;
  };
  if (typeof v.getVideoPlaybackQuality === 'function') {
    const q = v.getVideoPlaybackQuality();
    return { dropped: q.droppedVideoFrames, total: q.totalVideoFrames };
  }
  if (typeof v.webkitDecodedFrameCount === 'number') {
    return { dropped: v.webkitDroppedFrameCount ?? 0, total: v.webkitDecodedFrameCount };
  }
  return null;
}
