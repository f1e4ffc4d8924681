import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../engine/config/index.js';
import { CHURN_DEFAULTS, createChurn, parseChurnConfig, type ChurnState, type SessionSummary } from '../../actors/machines/index.js';

/**
 * Churn score properties: the score stays in [0, 1], the activity index
 * halves per half-life, more recent (or more) activity never raises the
 * score, and a threshold crossing is reported once per crossing.
 */

const DAY = 86_400_000;
const T0 = 1_700_000_000_000;

/** Deterministic pseudo-random numbers, so a failure reproduces. */
function prng(seed: number): () => number {
  let s = seed;
  return () => ((s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32);
}

function session(endedAt: number, minutes = 5, funnelProgress = 0): SessionSummary {
  return { endedAt, durationMs: minutes * 60_000, funnelProgress };
}

/** A user with a few random sessions over the 30 days before T0. */
function randomHistory(churn: ReturnType<typeof createChurn>, random: () => number): ChurnState {
  let state = churn.initial();
  const n = Math.floor(random() * 6);
  for (let i = 0; i < n; i++) {
    const at = T0 - 30 * DAY + Math.floor(random() * 30 * DAY);
    state = churn.update(state, session(at, random() * 120, random()), at).state;
  }
  return state;
}

describe('churn - score', () => {
  const churn = createChurn();

  it('score - stays in [0, 1] for random users, times and extreme coefficients', () => {
    const extreme = createChurn({ coefficients: { intercept: 800, recencyPerDay: 1e6, frequency: -1e6 } });
    const random = prng(1);
    for (let i = 0; i < 2_000; i++) {
      for (const c of [churn, extreme]) {
        const state = randomHistory(c, random);
        const now = T0 + Math.floor(random() * 400 * DAY);
        const out = c.update(state, random() < 0.5 ? null : session(now, random() * 1e6, random() * 3), now);
        expect(out.score).toBeGreaterThanOrEqual(0);
        expect(out.score).toBeLessThanOrEqual(1);
      }
    }
  });

  it('recency - a later evaluation (the same activity, less recent) never scores lower', () => {
    const random = prng(2);
    for (let i = 0; i < 300; i++) {
      const state = randomHistory(churn, random);
      let previous = -1;
      for (let d = 0; d <= 60; d += 0.5) {
        const score = churn.scoreAt(state, T0 + d * DAY);
        expect(score).toBeGreaterThanOrEqual(previous);
        previous = score;
      }
    }
  });

  it('recency - the same session ending more recently never raises the score', () => {
    const random = prng(3);
    for (let i = 0; i < 300; i++) {
      const state = randomHistory(churn, random);
      const now = T0 + 10 * DAY;
      const minutes = random() * 60;
      const progress = random();
      const earlier = T0 + Math.floor(random() * 5 * DAY);
      const later = earlier + Math.floor(random() * 5 * DAY);
      const scoreEarlier = churn.update(state, session(earlier, minutes, progress), now).score;
      const scoreLater = churn.update(state, session(later, minutes, progress), now).score;
      expect(scoreLater).toBeLessThanOrEqual(scoreEarlier);
    }
  });

  it('frequency - one more session never raises the score', () => {
    const random = prng(4);
    for (let i = 0; i < 300; i++) {
      const state = randomHistory(churn, random);
      const now = T0 + Math.floor(random() * 10 * DAY);
      const without = churn.update(state, null, now).score;
      const withSession = churn.update(state, session(now - Math.floor(random() * DAY), random() * 30, random()), now).score;
      expect(withSession).toBeLessThanOrEqual(without);
    }
  });

  it('defaults - a user active today scores low, the same user after two idle weeks high', () => {
    const state = churn.update(churn.initial(), session(T0, 5), T0).state;
    // By hand: z = 0.5 - 0.9·ln 2 - 0.3·ln 6 ≈ -0.662 → 0.340;
    // 14 days later: activity 0.25, minutes 1.25 → z = 0.5 + 3.5 - 0.9·ln 1.25 - 0.3·ln 2.25 ≈ 3.556 → 0.972.
    expect(churn.scoreAt(state, T0)).toBeCloseTo(0.340, 3);
    expect(churn.scoreAt(state, T0 + 14 * DAY)).toBeCloseTo(0.972, 3);
  });
});

describe('churn - activity index', () => {
  it('decay - halves per half-life, whatever the half-life', () => {
    for (const halfLifeMs of [3_600_000, DAY, 7 * DAY, 30 * DAY]) {
      const churn = createChurn({ halfLifeMs });
      let state = churn.initial();
      for (const at of [T0 - 2 * DAY, T0 - DAY, T0]) state = churn.update(state, session(at), at).state;
      const a0 = churn.activityAt(state, T0);
      expect(churn.activityAt(state, T0 + halfLifeMs)).toBeCloseTo(a0 / 2, 10);
      expect(churn.activityAt(state, T0 + 3 * halfLifeMs)).toBeCloseTo(a0 / 8, 10);
      // Updating in between (no session) does not change the decay.
      const mid = churn.update(state, null, T0 + halfLifeMs / 3).state;
      expect(churn.activityAt(mid, T0 + halfLifeMs)).toBeCloseTo(a0 / 2, 10);
    }
  });

  it('activity - a session counts 1 when it ends, reported late it counts what is left of it', () => {
    const churn = createChurn({ halfLifeMs: DAY });
    const one = churn.update(churn.initial(), session(T0), T0);
    expect(one.activity).toBe(1);
    const late = churn.update(one.state, session(T0 - DAY), T0);
    expect(late.activity).toBeCloseTo(1.5, 10);
  });
});

describe('churn - threshold crossing', () => {
  it('crossed - reported once per upward crossing, again after dropping below', () => {
    const churn = createChurn({ threshold: 0.8 });
    let state = churn.update(churn.initial(), session(T0, 5), T0).state;
    const crossings: number[] = [];
    for (let d = 1; d <= 30; d++) {
      const out = churn.update(state, null, T0 + d * DAY);
      state = out.state;
      if (out.crossed) crossings.push(d);
    }
    // By hand with the defaults, z(d) = 0.5 + 0.25·d - 0.9·ln(1 + 2^(-d/7)) - 0.3·ln(1 + 5·2^(-d/7)):
    // day 6 ≈ 1.207 → 0.770, day 7 ≈ 1.509 → 0.819, so the score passes 0.8 on day 7.
    expect(crossings).toEqual([7]);
    const back = churn.update(state, session(T0 + 31 * DAY, 30), T0 + 31 * DAY);
    expect(back.crossed).toBe(false);
    expect(back.score).toBeLessThan(0.8);
    state = back.state;
    const again: number[] = [];
    for (let d = 32; d <= 60; d++) {
      const out = churn.update(state, null, T0 + d * DAY);
      state = out.state;
      if (out.crossed) again.push(d);
    }
    expect(again).toHaveLength(1);
  });
});

describe('churn - state and config', () => {
  it('round trip - state → JSON → state scores identically', () => {
    const churn = createChurn();
    const state = randomHistory(churn, prng(5));
    const restored = churn.restore(JSON.parse(JSON.stringify(state)));
    expect(restored).toEqual(state);
    expect(churn.scoreAt(restored, T0 + DAY)).toBe(churn.scoreAt(state, T0 + DAY));
    expect(churn.restore({ t: 'x' })).toEqual(churn.initial());
  });

  it('defaults - documented values, frozen', () => {
    const config = parseChurnConfig({});
    expect(config).toEqual({
      halfLifeMs: 7 * DAY, threshold: 0.8,
      coefficients: { intercept: 0.5, recencyPerDay: 0.25, frequency: -0.9, sessionMinutes: -0.3, funnelProgress: -1 },
      actions: [],
    });
    expect(config.coefficients).toEqual(CHURN_DEFAULTS.coefficients);
    expect(Object.isFrozen(config.coefficients)).toBe(true);
  });

  it('invalid - signs that would break monotonicity, and unknown keys, are named by path', () => {
    let problems: readonly string[] = [];
    try {
      createChurn({ threshold: 1.5, coefficients: { recencyPerDay: -1, frequency: 2, extra: 0 } }, { configPath: ['churn'] });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      problems = (err as ConfigError).problems;
    }
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual([
      'churn.coefficients.extra', 'churn.coefficients.frequency', 'churn.coefficients.recencyPerDay', 'churn.threshold',
    ]);
  });
});

describe('churn - crossing time', () => {
  const churn = createChurn({ halfLifeMs: 7 * DAY, threshold: 0.8 });

  it('crossingAt - the score has reached the threshold then, and had not 0.1% (or a second) earlier, for random users', () => {
    const random = prng(7);
    let checked = 0;
    for (let i = 0; i < 300; i++) {
      const state = randomHistory(churn, random);
      const at = churn.crossingAt(state, T0);
      if (state.l === 0 || state.hi) {
        expect(at).toBe(0);
        continue;
      }
      if (at === 0) {
        expect(churn.scoreAt(state, T0 + 400 * DAY)).toBeLessThan(0.8);
        continue;
      }
      expect(churn.scoreAt(state, at)).toBeGreaterThanOrEqual(0.8);
      const slack = Math.max(1_001, (at - T0) * 0.0011);
      if (at - slack > T0) expect(churn.scoreAt(state, at - slack)).toBeLessThan(0.8);
      checked++;
    }
    expect(checked).toBeGreaterThan(100);
  });

  it('crossingAt - the update at that time reports the crossing, once', () => {
    const state = churn.update(churn.initial(), session(T0, 30), T0).state;
    const at = churn.crossingAt(state, T0);
    expect(at).toBeGreaterThan(T0);
    expect(churn.update(state, null, at - Math.max(2_000, (at - T0) * 0.002)).crossed).toBe(false);
    const crossed = churn.update(state, null, at);
    expect(crossed.crossed).toBe(true);
    expect(churn.crossingAt(crossed.state, at)).toBe(0);
    expect(churn.update(crossed.state, null, at + DAY).crossed).toBe(false);
  });

  it('actions - push and webhook are accepted, reply is not (there is no event to answer)', () => {
    expect(parseChurnConfig({ actions: [{ type: 'push', params: { offer: 'win-back' } }, { type: 'webhook', url: 'https://crm.example/churn' }] }).actions).toHaveLength(2);
    expect(() => parseChurnConfig({ actions: [{ type: 'reply', data: {} }] })).toThrow(ConfigError);
  });
});
