import { z } from 'zod';
import { deepFreeze } from '../../engine/config/load.js';
import { MAX_ACTIONS, timedActionSchema } from './actions.js';
import { configErrorFrom } from './config-errors.js';

/**
 * Churn score: a per-user activity index (sessions, exponentially decayed with
 * a configurable half-life) and a churn probability from a logistic model
 * over recency, frequency, session length and funnel progress.
 *
 *   z = intercept + recencyPerDay · daysSinceLastActivity
 *       + frequency · ln(1 + activity) + sessionMinutes · ln(1 + decayedMinutes)
 *       + funnelProgress · decayedFunnelProgress
 *   score = 1 / (1 + e^-z)
 *
 * The coefficients' signs are enforced (recency ≥ 0, the others ≤ 0) so the
 * model is monotone: more recent or more activity never raises the score.
 * Pure functions over a small JSON-safe state; time is passed in.
 */

const DAY_MS = 86_400_000;

export const CHURN_DEFAULTS = Object.freeze({
  halfLifeMs: 7 * DAY_MS,
  threshold: 0.8,
  coefficients: Object.freeze({
    intercept: 0.5,
    recencyPerDay: 0.25,
    frequency: -0.9,
    sessionMinutes: -0.3,
    funnelProgress: -1.0,
  }),
});

const nonNegative = (what: string) => z.number().finite().min(0, `must be ≥ 0 (${what})`);
const nonPositive = (what: string) => z.number().finite().max(0, `must be ≤ 0 (${what})`);
const c = CHURN_DEFAULTS.coefficients;

export const churnSchema = z.strictObject({
  /** Activity halves every halfLifeMs without new sessions. */
  halfLifeMs: z.number().int().positive().max(365 * DAY_MS).default(CHURN_DEFAULTS.halfLifeMs),
  /** Crossing this score upwards is reported (once per crossing). */
  threshold: z.number().gt(0).lt(1).default(CHURN_DEFAULTS.threshold),
  coefficients: z.strictObject({
    intercept: z.number().finite().default(c.intercept),
    recencyPerDay: nonNegative('a longer absence must not lower churn').default(c.recencyPerDay),
    frequency: nonPositive('more sessions must not raise churn').default(c.frequency),
    sessionMinutes: nonPositive('longer sessions must not raise churn').default(c.sessionMinutes),
    funnelProgress: nonPositive('funnel progress must not raise churn').default(c.funnelProgress),
  }).prefault({}),
  /** Carried out when the score crosses the threshold upwards (push reaches the user's open connections, if any). */
  actions: z.array(timedActionSchema).max(MAX_ACTIONS).default([]),
});

export type ChurnConfigInput = z.input<typeof churnSchema>;
export type ChurnConfig = z.output<typeof churnSchema>;

/** Throws ConfigError listing every problem with its path (prefixed by `path`). */
export function parseChurnConfig(raw: unknown, path: readonly PropertyKey[] = []): ChurnConfig {
  const result = churnSchema.safeParse(raw ?? {});
  if (!result.success) throw configErrorFrom(result.error, path);
  return deepFreeze(result.data);
}

/** What the session actor knows at session end. */
export interface SessionSummary {
  /** Session end (ms, the same clock as `now`). */
  readonly endedAt: number;
  readonly durationMs: number;
  /** Highest FunnelReached.progress (0..1) seen in the session; 0 when none. */
  readonly funnelProgress?: number;
}

/** Per-user churn state. Short keys: this is stored per user. */
export interface ChurnState {
  /** Time the decayed values below refer to. */
  readonly t: number;
  /** Activity index: sessions, decayed. */
  readonly a: number;
  /** Session minutes, decayed. */
  readonly min: number;
  /** Funnel progress (0..1), decayed. */
  readonly p: number;
  /** Last activity (latest session end). */
  readonly l: number;
  /** The score was at or above the threshold at the last evaluation. */
  readonly hi: boolean;
}

export interface ChurnUpdate {
  readonly state: ChurnState;
  /** Churn probability, in [0, 1]. */
  readonly score: number;
  /** Activity index at `now`. */
  readonly activity: number;
  /** The score crossed the threshold upwards in this evaluation. */
  readonly crossed: boolean;
}

export interface Churn {
  readonly config: ChurnConfig;
  initial(): ChurnState;
  /** Adds a finished session (or, with null, only re-evaluates at `now`: absence raises the score). */
  update(state: ChurnState, summary: SessionSummary | null, now: number): ChurnUpdate;
  /** The activity index at `now` (decayed from the state's time). */
  activityAt(state: ChurnState, now: number): number;
  /** The score at `now`, without changing anything. */
  scoreAt(state: ChurnState, now: number): number;
  /**
   * When the score will reach the threshold if the user does nothing more:
   * a time ≥ `now` at which `scoreAt` ≥ threshold, at most 0.1% of the wait
   * (and a second) after the exact crossing.
   * 0 when the state is already above it (a crossing was reported), when no
   * session was recorded yet, or when it would take longer than `horizonMs`.
   * The score only rises with absence, so this is when a reminder should
   * wake the user's actor to report the crossing.
   */
  crossingAt(state: ChurnState, now: number, horizonMs?: number): number;
  /** Persisted (JSON-parsed) state → state; anything malformed starts fresh. */
  restore(persisted: unknown): ChurnState;
}

/** How far ahead crossingAt looks by default. */
export const CHURN_HORIZON_MS = 400 * DAY_MS;

const INITIAL: ChurnState = Object.freeze({ t: 0, a: 0, min: 0, p: 0, l: 0, hi: false });

export function createChurn(raw: unknown = {}, options: { configPath?: readonly PropertyKey[] } = {}): Churn {
  const config = parseChurnConfig(raw, options.configPath);
  const { halfLifeMs, threshold, coefficients: k } = config;

  /** 2^(-Δt / halfLife); events from the "future" (Δt < 0) are not amplified. */
  const decay = (dt: number): number => (dt <= 0 ? 1 : Math.pow(2, -dt / halfLifeMs));

  function decayTo(state: ChurnState, now: number): ChurnState {
    if (now <= state.t) return state;
    const f = decay(now - state.t);
    return { t: now, a: state.a * f, min: state.min * f, p: state.p * f, l: state.l, hi: state.hi };
  }

  function score(state: ChurnState, now: number): number {
    // No session recorded yet: no recency to measure; the activity terms
    // (all zero) leave the score at the intercept's.
    const days = state.l === 0 ? 0 : Math.max(0, now - state.l) / DAY_MS;
    // decayTo's arithmetic without its object: crossingAt scores ~17 times per session end.
    const f = now <= state.t ? 1 : decay(now - state.t);
    const z = k.intercept + k.recencyPerDay * days + k.frequency * Math.log1p(state.a * f)
      + k.sessionMinutes * Math.log1p(state.min * f) + k.funnelProgress * (state.p * f);
    const p = 1 / (1 + Math.exp(-z));
    // exp overflow gives exactly 0 or 1; NaN cannot arise from finite inputs,
    // but a bad summary must not poison the state forever.
    return Number.isFinite(p) ? p : 1;
  }

  function update(state: ChurnState, summary: SessionSummary | null, now: number): ChurnUpdate {
    let next = decayTo(state, now);
    if (summary !== null) {
      // A session reported late (ended before the state's time) adds what is
      // left of it after decay, so order of reports does not matter.
      const w = decay(next.t - summary.endedAt);
      const minutes = Math.max(0, finiteOr0(summary.durationMs)) / 60_000;
      const progress = Math.min(1, Math.max(0, finiteOr0(summary.funnelProgress ?? 0)));
      next = {
        t: Math.max(next.t, summary.endedAt),
        a: next.a + w,
        min: next.min + minutes * w,
        p: Math.max(next.p, progress * w),
        l: Math.max(next.l, summary.endedAt),
        hi: next.hi,
      };
    }
    const value = score(next, now);
    const hi = value >= threshold;
    const crossed = hi && !next.hi;
    if (hi !== next.hi) next = { ...next, hi };
    return { state: next, score: value, activity: next.a * decay(now - next.t), crossed };
  }

  function crossingAt(state: ChurnState, now: number, horizonMs = CHURN_HORIZON_MS): number {
    if (state.hi || state.l === 0) return 0;
    if (score(state, now) >= threshold) return now;
    if (score(state, now + horizonMs) < threshold) return 0;
    // The score is monotone in time (the coefficients' signs are enforced). Bisect the
    // time to wait on a log scale, to 0.1% of it (and at least a second): ~14 evaluations
    // where a plain bisection to the second over 400 days takes 35. Always the upper end,
    // so the score has crossed when the reminder fires.
    let lo = Math.log(1_000);
    let hi = Math.log(horizonMs);
    if (score(state, now + 1_000) >= threshold) return now + 1_000;
    while (hi - lo > 0.001) {
      const mid = (lo + hi) / 2;
      if (score(state, now + Math.exp(mid)) >= threshold) hi = mid;
      else lo = mid;
    }
    return now + Math.ceil(Math.exp(hi));
  }

  return {
    config,
    initial: () => INITIAL,
    update,
    crossingAt,
    activityAt: (state, now) => state.a * decay(now - state.t),
    scoreAt: score,
    restore(persisted) {
      if (persisted === null || typeof persisted !== 'object') return INITIAL;
      const s = persisted as Record<string, unknown>;
      const nums = [s.t, s.a, s.min, s.p, s.l];
      if (!nums.every((n) => typeof n === 'number' && Number.isFinite(n) && n >= 0) || typeof s.hi !== 'boolean') return INITIAL;
      return { t: s.t as number, a: s.a as number, min: s.min as number, p: Math.min(1, s.p as number), l: s.l as number, hi: s.hi };
    },
  };
}

function finiteOr0(n: number): number {
  return Number.isFinite(n) ? n : 0;
}
