import {
  FUNNEL_EFFECTS, FUNNEL_EVENT, IDLE_CONTEXT, IDLE_STATE,
  type FunnelContext, type FunnelEffectType, type FunnelEvent, type FunnelMachine, type ReachedParams,
} from './funnel-machine.js';

/**
 * The funnel machine, compiled into a table the hot path can walk. xstate's
 * `transition()` costs 9-20 µs per event on this machine (measured in
 * .tmp/machines/measure.mjs; the actor stage's budget is 3 µs for everything),
 * so the table is read from the machine itself — its states, its transitions
 * in document order, its guard implementations and its action references — and
 * run by a loop of a few lines. Nothing is restated here: change the machine
 * and the table follows. A differential test runs both on the same events.
 */

type GuardFn = (args: { context: FunnelContext; event: FunnelEvent }, params: unknown) => boolean;
type EffectFn = (context: FunnelContext, event: FunnelEvent, params: never) => FunnelContext;

interface ProgramAction {
  readonly effect: EffectFn | null;
  /** Static params, or (for `reached`) a function of the context at that point. */
  readonly params: unknown;
}

interface ProgramTransition {
  readonly guard: GuardFn;
  readonly guardParams: unknown;
  readonly target: number;
  readonly actions: readonly ProgramAction[];
}

export interface FunnelProgram {
  /** State names by index; index 0 is idle. */
  readonly states: readonly string[];
  readonly stateIndex: ReadonlyMap<string, number>;
  readonly transitions: readonly (readonly ProgramTransition[])[];
}

export interface ProgramResult {
  readonly state: number;
  readonly context: FunnelContext;
  readonly reached: readonly ReachedParams[];
}

interface RefLike { readonly type: string; readonly params?: unknown }

function isRef(value: unknown): value is RefLike {
  return value !== null && typeof value === 'object' && typeof (value as RefLike).type === 'string';
}

export function compileFunnelMachine(machine: FunnelMachine): FunnelProgram {
  const guards = machine.implementations.guards as Record<string, GuardFn | undefined>;
  const names = Object.keys(machine.root.states);
  // Idle first, so index 0 means "no attempt" whatever the document order.
  names.sort((a, b) => (a === IDLE_STATE ? -1 : b === IDLE_STATE ? 1 : 0));
  const stateIndex = new Map(names.map((n, i) => [n, i]));

  const transitions = names.map((name) => {
    const node = machine.root.states[name]!;
    return (node.transitions.get(FUNNEL_EVENT) ?? []).map((t): ProgramTransition => {
      // The generator only emits named guards and named actions; anything else
      // would be a change to the machine this compiler must learn first.
      if (!isRef(t.guard)) throw new Error(`funnel ${machine.id}, state ${name}: unsupported guard`);
      const guard = guards[t.guard.type];
      if (guard === undefined) throw new Error(`funnel ${machine.id}: no guard "${t.guard.type}"`);
      const targetName = t.target?.[0]?.key ?? name;
      const actions = t.actions.map((a): ProgramAction => {
        if (!isRef(a)) throw new Error(`funnel ${machine.id}, state ${name}: unsupported action`);
        if (a.type === 'reached') return { effect: null, params: a.params };
        const effect = FUNNEL_EFFECTS[a.type as FunnelEffectType] as EffectFn | undefined;
        if (effect === undefined) throw new Error(`funnel ${machine.id}: no effect "${a.type}"`);
        return { effect, params: a.params };
      });
      return { guard, guardParams: t.guard.params, target: stateIndex.get(targetName)!, actions };
    });
  });
  return { states: names, stateIndex, transitions };
}

const NONE: readonly ReachedParams[] = Object.freeze([]);

/**
 * The `{ context, event }` the guards and `reached` params read: one object,
 * refilled per call. Guards and params are pure and synchronous and keep
 * nothing of it (they are the machine's own implementations), so sharing it
 * saves two allocations per transition on the per-event path.
 */
const args: { context: FunnelContext; event: FunnelEvent } = { context: IDLE_CONTEXT, event: null as unknown as FunnelEvent };

/** One event through the table; null when no transition is enabled (nothing changes). */
export function runFunnelProgram(program: FunnelProgram, state: number, context: FunnelContext, event: FunnelEvent): ProgramResult | null {
  const candidates = program.transitions[state]!;
  args.context = context;
  args.event = event;
  for (let i = 0; i < candidates.length; i++) {
    const t = candidates[i]!;
    if (!t.guard(args, t.guardParams)) continue;
    let ctx = context;
    let reached = NONE;
    for (let j = 0; j < t.actions.length; j++) {
      const a = t.actions[j]!;
      if (a.effect !== null) {
        ctx = a.effect(ctx, event, a.params as never);
      } else {
        args.context = ctx;
        const params = typeof a.params === 'function'
          ? (a.params as (args: { context: FunnelContext }) => ReachedParams)(args)
          : (a.params as ReachedParams);
        reached = reached === NONE ? [params] : [...reached, params];
      }
    }
    return { state: t.target, context: ctx, reached };
  }
  return null;
}
