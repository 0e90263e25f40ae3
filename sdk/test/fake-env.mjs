// A deterministic Env for unit tests: a manual clock, timers that run when
// the test advances the clock, and a network whose answers the test scripts.
// It stands in for the browser only in these unit tests; the e2e tests
// (e2e/) run the SDK in a real Chromium against the real server.

export const T0 = 1_700_000_000_000;

export class FakeEnv {
  constructor() {
    this.t = T0;
    this.timers = new Map();
    this.nextId = 1;
    /** Every post: {at, url, contentType, body (parsed)}. */
    this.posts = [];
    /** Every beacon: {at, url, body (parsed)}. */
    this.beacons = [];
    /** Scripted answers, in order: a status, or 'offline' (the request fails). Default 202. */
    this.answers = [];
    this.beaconAccepts = true;
    this.randomValue = 1;
  }

  post(url, body, contentType) {
    this.posts.push({ at: this.t, url, contentType, body: JSON.parse(body) });
    const a = this.answers.length > 0 ? this.answers.shift() : 202;
    if (a === 'offline') return Promise.reject(new TypeError('Failed to fetch'));
    return Promise.resolve({ status: a });
  }

  beacon(url, body) {
    if (!this.beaconAccepts) return false;
    this.beacons.push({ at: this.t, url, bytes: body.length, body: JSON.parse(body) });
    return true;
  }

  now() {
    return this.t;
  }

  setTimeout(fn, ms) {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + ms, fn, every: null });
    return id;
  }

  setInterval(fn, ms) {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + ms, fn, every: ms });
    return id;
  }

  clearTimeout(id) {
    this.timers.delete(id);
  }

  clearInterval(id) {
    this.timers.delete(id);
  }

  random() {
    return this.randomValue;
  }

  /** Move the clock forward, running due timers in time order. */
  async advance(ms) {
    const end = this.t + ms;
    await settle();
    for (;;) {
      let next = null;
      for (const [id, timer] of this.timers) {
        if (timer.at <= end && (next === null || timer.at < next[1].at)) next = [id, timer];
      }
      if (next === null) break;
      const [id, timer] = next;
      this.t = timer.at;
      if (timer.every !== null) timer.at += timer.every;
      else this.timers.delete(id);
      timer.fn();
      await settle();
    }
    this.t = end;
    await settle();
  }
}

/** Let pending promise callbacks run. */
export function settle() {
  return new Promise((resolve) => setImmediate(resolve));
}
