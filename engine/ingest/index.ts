/**
 * engine/ingest — the contract between the gateway and the session actor:
 * what a message to an actor carries, and how the actor answers the client.
 * The gateway implements Responder for each wire (HTTP, WebSocket call,
 * batch item); the actor calls `respond` exactly once per message that has a
 * responder (notifications have none).
 */
import type { FlowError } from '../errors/index.js';
import type { Envelope } from '../envelope/index.js';

export type Reply =
  /** `{id, key, uid}` plus `data` merged in. */
  | { readonly kind: 'json'; readonly data?: Readonly<Record<string, unknown>> }
  /** A 1x1 transparent GIF (HTTP); over WebSocket the JSON default. */
  | { readonly kind: 'pixel' }
  /** 302 to `location`, only if its host is on the redirect allowlist. */
  | { readonly kind: 'redirect'; readonly location: string }
  | { readonly kind: 'error'; readonly error: FlowError };

export interface Responder {
  respond(envelope: Envelope, reply: Reply): void;
}

export interface IngestMessage {
  readonly envelope: Envelope;
  readonly responder: Responder | null;
}

/** A reminder came due (engine/system/reminders.ts): the actor does what its timers ask. */
export interface WakeMessage {
  readonly envelope: null;
  readonly responder: null;
  /** The reminder's time. */
  readonly wakeAt: number;
}

/** What the session actor receives: a client's event, or a wake-up. */
export type ActorMessage = IngestMessage | WakeMessage;

export function wakeMessage(at: number): WakeMessage {
  return { envelope: null, responder: null, wakeAt: at };
}

/** The reply when no handler answers. The gateway renders it per wire (JSON, or a pixel for .gif). */
export const DEFAULT_REPLY: Reply = Object.freeze({ kind: 'json' });

/** Sends a server-initiated message to every open connection of a user; returns how many got it. */
export type PushFn = (projectId: number, uid: string, params: unknown) => number;
