import { z } from 'zod';
import { deepFreeze } from '../../engine/config/load.js';
import { patternProblem } from '../../engine/keys/index.js';
import { eventActionSchema, MAX_ACTIONS, timedActionSchema } from './actions.js';
import { configErrorFrom } from './config-errors.js';
import { filterSchema } from './filters.js';

/**
 * Funnel configuration: the zod schema (strict: unknown keys are errors),
 * its defaults, and `parseFunnels`, which reports every problem at once with
 * its path and returns a frozen result. docs/funnels.md is the reference.
 */

export const FUNNEL_MODES = Object.freeze(['strict', 'ordered', 'any'] as const);
export type FunnelMode = (typeof FUNNEL_MODES)[number];

export const FUNNEL_DEFAULTS = Object.freeze({
  mode: 'ordered' as FunnelMode,
  /** Conversion window from the first step: one day. */
  windowMs: 86_400_000,
});

export const FUNNEL_LIMITS = Object.freeze({
  /** Steps are tracked in a 31-bit mask (`any` mode). */
  maxSteps: 16,
  maxExclusions: 16,
  maxFiltersPerStep: 32,
  maxActionsPerStep: MAX_ACTIONS,
  maxWindowMs: 90 * 86_400_000,
});

const segment = z.string().regex(/^[a-z0-9_-]{1,64}$/, 'must be 1-64 characters of [a-z0-9_-]');
const windowMs = z.number().int().positive().max(FUNNEL_LIMITS.maxWindowMs);

const patternSchema = z.string().superRefine((pattern, ctx) => {
  const problem = patternProblem(pattern);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: `invalid key pattern "${pattern}": ${problem}` });
});

/** What reaching a step asks the actor to do. Data only; the actor executes it. */
export const funnelActionSchema = eventActionSchema;

export const funnelStepSchema = z.strictObject({
  /** Shown in derived events; defaults to `step_{index}`. */
  name: segment.optional(),
  pattern: patternSchema,
  filters: z.array(filterSchema).max(FUNNEL_LIMITS.maxFiltersPerStep).default([]),
  /** Must be reached within this long after the previous step. */
  withinMs: windowMs.optional(),
  actions: z.array(funnelActionSchema).max(FUNNEL_LIMITS.maxActionsPerStep).default([]),
});

/**
 * An attempt that stops making progress: no further step within `afterMs` of
 * the last one reached (server time) — "cart reached, no checkout within
 * 10 minutes". Fires once per step reached, from step `fromStep` on.
 */
export const funnelAbandonSchema = z.strictObject({
  afterMs: z.number().int().min(1_000).max(FUNNEL_LIMITS.maxWindowMs),
  /** The first step (index) whose reaching arms the timer (default 0). */
  fromStep: z.number().int().min(0).max(FUNNEL_LIMITS.maxSteps - 1).default(0),
  actions: z.array(timedActionSchema).max(MAX_ACTIONS).default([]),
});

export const funnelExclusionSchema = z.strictObject({
  pattern: patternSchema,
  filters: z.array(filterSchema).max(FUNNEL_LIMITS.maxFiltersPerStep).default([]),
});

export const funnelSchema = z.strictObject({
  name: segment,
  mode: z.enum(FUNNEL_MODES).default(FUNNEL_DEFAULTS.mode),
  /** The whole funnel must be completed within this long after its first step. */
  windowMs: windowMs.default(FUNNEL_DEFAULTS.windowMs),
  steps: z.array(funnelStepSchema).min(1).max(FUNNEL_LIMITS.maxSteps),
  /** An event matching one of these aborts an attempt in progress. */
  exclusions: z.array(funnelExclusionSchema).max(FUNNEL_LIMITS.maxExclusions).default([]),
  /** Report attempts that stall (derived `in.sys.abandon.{name}` events and actions). */
  abandon: funnelAbandonSchema.optional(),
}).superRefine((funnel, ctx) => {
  if (funnel.abandon !== undefined && funnel.abandon.fromStep >= funnel.steps.length - 1) {
    ctx.addIssue({ code: 'custom', path: ['abandon', 'fromStep'], message: `must be below the last step (${funnel.steps.length - 1}): an attempt that reached the last step converted` });
  }
  const first = funnel.steps[0];
  // In `any` mode the first step reached may be any step, so every step may
  // carry a window; in the ordered modes step 0 has no previous step.
  if (funnel.mode !== 'any' && first?.withinMs !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['steps', 0, 'withinMs'], message: 'the first step has no previous step to be within' });
  }
  const seen = new Set<string>();
  funnel.steps.forEach((step, i) => {
    if (step.name === undefined) return;
    if (seen.has(step.name)) ctx.addIssue({ code: 'custom', path: ['steps', i, 'name'], message: `duplicate step name "${step.name}"` });
    seen.add(step.name);
  });
});

export const funnelsSchema = z.array(funnelSchema).superRefine((funnels, ctx) => {
  const seen = new Set<string>();
  funnels.forEach((funnel, i) => {
    if (seen.has(funnel.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate funnel name "${funnel.name}"` });
    seen.add(funnel.name);
  });
});

export type FunnelConfigInput = z.input<typeof funnelSchema>;
export type FunnelConfig = z.output<typeof funnelSchema>;
export type FunnelStepConfig = z.output<typeof funnelStepSchema>;
export type FunnelAction = z.output<typeof funnelActionSchema>;
export type FunnelAbandonConfig = z.output<typeof funnelAbandonSchema>;

/**
 * Validates funnel configs; throws ConfigError (FLOW_ERR_CONFIG_INVALID)
 * listing every problem with its path, prefixed by `path` when given.
 */
export function parseFunnels(raw: unknown, path: readonly PropertyKey[] = []): readonly FunnelConfig[] {
  const result = funnelsSchema.safeParse(raw);
  if (!result.success) throw configErrorFrom(result.error, path);
  return deepFreeze(result.data);
}
