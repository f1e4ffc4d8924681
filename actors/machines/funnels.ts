import { transition, type SnapshotFrom } from 'xstate';
import type { Envelope } from '../../engine/envelope/index.js';
import { createKeyMatcher, type Subscription } from '../../engine/keys/index.js';
import type { TimedAction } from './actions.js';
import { parseFunnels, type FunnelAction, type FunnelConfig } from './funnel-config.js';
import {
  FUNNEL_EVENT, IDLE_CONTEXT, createFunnelMachine, stepName,
  type FunnelContext, type FunnelEvent, type FunnelMachine, type ReachedParams,
} from './funnel-machine.js';
import { compileFunnelMachine, runFunnelProgram, type FunnelProgram } from './funnel-program.js';

/**
 * All of a project's funnels, advanced per user with a step:
 * `step(state, envelope) → { state, reached } | null`. The live per-user
 * state is one flat array of numbers, a slot of SLOT fields per funnel (see
 * below); `persist` turns it into the stored form, a record by funnel name
 * holding only attempts in progress (JSON-safe), and `restore` back. An
 * event whose key hits no funnel pattern costs one Map lookup.
 *
 * Why flat: with a million users, the funnel step's time went to cache
 * misses — 46% of its samples on loading the user's slot, 25% on the
 * attempt's state (the CPU profile of the actor-stage bench) — and an
 * attempt object was three more loads away (its object, then the boxes V8
 * keeps a double field in). A JS array of doubles holds them unboxed, in one
 * block.
 *
 * `step` writes the state it is given in place, as the sessionizer does a
 * session (the caller keeps only the state `step` returns). Each user gets
 * an array of their own from `initial()` and `restore()`, when their actor's
 * state is made, so the two are allocated together and tend to stay close in
 * memory: 0.2 µs per event less in the actor-stage bench than an array made
 * at the user's first funnel step (three interleaved pairs), for ~190 bytes
 * per live actor (three funnels). A shared empty state, used with no
 * funnels, is never written: a change copies it. `prune` and `abandonDue`,
 * rare, return new states.
 *
 * Why two forms: by name is what survives a config edit (funnels added,
 * removed, reordered), but on the per-event path a record keyed by funnel
 * name meant keyed loads and stores with a different name at each site,
 * shapes varying with which funnels are active, and a copy of the record on
 * every change — 0.48 µs per event for the actor-stage bench's three
 * funnels alone (.tmp/fun.mjs at the time), most of it in those accesses.
 * Slots by index are plain element loads.
 */

/** Progress of one funnel for one user, as stored. Short keys: this is stored per user. */
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

/** Stored per user: funnel name → progress, for funnels with an attempt in progress. */
export type PersistedFunnels = Readonly<Record<string, FunnelProgress>>;

/**
 * Live per user: SLOT numbers per funnel, in config order — funnel `n`'s
 * fields start at `n * SLOT`, at these offsets. An idle funnel's slot is all
 * zeros. Made only by this Funnels instance (initial, step, restore, prune,
 * abandonDue).
 */
export type FunnelsState = readonly number[];
/** Machine state index (program.states); 0 is idle. */
const STATE = 0;
/** The machine's context (FunnelContext): attempt start, latest step, steps reached. */
const STARTED_AT = 1;
const LAST_AT = 2;
const MASK = 3;
/** Funnels with `abandon`: as FunnelProgress.d and .k; 0 for the others. */
const DUE = 4;
const LAST_STEP = 5;
const SLOT = 6;

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
  /** The state of a user no funnel has seen: a new array each time (see above). */
  initial(): FunnelsState;
  /** The stored form: attempts in progress by funnel name (a shared frozen `{}` when none). */
  persist(state: FunnelsState): PersistedFunnels;
  /**
   * Advances every funnel the event's key concerns, updating `state` in place
   * (use the returned state from then on). null: nothing changed, nothing reached.
   */
  step(state: FunnelsState, envelope: Envelope): FunnelsStep | null;
  /**
   * Drops attempts that can no longer convert at `now` (a funnel-clock time,
   * e.g. the server time at passivation), so idle users store less.
   */
  prune(state: FunnelsState, now: number): FunnelsState;
  /** Persisted (JSON-parsed) form → live state: unknown funnels, stale versions and malformed entries dropped. */
  restore(persisted: unknown): FunnelsState;
  /** The earliest abandonment time armed in `state` (server time), 0 when none. */
  nextDeadline(state: FunnelsState): number;
  /** Attempts whose abandonment time has come at `now` (server time), disarmed in the returned state. null: none due. */
  abandonDue(state: FunnelsState, now: number): { readonly state: FunnelsState; readonly abandoned: readonly FunnelAbandoned[] } | null;
  /** The xstate snapshot a funnel's progress stands for (inspection, tests). */
  snapshotOf(state: FunnelsState, funnel: string): SnapshotFrom<FunnelMachine>;
}

interface CompiledFunnel {
  /** Slot in the live state. */
  readonly index: number;
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

const EMPTY_PERSISTED: PersistedFunnels = Object.freeze({});
const NO_REACHED: readonly FunnelReached[] = Object.freeze([]);
const NO_PLAN: readonly KeyPlanEntry[] = Object.freeze([]);
const PLAN_CACHE_MAX = 4096;

export function createFunnels(raw: unknown, options: FunnelsOptions = {}): Funnels {
  const configs = parseFunnels(raw, options.configPath);
  const useXstate = options.engine === 'xstate';

  const funnels: CompiledFunnel[] = configs.map((config, index) => {
    const machine = createFunnelMachine(config);
    return {
      index,
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
  // Not frozen (that would make its elements objects, not doubles): nothing here writes it.
  const emptyState: FunnelsState = doubles(funnels.length * SLOT, null);
  // The compiled engine's guards and effects read the event and the context and keep
  // neither: one event and one context object, refilled per funnel.
  const scratch = { type: FUNNEL_EVENT, ts: 0, envelope: null as unknown as Envelope, stepHits: 0, exclusionHits: 0 };
  const context = { startedAt: 0, lastAt: 0, reachedMask: 0 };

  /** A user's own all-idle state (the shared one when there are no funnels: nothing to write). */
  function fresh(): FunnelsState {
    return emptyState.length === 0 ? emptyState : doubles(emptyState.length, null);
  }

  /** Funnel `f`'s context in `state`, in the shared context object (valid until the next call). */
  function contextAt(state: FunnelsState, at: number): FunnelContext {
    context.startedAt = state[at + STARTED_AT]!;
    context.lastAt = state[at + LAST_AT]!;
    context.reachedMask = state[at + MASK]!;
    return context;
  }

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

  interface Advance { readonly state: number; readonly context: FunnelContext; readonly reached: readonly ReachedParams[] }

  function advanceCompiled(f: CompiledFunnel, state: number, ctx: FunnelContext, envelope: Envelope, entry: KeyPlanEntry): Advance | null {
    const event = scratch as { -readonly [K in keyof FunnelEvent]: FunnelEvent[K] };
    event.ts = envelope.ts;
    event.envelope = envelope;
    event.stepHits = entry.stepHits;
    event.exclusionHits = entry.exclusionHits;
    return runFunnelProgram(f.program, state, ctx, event);
  }

  function advanceXstate(f: CompiledFunnel, state: number, ctx: FunnelContext, envelope: Envelope, entry: KeyPlanEntry): Advance | null {
    const event: FunnelEvent = { type: FUNNEL_EVENT, ts: envelope.ts, envelope, stepHits: entry.stepHits, exclusionHits: entry.exclusionHits };
    const [next, actions] = transition(f.machine, snapshotFrom(f, state, ctx), event);
    const reached = actions.filter((x) => x.type === 'reached').map((x) => x.params as ReachedParams);
    const to = f.program.stateIndex.get(next.value as string)!;
    if (reached.length === 0 && to === state && sameContext(next.context, ctx)) return null;
    return { state: to, context: next.context, reached };
  }

  function snapshotFrom(f: CompiledFunnel, state: number, ctx: FunnelContext): SnapshotFrom<FunnelMachine> {
    // A copy: the snapshot may keep its context, and `ctx` may be the shared one.
    const clean = state === 0 ? IDLE_CONTEXT : { startedAt: ctx.startedAt, lastAt: ctx.lastAt, reachedMask: ctx.reachedMask };
    return f.machine.resolveState({ value: f.program.states[state]!, context: clean });
  }

  const advance = useXstate ? advanceXstate : advanceCompiled;

  function step(state: FunnelsState, envelope: Envelope): FunnelsStep | null {
    const plan = planFor(envelope.key);
    if (plan.length === 0) return null;
    let next: number[] | null = null;
    let reached: FunnelReached[] | null = null;
    for (let p = 0; p < plan.length; p++) {
      const entry = plan[p]!;
      const f = entry.funnel;
      const at = f.index * SLOT;
      const out = advance(f, state[at + STATE]!, contextAt(state, at), envelope, entry);
      if (out === null) continue;
      // Only the shared empty state is copied; a user's own array is written in place.
      next ??= state === emptyState ? doubles(state.length, state) : state as number[];
      const abandon = f.config.abandon;
      const ctx = out.context;
      let last = 0;
      let armed = 0;
      if (out.state !== 0 && abandon !== undefined) {
        // A step reached (re)arms the abandonment timer from when the server got it; other changes keep it.
        last = out.reached.length > 0 ? out.reached[out.reached.length - 1]!.step : state[at + LAST_STEP]!;
        armed = out.reached.length === 0 ? state[at + DUE]!
          : (f.config.mode === 'any' ? bitCount(ctx.reachedMask) - 1 : last) >= abandon.fromStep ? envelope.receivedAt + abandon.afterMs : 0;
      }
      // Back to idle: the slot is all zeros (the reset context is).
      const idle = out.state === 0;
      next[at + STATE] = out.state;
      next[at + STARTED_AT] = idle ? 0 : ctx.startedAt;
      next[at + LAST_AT] = idle ? 0 : ctx.lastAt;
      next[at + MASK] = idle ? 0 : ctx.reachedMask;
      next[at + DUE] = armed;
      next[at + LAST_STEP] = last;
      for (let i = 0; i < out.reached.length; i++) {
        const r = out.reached[i]!;
        // In ordered modes the count is the index + 1; in `any` mode the mask
        // after the step has it (a converting step resets the mask, so use all).
        const converted = out.state === 0;
        const n = f.config.steps.length;
        const count = converted ? n : f.config.mode === 'any' ? bitCount(ctx.reachedMask) : r.step + 1;
        (reached ??= []).push({
          funnel: f.name, key: f.key, stepIndex: r.step, stepName: f.stepNames[r.step]!, steps: n,
          reachedCount: count, progress: count / n, converted, sinceStartMs: r.sinceStartMs,
          actions: f.config.steps[r.step]!.actions,
        });
      }
    }
    if (next === null) return null;
    return { state: next, reached: reached ?? NO_REACHED };
  }

  /** The shared empty state when every slot is idle (what prune gives for passivation: the array is not kept). */
  function orEmpty(state: number[]): FunnelsState {
    for (let at = 0; at < state.length; at += SLOT) if (state[at + STATE] !== 0) return state;
    return emptyState;
  }

  function prune(state: FunnelsState, now: number): FunnelsState {
    let out: number[] | null = null;
    for (const f of funnels) {
      const at = f.index * SLOT;
      // An attempt past its window cannot convert, but an armed abandonment still has to fire.
      if (state[at + STATE] !== 0 && state[at + DUE]! <= 0 && expiredAt(f, contextAt(state, at), now)) {
        clearSlot(out ??= doubles(state.length, state), at);
      }
    }
    return out === null ? state : orEmpty(out);
  }

  function persist(state: FunnelsState): PersistedFunnels {
    let out: Record<string, FunnelProgress> | null = null;
    for (const f of funnels) {
      const at = f.index * SLOT;
      const i = state[at + STATE]!;
      if (i === 0) continue;
      // `| 0`: read from an array of doubles, a mask or step index would be kept boxed in the stored object.
      const progress: FunnelProgress = {
        s: f.program.states[i]!, t0: state[at + STARTED_AT]!, tl: state[at + LAST_AT]!, m: state[at + MASK]! | 0, v: f.version,
      };
      (out ??= {})[f.name] = f.config.abandon === undefined ? progress : { ...progress, d: state[at + DUE]!, k: state[at + LAST_STEP]! | 0 };
    }
    return out ?? EMPTY_PERSISTED;
  }

  function restore(persisted: unknown): FunnelsState {
    if (persisted === null || typeof persisted !== 'object' || Array.isArray(persisted)) return fresh();
    let out: number[] | null = null;
    for (const [name, value] of Object.entries(persisted as Record<string, unknown>)) {
      const f = byName.get(name);
      if (f === undefined || !isProgress(value) || value.v !== f.version) continue;
      const index = f.program.stateIndex.get(value.s);
      if (index === undefined || index === 0) continue;
      const abandon = f.config.abandon !== undefined;
      out ??= doubles(emptyState.length, emptyState);
      const at = f.index * SLOT;
      out[at + STATE] = index;
      out[at + STARTED_AT] = value.t0;
      out[at + LAST_AT] = value.tl;
      out[at + MASK] = value.m;
      out[at + DUE] = abandon ? finiteOr(value.d, 0) : 0;
      out[at + LAST_STEP] = abandon ? finiteOr(value.k, 0) : 0;
    }
    return out ?? fresh();
  }

  const anyAbandon = funnels.some((f) => f.config.abandon !== undefined);

  function nextDeadline(state: FunnelsState): number {
    if (!anyAbandon) return 0;
    let earliest = 0;
    for (let at = 0; at < state.length; at += SLOT) {
      const d = state[at + DUE]!;
      if (d > 0 && (earliest === 0 || d < earliest)) earliest = d;
    }
    return earliest;
  }

  function abandonDue(state: FunnelsState, now: number): { state: FunnelsState; abandoned: FunnelAbandoned[] } | null {
    let out: number[] | null = null;
    const abandoned: FunnelAbandoned[] = [];
    for (const f of funnels) {
      const at = f.index * SLOT;
      const d = state[at + DUE]!;
      if (state[at + STATE] === 0 || d <= 0 || d > now || f.config.abandon === undefined) continue;
      (out ??= doubles(state.length, state))[at + DUE] = 0;
      const k = Math.min(state[at + LAST_STEP]!, f.config.steps.length - 1);
      abandoned.push({
        funnel: f.name, key: `in.sys.abandon.${f.name}`, stepIndex: k, stepName: f.stepNames[k]!, steps: f.config.steps.length,
        reachedCount: bitCount(state[at + MASK]!), sinceStartMs: state[at + LAST_AT]! - state[at + STARTED_AT]!, dueAt: d,
        actions: f.config.abandon.actions,
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
    initial: fresh,
    step,
    prune,
    persist,
    restore,
    snapshotOf(state, name) {
      const f = byName.get(name);
      if (f === undefined) throw new Error(`no funnel "${name}"`);
      const at = f.index * SLOT;
      return snapshotFrom(f, state[at + STATE]!, contextAt(state, at));
    },
  };
}

/**
 * A new array of `n` numbers, a copy of `from` (zeros when null), that V8
 * keeps as unboxed doubles from the start: seeded with a non-integer, so it
 * never starts as small integers and moves to doubles (a new backing store)
 * at its first timestamp.
 */
function doubles(n: number, from: FunnelsState | null): number[] {
  const out = [0.5];
  out.pop();
  for (let i = 0; i < n; i++) out.push(from === null ? 0 : from[i]!);
  return out;
}

function clearSlot(state: number[], at: number): void {
  for (let i = at; i < at + SLOT; i++) state[i] = 0;
}

function sameContext(a: FunnelContext, b: FunnelContext): boolean {
  return a.startedAt === b.startedAt && a.lastAt === b.lastAt && a.reachedMask === b.reachedMask;
}

/** The `expired` guard's rule, evaluated at a given time instead of an event's. */
function expiredAt(f: CompiledFunnel, a: FunnelContext, now: number): boolean {
  const at = Math.max(now, a.lastAt);
  if (at - a.startedAt > f.config.windowMs) return true;
  if (f.config.mode === 'any') return false;
  const next = f.config.steps[bitCount(a.reachedMask)]?.withinMs;
  return next !== undefined && at - a.lastAt > next;
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
