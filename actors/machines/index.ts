/**
 * actors/machines — the funnel and churn logic the session actor runs per
 * event, as a pure library: no timers, no I/O, no started xstate actors
 * (time-based rules — abandonment, churn crossing — are answered with the
 * time they fall due; the actor sets a reminder for it).
 *
 * Funnels are xstate v5 machines generated from config (declarative,
 * inspectable with `toJSON()`); each user's progress is a small immutable
 * state (a slot per funnel) advanced by a pure step, using a transition table
 * compiled from the machine (xstate's own `transition()` is available as the
 * reference engine), and stored as a JSON-safe record by funnel name.
 * Churn is a decayed activity index and a logistic score.
 * Promises: same state + same event → same result; persist(state) round-trips
 * through JSON and restore; events that hit no funnel pattern cost one Map lookup.
 * User docs: docs/funnels.md.
 */
export { createFunnels } from './funnels.js';
export type { Funnels, FunnelsOptions, FunnelsState, FunnelsStep, FunnelProgress, PersistedFunnels, FunnelReached, FunnelAbandoned } from './funnels.js';
export { eventActionSchema, timedActionSchema, MAX_ACTIONS } from './actions.js';
export type { EventAction, TimedAction } from './actions.js';
export {
  funnelSchema, funnelsSchema, funnelStepSchema, funnelExclusionSchema, funnelActionSchema, funnelAbandonSchema, parseFunnels,
  FUNNEL_DEFAULTS, FUNNEL_LIMITS, FUNNEL_MODES,
} from './funnel-config.js';
export type { FunnelConfig, FunnelConfigInput, FunnelStepConfig, FunnelAction, FunnelAbandonConfig, FunnelMode } from './funnel-config.js';
export { createFunnelMachine, IDLE_STATE, FUNNEL_EVENT, reachedState } from './funnel-machine.js';
export type { FunnelMachine, FunnelContext, FunnelEvent } from './funnel-machine.js';
export { filterSchema, compileFilters, FILTER_ENVELOPE_FIELDS } from './filters.js';
export type { FilterConfig } from './filters.js';
export { createChurn, churnSchema, parseChurnConfig, CHURN_DEFAULTS, CHURN_HORIZON_MS } from './churn.js';
export type { Churn, ChurnConfig, ChurnConfigInput, ChurnState, ChurnUpdate, SessionSummary } from './churn.js';
