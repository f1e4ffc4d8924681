import { z } from 'zod';

/**
 * What a machine can ask the actor to do, as data (the actor carries it out):
 * answer the event that triggered it (`reply`, only where there is one),
 * notify the user's open WebSocket connections (`push`), or POST the derived
 * event to a URL (`webhook`, delivered with retries by actors/actions).
 */

export const replyActionSchema = z.strictObject({ type: z.literal('reply'), data: z.record(z.string(), z.unknown()) });
export const pushActionSchema = z.strictObject({ type: z.literal('push'), params: z.record(z.string(), z.unknown()) });
export const webhookActionSchema = z.strictObject({ type: z.literal('webhook'), url: z.url({ protocol: /^https?$/ }) });

/** Actions of a step reached by a client's event: it can also be answered. */
export const eventActionSchema = z.discriminatedUnion('type', [replyActionSchema, pushActionSchema, webhookActionSchema]);
/** Actions of something that happens on a timer (abandonment, churn): no event to answer. */
export const timedActionSchema = z.discriminatedUnion('type', [pushActionSchema, webhookActionSchema]);

export type EventAction = z.output<typeof eventActionSchema>;
export type TimedAction = z.output<typeof timedActionSchema>;

export const MAX_ACTIONS = 8;
