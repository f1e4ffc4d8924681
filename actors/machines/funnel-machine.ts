import { assign, setup } from 'xstate';
import type { Envelope } from '../../engine/envelope/index.js';
import { compileFilters, type EnvelopePredicate } from './filters.js';
import type { FunnelConfig } from './funnel-config.js';

/**
 * One xstate v5 machine per funnel, generated from its config. The machine is
 * the funnel's definition: states per step, named guards for patterns,
 * filters and windows, named actions for the context changes and for "step
 * reached". `machine.toJSON()` shows all of it. It is never started: the
 * per-user state is a persisted snapshot advanced by a pure transition
 * (xstate's `transition()`, or the table compiled from this same machine in
 * funnel-program.ts).
 *
 * States: `idle`, then `reached_{k}` = k steps reached (1 ≤ k < steps). The
 * transition that reaches the last step goes back to `idle`: a converted
 * funnel can be entered again.
 */

export const IDLE_STATE = 'idle';
export const FUNNEL_EVENT = 'event';

export function reachedState(count: number): string {
  return `reached_${count}`;
}

export interface FunnelContext {
  /** Funnel clock when the attempt's first step was reached (ms, client time). */
  readonly startedAt: number;
  /** Funnel clock when the latest step was reached. */
  readonly lastAt: number;
  /** Bit i set = step i reached (used by `any` mode; kept in all modes). */
  readonly reachedMask: number;
}

export const IDLE_CONTEXT: FunnelContext = Object.freeze({ startedAt: 0, lastAt: 0, reachedMask: 0 });

/** What the machine receives: an event already known to hit this funnel's patterns. */
export interface FunnelEvent {
  readonly type: typeof FUNNEL_EVENT;
  /** The envelope's client timestamp. */
  readonly ts: number;
  readonly envelope: Envelope;
  /** Bit i set = the event's key matches step i's pattern (filters not yet checked). */
  readonly stepHits: number;
  /** Bit j set = the key matches exclusion j's pattern. */
  readonly exclusionHits: number;
}

export interface ReachedParams {
  readonly step: number;
  readonly sinceStartMs: number;
}

/**
 * The funnel clock never runs backwards: an event older than the attempt's
 * latest step counts as happening at that step's time. Order is arrival
 * order; client time only measures windows (docs/funnels.md, "Out-of-order").
 */
export function funnelClock(context: FunnelContext, event: FunnelEvent): number {
  return event.ts > context.lastAt ? event.ts : context.lastAt;
}

/** Context changes, as pure functions: the xstate `assign`s and the compiled table share them. */
export const FUNNEL_EFFECTS = Object.freeze({
  start: (context: FunnelContext, event: FunnelEvent, params: { step: number }): FunnelContext => {
    const at = funnelClock(context, event);
    return { startedAt: at, lastAt: at, reachedMask: 1 << params.step };
  },
  advance: (context: FunnelContext, event: FunnelEvent, params: { step: number }): FunnelContext => ({
    startedAt: context.startedAt,
    lastAt: funnelClock(context, event),
    reachedMask: context.reachedMask | (1 << params.step),
  }),
  reset: (): FunnelContext => IDLE_CONTEXT,
});

export type FunnelEffectType = keyof typeof FUNNEL_EFFECTS;

interface GuardArgs { readonly context: FunnelContext; readonly event: FunnelEvent }

/** Guard implementations for one funnel: closures over its compiled filters and windows. */
function createGuards(funnel: FunnelConfig) {
  const stepFilters: EnvelopePredicate[] = funnel.steps.map((s) => compileFilters(s.filters));
  const exclusionFilters: EnvelopePredicate[] = funnel.exclusions.map((x) => compileFilters(x.filters));
  const within: (number | undefined)[] = funnel.steps.map((s) => s.withinMs);
  const windowMs = funnel.windowMs;

  /** Pattern and filters of step i (no windows). */
  const qualifies = (event: FunnelEvent, step: number): boolean =>
    ((event.stepHits >>> step) & 1) === 1 && stepFilters[step]!(event.envelope);

  /** The attempt can no longer convert: past the window, or past the next step's own window. */
  const expired = (context: FunnelContext, event: FunnelEvent, next: number | null): boolean => {
    const at = funnelClock(context, event);
    if (at - context.startedAt > windowMs) return true;
    const limit = next === null ? undefined : within[next];
    return limit !== undefined && at - context.lastAt > limit;
  };

  return {
    /** An exclusion's pattern and filters match. */
    excluded: ({ event }: GuardArgs): boolean => {
      let hits = event.exclusionHits;
      for (let j = 0; hits !== 0; j++, hits >>>= 1) {
        if ((hits & 1) === 1 && exclusionFilters[j]!(event.envelope)) return true;
      }
      return false;
    },
    expired: ({ context, event }: GuardArgs, params: { next: number | null }): boolean => expired(context, event, params.next),
    /** From idle: the event is step `step` of a new attempt. */
    starts: ({ event }: GuardArgs, params: { step: number }): boolean => qualifies(event, params.step),
    /** The attempt has expired and the event begins a new one at `step`. */
    restarts: ({ context, event }: GuardArgs, params: { step: number; next: number | null }): boolean =>
      expired(context, event, params.next) && qualifies(event, params.step),
    /** The event is step `step` of the running attempt: not yet reached, and within its window. */
    continues: ({ context, event }: GuardArgs, params: { step: number }): boolean => {
      if ((context.reachedMask >>> params.step) & 1) return false;
      if (!qualifies(event, params.step)) return false;
      const limit = within[params.step];
      return limit === undefined || funnelClock(context, event) - context.lastAt <= limit;
    },
    /** Strict mode: the event matches some step's pattern (so it had to be the next step). */
    breaksOrder: ({ event }: GuardArgs): boolean => event.stepHits !== 0,
  };
}

type Guards = ReturnType<typeof createGuards>;
type GuardRef = { [K in keyof Guards]: Parameters<Guards[K]>[1] extends undefined
  ? { type: K } : { type: K; params: Parameters<Guards[K]>[1] } }[keyof Guards];

type ActionRef =
  | { type: 'start' | 'advance'; params: { step: number } }
  | { type: 'reset' }
  | { type: 'reached'; params: (args: { context: FunnelContext }) => ReachedParams };

interface TransitionSpec { guard: GuardRef; target: string; actions: ActionRef[] }

/** Reached after the context change, so `sinceStartMs` is measured to this step. */
function reached(step: number): ActionRef {
  return { type: 'reached', params: ({ context }) => ({ step, sinceStartMs: context.lastAt - context.startedAt }) };
}

/** Actions and target for reaching `step` as the attempt's `count`-th step. */
function reach(effect: 'start' | 'advance', step: number, count: number, total: number): Pick<TransitionSpec, 'target' | 'actions'> {
  const actions: ActionRef[] = [{ type: effect, params: { step } }, reached(step)];
  if (count < total) return { target: reachedState(count), actions };
  // The last step converts: report it, then start over from idle.
  return { target: IDLE_STATE, actions: [...actions, { type: 'reset' }] };
}

/** The ordered list of transitions of every state; the first whose guard passes is taken. */
function buildStates(funnel: FunnelConfig): Record<string, TransitionSpec[]> {
  const n = funnel.steps.length;
  const all = funnel.steps.map((_, i) => i);
  const ordered = funnel.mode !== 'any';
  const states: Record<string, TransitionSpec[]> = {};

  // From idle: ordered modes begin at step 0 only; `any` mode at any step.
  states[IDLE_STATE] = (ordered ? [0] : all).map((step) => ({
    guard: { type: 'starts', params: { step } }, ...reach('start', step, 1, n),
  }));

  for (let k = 1; k < n; k++) {
    const next = ordered ? k : null;
    const t: TransitionSpec[] = [];
    if (funnel.exclusions.length > 0) t.push({ guard: { type: 'excluded' }, target: IDLE_STATE, actions: [{ type: 'reset' }] });
    for (const step of ordered ? [0] : all) {
      t.push({ guard: { type: 'restarts', params: { step, next } }, ...reach('start', step, 1, n) });
    }
    t.push({ guard: { type: 'expired', params: { next } }, target: IDLE_STATE, actions: [{ type: 'reset' }] });
    for (const step of ordered ? [k] : all) {
      t.push({ guard: { type: 'continues', params: { step } }, ...reach('advance', step, k + 1, n) });
    }
    if (funnel.mode === 'strict') {
      // Any other step event breaks the strict order; a step-0 event begins again.
      t.push({ guard: { type: 'starts', params: { step: 0 } }, ...reach('start', 0, 1, n) });
      t.push({ guard: { type: 'breaksOrder' }, target: IDLE_STATE, actions: [{ type: 'reset' }] });
    }
    states[reachedState(k)] = t;
  }
  return states;
}

function describeState(funnel: FunnelConfig, k: number): string {
  const n = funnel.steps.length;
  if (k === 0) return `no attempt in progress (${funnel.mode} funnel of ${n} steps)`;
  if (funnel.mode === 'any') return `${k} of ${n} steps reached (which ones: context.reachedMask)`;
  return `reached "${stepName(funnel, k - 1)}" (${k} of ${n}), waiting for "${stepName(funnel, k)}"`;
}

export function stepName(funnel: FunnelConfig, index: number): string {
  return funnel.steps[index]?.name ?? `step_${index}`;
}

export function createFunnelMachine(funnel: FunnelConfig) {
  const guards = createGuards(funnel);
  const specs = buildStates(funnel);
  const states: Record<string, { description: string; on: { [FUNNEL_EVENT]: TransitionSpec[] } }> = {};
  Object.entries(specs).forEach(([name, on], k) => {
    states[name] = { description: describeState(funnel, k), on: { [FUNNEL_EVENT]: on } };
  });

  return setup({
    types: {} as { context: FunnelContext; events: FunnelEvent },
    guards,
    actions: {
      start: assign(({ context, event }, params: { step: number }) => FUNNEL_EFFECTS.start(context, event, params)),
      advance: assign(({ context, event }, params: { step: number }) => FUNNEL_EFFECTS.advance(context, event, params)),
      reset: assign(() => FUNNEL_EFFECTS.reset()),
      // Executed by the session actor (derived event, reply, push, webhook), not here.
      reached: (_args, _params: ReachedParams) => undefined,
    },
  }).createMachine({
    id: funnel.name,
    description: `funnel "${funnel.name}": ${funnel.mode} mode, ${funnel.steps.length} steps within ${funnel.windowMs} ms`,
    initial: IDLE_STATE,
    context: IDLE_CONTEXT,
    // The generated spec is typed above (GuardRef, ActionRef); xstate's own
    // config types cannot follow a config built in a loop.
    states: states as never,
  });
}

export type FunnelMachine = ReturnType<typeof createFunnelMachine>;
