import { transition, type SnapshotFrom } from 'xstate';
import type { Envelope } from '../../engine/envelope/index.js';
import { createKeyMatcher, type Subscription } from '../../engine/keys/index.js';
import type { TimedAction } from './actions.js';
import { parseFunnels, type FunnelAction, type FunnelConfig } from './funnel-config.js';
import {
  FUNNEL_EVENT, IDLE_CONTEXT, IDLE_STATE, createFunnelMachine, stepName,
  type FunnelContext, type FunnelEvent, type FunnelMachine, type ReachedParams,
} from './funnel-machine.js';
import { compileFunnelMachine, runFunnelProgram, type FunnelProgram } from './funnel-program.js';

/**
 * All of a project's funnels, advanced per user with a pure step:
 * `step(state, envelope) → { state, reached } | null`. The per-user state is a
 * small plain object — only funnels with an attempt in progress have an entry
 * — which is also its persisted form (JSON-safe, no conversion at
 * passivation). An event whose key hits no funnel pattern costs one Map lookup.
 */

/** Progress of one funnel for one user. Short keys: this is stored per user. */
export interface FunnelProgress {
  /** Machine state (`reached_{k}`); idle funnels have no entry. */
  readonly s: string;
  /** Attempt start, funnel clock (ms, client time). */
  readonly t0: number;
  /** Latest step reached, funnel clock. */
  readonly tl: number;
  /** Steps reached, bit per step. */
  readonly m: number;
  /** Config version of the funnel: progress towards an edited funnel is dropped. */
  readonly v: string;
  /** Funnels with `abandon`: server time the attempt counts as abandoned if no step comes first (0: not armed, or fired). */
  readonly d?: number;
  /** Funnels with `abandon`: the step reached last (what an abandonment reports). */
  readonly k?: number;
}

/** Per user: funnel name → progress, for funnels with an attempt in progress. */
export type FunnelsState = Readonly<Record<string, FunnelProgress>>;

export interface FunnelReached {
  readonly funnel: string;
  /** The derived event's key, `in.sys.funnel.{funnel}`. */
  readonly key: string;
  readonly stepIndex: number;
  readonly stepName: string;
  /** Steps in the funnel. */
  readonly steps: number;
  /** Steps of this attempt reached so far (in ordered modes, stepIndex + 1). */
  readonly reachedCount: number;
  /** reachedCount / steps: what the churn model takes as funnel progress. */
  readonly progress: number;
  /** This was the last step: the attempt converted and the funnel is idle again. */
  readonly converted: boolean;
  /** Funnel clock time since the attempt's first step (0 for the first step). */
  readonly sinceStartMs: number;
  readonly actions: readonly FunnelAction[];
}

/** An attempt that made no progress for its funnel's `abandon.afterMs`. */
export interface FunnelAbandoned {
  readonly funnel: string;
  /** The derived event's key, `in.sys.abandon.{funnel}`. */
  readonly key: string;
  /** The step reached last. */
  readonly stepIndex: number;
  readonly stepName: string;
  readonly steps: number;
  readonly reachedCount: number;
  /** Funnel clock time from the attempt's first step to its last. */
  readonly sinceStartMs: number;
  /** Server time the attempt was due to count as abandoned. */
  readonly dueAt: number;
  readonly actions: readonly TimedAction[];
}

export interface FunnelsStep {
  readonly state: FunnelsState;
  readonly reached: readonly FunnelReached[];
}

export interface FunnelsOptions {
  /**
   * `compiled` (default): the table compiled from each machine. `xstate`:
   * rebuild an xstate snapshot and call `transition()` per event — the
   * reference, 10x+ slower; tests check both agree.
   */
  readonly engine?: 'compiled' | 'xstate';
  /** Config path prefix for error messages, e.g. ['handlers', 0, 'options', 'funnels']. */
  readonly configPath?: readonly PropertyKey[];
}

export interface Funnels {
  readonly configs: readonly FunnelConfig[];
  /** The declarative definition of each funnel, for inspection (`toJSON()`). */
  readonly machines: ReadonlyMap<string, FunnelMachine>;
  /** Every step and exclusion pattern, deduplicated: the actor's pre-filter. */
  readonly patterns: readonly string[];
  /** The state of a user no funnel has seen (shared, frozen). */
  initial(): FunnelsState;
  /** Advances every funnel the event's key concerns. null: nothing changed, nothing reached. */
  step(state: FunnelsState, envelope: Envelope): FunnelsStep | null;
  /**
   * Drops attempts that can no longer convert at `now` (a funnel-clock time,
   * e.g. the server time at passivation), so idle users store less.
   */
  prune(state: FunnelsState, now: number): FunnelsState;
  /** Persisted (JSON-parsed) state → state: unknown funnels, stale versions and malformed entries dropped. */
  restore(persisted: unknown): FunnelsState;
  /** The earliest abandonment time armed in `state` (server time), 0 when none. */
  nextDeadline(state: FunnelsState): number;
  /** Attempts whose abandonment time has come at `now` (server time), disarmed in the returned state. null: none due. */
  abandonDue(state: FunnelsState, now: number): { readonly state: FunnelsState; readonly abandoned: readonly FunnelAbandoned[] } | null;
  /** The xstate snapshot a funnel's progress stands for (inspection, tests). */
  snapshotOf(state: FunnelsState, funnel: string): SnapshotFrom<FunnelMachine>;
}

interface CompiledFunnel {
  readonly config: FunnelConfig;
  readonly name: string;
  readonly key: string;
  readonly version: string;
  readonly machine: FunnelMachine;
  readonly program: FunnelProgram;
  readonly stepNames: readonly string[];
}

/** The funnels one key concerns, with which of their patterns it hits. */
interface KeyPlanEntry {
  readonly funnel: CompiledFunnel;
  readonly stepHits: number;
  readonly exclusionHits: number;
}

interface PatternTarget {
  readonly funnel: number;
  readonly kind: 'step' | 'exclusion';
  readonly index: number;
}

const EMPTY_STATE: FunnelsState = Object.freeze({});
const NO_PLAN: readonly KeyPlanEntry[] = Object.freeze([]);
const PLAN_CACHE_MAX = 4096;

export function createFunnels(raw: unknown, options: FunnelsOptions = {}): Funnels {
  const configs = parseFunnels(raw, options.configPath);
  const useXstate = options.engine === 'xstate';

  const funnels: CompiledFunnel[] = configs.map((config) => {
    const machine = createFunnelMachine(config);
    return {
      config,
      name: config.name,
      key: `in.sys.funnel.${config.name}`,
      version: configVersion(config),
      machine,
      program: compileFunnelMachine(machine),
      stepNames: config.steps.map((_, i) => stepName(config, i)),
    };
  });
  const byName = new Map(funnels.map((f) => [f.name, f]));

  const subscriptions: Subscription<PatternTarget>[] = [];
  funnels.forEach((f, fi) => {
    f.config.steps.forEach((s, index) => subscriptions.push({ pattern: s.pattern, value: { funnel: fi, kind: 'step', index } }));
    f.config.exclusions.forEach((x, index) => subscriptions.push({ pattern: x.pattern, value: { funnel: fi, kind: 'exclusion', index } }));
  });
  const matcher = createKeyMatcher(subscriptions);
  const patterns = Object.freeze([...new Set(subscriptions.map((s) => s.pattern))]);

  // Per key: which funnels, and which of their steps and exclusions, it hits.
  // Real traffic has a few hundred keys, so this is computed once per key.
  const plans = new Map<string, readonly KeyPlanEntry[]>();
  function planFor(key: string): readonly KeyPlanEntry[] {
    let plan = plans.get(key);
    if (plan !== undefined) return plan;
    const targets = matcher.match(key);
    if (targets.length === 0) {
      plan = NO_PLAN;
    } else {
      const steps = new Array<number>(funnels.length).fill(0);
      const exclusions = new Array<number>(funnels.length).fill(0);
      for (const t of targets) {
        if (t.kind === 'step') steps[t.funnel]! |= 1 << t.index;
        else exclusions[t.funnel]! |= 1 << t.index;
      }
      const entries: KeyPlanEntry[] = [];
      funnels.forEach((funnel, i) => {
        if (steps[i] !== 0 || exclusions[i] !== 0) entries.push({ funnel, stepHits: steps[i]!, exclusionHits: exclusions[i]! });
      });
      plan = Object.freeze(entries);
    }
    // A flood of made-up keys must not grow memory: start over.
    if (plans.size >= PLAN_CACHE_MAX) plans.clear();
    plans.set(key, plan);
    return plan;
  }

  /** The progress entry if it belongs to the current config, else undefined (= idle). */
  function currentProgress(state: FunnelsState, f: CompiledFunnel): FunnelProgress | undefined {
    const p = state[f.name];
    return p !== undefined && p.v === f.version && f.program.stateIndex.has(p.s) ? p : undefined;
  }

  interface Advance { readonly state: string; readonly context: FunnelContext; readonly reached: readonly ReachedParams[] }

  function advanceCompiled(f: CompiledFunnel, p: FunnelProgress | undefined, event: FunnelEvent): Advance | null {
    const from = p === undefined ? 0 : f.program.stateIndex.get(p.s)!;
    const out = runFunnelProgram(f.program, from, p === undefined ? IDLE_CONTEXT : contextOf(p), event);
    return out === null ? null : { state: f.program.states[out.state]!, context: out.context, reached: out.reached };
  }

  function advanceXstate(f: CompiledFunnel, p: FunnelProgress | undefined, event: FunnelEvent): Advance | null {
    const [next, actions] = transition(f.machine, snapshotFrom(f, p), event);
    const reached = actions.filter((a) => a.type === 'reached').map((a) => a.params as ReachedParams);
    const state = next.value as string;
    const context = next.context;
    if (reached.length === 0 && state === (p?.s ?? IDLE_STATE) && sameContext(context, p === undefined ? IDLE_CONTEXT : contextOf(p))) return null;
    return { state, context, reached };
  }

  function snapshotFrom(f: CompiledFunnel, p: FunnelProgress | undefined): SnapshotFrom<FunnelMachine> {
    return f.machine.resolveState({ value: p?.s ?? IDLE_STATE, context: p === undefined ? IDLE_CONTEXT : contextOf(p) });
  }

  const advance = useXstate ? advanceXstate : advanceCompiled;

  function step(state: FunnelsState, envelope: Envelope): FunnelsStep | null {
    const plan = planFor(envelope.key);
    if (plan.length === 0) return null;
    let next: Record<string, FunnelProgress> | null = null;
    let reached: FunnelReached[] | null = null;
    for (const entry of plan) {
      const f = entry.funnel;
      const p = currentProgress(state, f);
      const event: FunnelEvent = {
        type: FUNNEL_EVENT, ts: envelope.ts, envelope, stepHits: entry.stepHits, exclusionHits: entry.exclusionHits,
      };
      const out = advance(f, p, event);
      if (out === null) continue;
      next ??= { ...state };
      const abandon = f.config.abandon;
      if (out.state === IDLE_STATE) {
        // Rebuilt below without idle entries rather than `delete`, which would
        // turn the object into a slow dictionary.
        next[f.name] = IDLE_MARK;
      } else if (abandon === undefined) {
        next[f.name] = { s: out.state, t0: out.context.startedAt, tl: out.context.lastAt, m: out.context.reachedMask, v: f.version };
      } else {
        // A step reached (re)arms the abandonment timer from when the server got it; other changes keep it.
        const last = out.reached.length > 0 ? out.reached[out.reached.length - 1]!.step : (p?.k ?? 0);
        const armed = out.reached.length === 0 ? (p?.d ?? 0)
          : (f.config.mode === 'any' ? bitCount(out.context.reachedMask) - 1 : last) >= abandon.fromStep ? envelope.receivedAt + abandon.afterMs : 0;
        next[f.name] = { s: out.state, t0: out.context.startedAt, tl: out.context.lastAt, m: out.context.reachedMask, v: f.version, d: armed, k: last };
      }
      for (const r of out.reached) {
        // In ordered modes the count is the index + 1; in `any` mode the mask
        // after the step has it (a converting step resets the mask, so use all).
        const converted = out.state === IDLE_STATE;
        const n = f.config.steps.length;
        const count = converted ? n : f.config.mode === 'any' ? bitCount(out.context.reachedMask) : r.step + 1;
        (reached ??= []).push({
          funnel: f.name, key: f.key, stepIndex: r.step, stepName: f.stepNames[r.step]!, steps: n,
          reachedCount: count, progress: count / n, converted, sinceStartMs: r.sinceStartMs,
          actions: f.config.steps[r.step]!.actions,
        });
      }
    }
    if (next === null) return null;
    return { state: withoutIdle(next), reached: reached ?? [] };
  }

  function prune(state: FunnelsState, now: number): FunnelsState {
    let out: Record<string, FunnelProgress> | null = null;
    for (const name in state) {
      const p = state[name]!;
      const f = byName.get(name);
      // An attempt past its window cannot convert, but an armed abandonment still has to fire.
      const live = f !== undefined && currentProgress(state, f) !== undefined && (!expiredAt(f, p, now) || (p.d ?? 0) > 0);
      if (!live) (out ??= { ...state })[name] = IDLE_MARK;
    }
    return out === null ? state : withoutIdle(out);
  }

  function restore(persisted: unknown): FunnelsState {
    if (persisted === null || typeof persisted !== 'object' || Array.isArray(persisted)) return EMPTY_STATE;
    const out: Record<string, FunnelProgress> = {};
    let any = false;
    for (const [name, value] of Object.entries(persisted as Record<string, unknown>)) {
      const f = byName.get(name);
      if (f === undefined || !isProgress(value) || value.v !== f.version) continue;
      const index = f.program.stateIndex.get(value.s);
      if (index === undefined || index === 0) continue;
      // Canonical strings from the compiled funnel: a million restored users
      // share one "reached_2", not a million copies.
      const progress: FunnelProgress = { s: f.program.states[index]!, t0: value.t0, tl: value.tl, m: value.m, v: f.version };
      out[f.name] = f.config.abandon === undefined ? progress
        : { ...progress, d: finiteOr(value.d, 0), k: finiteOr(value.k, 0) };
      any = true;
    }
    return any ? out : EMPTY_STATE;
  }

  const anyAbandon = funnels.some((f) => f.config.abandon !== undefined);

  function nextDeadline(state: FunnelsState): number {
    if (!anyAbandon) return 0;
    let earliest = 0;
    for (const name in state) {
      const d = state[name]!.d;
      if (d !== undefined && d > 0 && (earliest === 0 || d < earliest)) earliest = d;
    }
    return earliest;
  }

  function abandonDue(state: FunnelsState, now: number): { state: FunnelsState; abandoned: FunnelAbandoned[] } | null {
    let out: Record<string, FunnelProgress> | null = null;
    const abandoned: FunnelAbandoned[] = [];
    for (const name in state) {
      const p = state[name]!;
      if (p.d === undefined || p.d <= 0 || p.d > now) continue;
      (out ??= { ...state })[name] = { ...p, d: 0 };
      const f = byName.get(name);
      if (f === undefined || f.config.abandon === undefined || currentProgress(state, f) === undefined) continue;
      const k = Math.min(p.k ?? 0, f.config.steps.length - 1);
      abandoned.push({
        funnel: f.name, key: `in.sys.abandon.${f.name}`, stepIndex: k, stepName: f.stepNames[k]!, steps: f.config.steps.length,
        reachedCount: bitCount(p.m), sinceStartMs: p.tl - p.t0, dueAt: p.d, actions: f.config.abandon.actions,
      });
    }
    return out === null ? null : { state: out, abandoned };
  }

  return {
    configs,
    nextDeadline,
    abandonDue,
    machines: new Map(funnels.map((f) => [f.name, f.machine])),
    patterns,
    initial: () => EMPTY_STATE,
    step,
    prune,
    restore,
    snapshotOf(state, name) {
      const f = byName.get(name);
      if (f === undefined) throw new Error(`no funnel "${name}"`);
      return snapshotFrom(f, currentProgress(state, f));
    },
  };
}

const IDLE_MARK: FunnelProgress = Object.freeze({ s: IDLE_STATE, t0: 0, tl: 0, m: 0, v: '' });

function withoutIdle(state: Record<string, FunnelProgress>): FunnelsState {
  let keep = 0;
  let total = 0;
  for (const name in state) {
    total++;
    if (state[name] !== IDLE_MARK) keep++;
  }
  if (keep === 0) return EMPTY_STATE;
  if (keep === total) return state;
  const out: Record<string, FunnelProgress> = {};
  for (const name in state) if (state[name] !== IDLE_MARK) out[name] = state[name]!;
  return out;
}

function contextOf(p: FunnelProgress): FunnelContext {
  return { startedAt: p.t0, lastAt: p.tl, reachedMask: p.m };
}

function sameContext(a: FunnelContext, b: FunnelContext): boolean {
  return a.startedAt === b.startedAt && a.lastAt === b.lastAt && a.reachedMask === b.reachedMask;
}

/** The `expired` guard's rule, evaluated at a given time instead of an event's. */
function expiredAt(f: CompiledFunnel, p: FunnelProgress, now: number): boolean {
  const at = Math.max(now, p.tl);
  if (at - p.t0 > f.config.windowMs) return true;
  if (f.config.mode === 'any') return false;
  const next = f.config.steps[bitCount(p.m)]?.withinMs;
  return next !== undefined && at - p.tl > next;
}

function isProgress(value: unknown): value is FunnelProgress {
  if (value === null || typeof value !== 'object') return false;
  const p = value as Record<string, unknown>;
  return typeof p.s === 'string' && typeof p.v === 'string'
    && Number.isFinite(p.t0) && Number.isFinite(p.tl) && Number.isInteger(p.m);
}

function finiteOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

function bitCount(mask: number): number {
  let n = 0;
  for (let m = mask; m !== 0; m &= m - 1) n++;
  return n;
}

/**
 * Short stable hash (FNV-1a, base 36) of what decides progress: mode, window,
 * patterns, filters, windows, exclusions. Names, actions and abandonment are
 * left out, so editing a push message does not throw away every user's progress.
 */
function configVersion(config: FunnelConfig): string {
  const text = JSON.stringify(config, (key: string, value: unknown) => (key === 'actions' || key === 'name' || key === 'abandon' ? undefined : value));
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(36);
}
