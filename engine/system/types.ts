/** The contracts between the actor system and what runs inside it. */

/** What a behaviour sees of the actor it runs in. */
export interface ActorRef {
  readonly projectId: number;
  readonly uid: string;
}

/**
 * A session actor's logic. State is treated as immutable by the system: the
 * value `receive` returns becomes the actor's state, and if `receive` throws
 * (or its promise rejects) the actor keeps the state it had — that is the
 * "restart from the last good state". Behaviours that mutate state in place
 * give that guarantee up.
 */
export interface ActorBehavior<S, M> {
  /** State of a user never seen before (no snapshot in the store). */
  initial(actor: ActorRef): S;
  /** Handles one message. Return the next state, or a Promise of it for async work. */
  receive(state: S, message: M, actor: ActorRef): S | Promise<S>;
  /** What to save on passivation. Default: the state itself. */
  snapshot?(state: S, actor: ActorRef): unknown;
  /** Rebuilds state from a saved snapshot. Default: the snapshot itself. */
  restore?(snapshot: unknown, actor: ActorRef): S;
}

export interface DeadLetter<M> {
  readonly projectId: number;
  readonly uid: string;
  readonly message: M;
  readonly error: Error;
  readonly at: number;
}

/** Result of `tell`. Numbers, not objects: this is on the per-event path. */
export const TELL_ACCEPTED = 0;
/** The shard's queued-message budget is spent. */
export const TELL_OVERLOADED = 1;
/** This actor's mailbox is full (one user flooding). */
export const TELL_MAILBOX_FULL = 2;
/** The live-actor cap is reached and every live actor is busy. */
export const TELL_NO_CAPACITY = 3;
/** The system is shutting down and accepts nothing new. */
export const TELL_STOPPED = 4;
export type TellResult = 0 | 1 | 2 | 3 | 4;

export interface ShardStats {
  live: number;
  queued: number;
  busy: number;
  created: number;
  restored: number;
  passivated: number;
  processed: number;
  failed: number;
  rejected: number;
}
