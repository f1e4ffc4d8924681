/**
 * Time is injected everywhere (STYLE: "time is injected"), so timers — idle
 * passivation, batching windows, retries — are tested by advancing a manual
 * clock instead of sleeping.
 */

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `fn` once after `ms`. Real timers are unref'd: they never keep the process alive. */
  setTimeout(fn: () => void, ms: number): Timer;
  /** Runs `fn` every `ms` until cancelled. */
  setInterval(fn: () => void, ms: number): Timer;
}

export function createSystemClock(): Clock {
  return {
    now: Date.now,
    setTimeout(fn, ms) {
      const t = setTimeout(fn, ms);
      t.unref();
      return { cancel: () => clearTimeout(t) };
    },
    setInterval(fn, ms) {
      const t = setInterval(fn, ms);
      t.unref();
      return { cancel: () => clearInterval(t) };
    },
  };
}

export interface ManualClock extends Clock {
  /** Moves time forward, running every timer that falls due, in time order. */
  advance(ms: number): void;
  /** Number of timers still scheduled. */
  pending(): number;
}

interface Scheduled {
  at: number;
  seq: number;
  every: number;
  fn: () => void;
  cancelled: boolean;
}

export function createManualClock(start = 0): ManualClock {
  let now = start;
  let seq = 0;
  const timers: Scheduled[] = [];

  function add(fn: () => void, ms: number, every: number): Timer {
    const entry: Scheduled = { at: now + Math.max(0, ms), seq: seq++, every, fn, cancelled: false };
    timers.push(entry);
    return { cancel: () => { entry.cancelled = true; } };
  }

  function nextDue(until: number): Scheduled | undefined {
    let best: Scheduled | undefined;
    for (const t of timers) {
      if (t.cancelled || t.at > until) continue;
      if (best === undefined || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    }
    return best;
  }

  return {
    now: () => now,
    setTimeout: (fn, ms) => add(fn, ms, 0),
    setInterval: (fn, ms) => add(fn, ms, Math.max(1, ms)),
    advance(ms: number) {
      const until = now + ms;
      for (let t = nextDue(until); t !== undefined; t = nextDue(until)) {
        now = Math.max(now, t.at);
        if (t.every > 0) { t.at += t.every; t.seq = seq++; } else { t.cancelled = true; }
        t.fn();
      }
      now = until;
      for (let i = timers.length - 1; i >= 0; i--) if (timers[i]!.cancelled) timers.splice(i, 1);
    },
    pending: () => timers.filter((t) => !t.cancelled).length,
  };
}
