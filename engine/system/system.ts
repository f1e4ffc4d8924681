import { createSystemClock, type Clock } from '../clock/index.js';
import { createError, type FlowError } from '../errors/index.js';
import { shardOf } from './hash.js';
import { Shard } from './shard.js';
import { createMemoryStateStore, type StateStore } from './state-store.js';
import {
  TELL_ACCEPTED, TELL_MAILBOX_FULL, TELL_NO_CAPACITY, TELL_OVERLOADED, TELL_STOPPED,
  type ActorBehavior, type DeadLetter, type ShardStats, type TellResult,
} from './types.js';

/**
 * The actor system: virtual session actors keyed by (project, uid), spread
 * over shards by hash(uid). Routing is the only thing it does itself; every
 * piece of state lives in a shard.
 */

export const SYSTEM_DEFAULTS = Object.freeze({
  shards: 1,
  idleTimeoutMs: 30 * 60_000,
  tickMs: 1_000,
  maxLiveActors: 1_000_000,
  mailboxCapacity: 1_000,
  maxQueued: 100_000,
  receiveTimeoutMs: 30_000,
});

export interface ActorSystemOptions<S, M> {
  readonly behavior: ActorBehavior<S, M>;
  readonly store?: StateStore;
  readonly clock?: Clock;
  readonly shards?: number;
  readonly idleTimeoutMs?: number;
  readonly tickMs?: number;
  /** Cap on live actors, across all shards. */
  readonly maxLiveActors?: number;
  readonly mailboxCapacity?: number;
  /** Cap on queued messages, across all shards. */
  readonly maxQueued?: number;
  readonly receiveTimeoutMs?: number;
  readonly onDeadLetter?: (letter: DeadLetter<M>) => void;
  readonly onError?: (err: Error, context: string) => void;
}

export interface ActorSystem<M> {
  readonly shardCount: number;
  /** Delivers a message; the result says whether it was accepted or why not. */
  tell(projectId: number, uid: string, message: M): TellResult;
  /** Starts the passivation timers. */
  start(): void;
  /** Stops accepting messages (tell returns TELL_STOPPED). */
  stop(): void;
  /** Resolves when every mailbox is empty and no actor is busy. */
  drain(): Promise<void>;
  /** Saves every live actor's state to the store and unloads it. */
  passivateAll(): Promise<void>;
  /** Moves idle tracking to the clock's current time (tests, benchmarks). */
  tick(): void;
  stats(): ShardStats;
}

export function createActorSystem<S, M>(options: ActorSystemOptions<S, M>): ActorSystem<M> {
  const shardCount = options.shards ?? SYSTEM_DEFAULTS.shards;
  if (!Number.isInteger(shardCount) || shardCount < 1) throw new RangeError('shards must be a positive integer');
  const clock = options.clock ?? createSystemClock();
  const store = options.store ?? createMemoryStateStore();
  const perShard = (total: number): number => Math.max(1, Math.ceil(total / shardCount));
  const shards: Shard<S, M>[] = [];
  for (let i = 0; i < shardCount; i++) {
    shards.push(new Shard<S, M>({
      behavior: options.behavior,
      store,
      clock,
      idleTimeoutMs: options.idleTimeoutMs ?? SYSTEM_DEFAULTS.idleTimeoutMs,
      tickMs: options.tickMs ?? SYSTEM_DEFAULTS.tickMs,
      maxLiveActors: perShard(options.maxLiveActors ?? SYSTEM_DEFAULTS.maxLiveActors),
      mailboxCapacity: options.mailboxCapacity ?? SYSTEM_DEFAULTS.mailboxCapacity,
      maxQueued: perShard(options.maxQueued ?? SYSTEM_DEFAULTS.maxQueued),
      receiveTimeoutMs: options.receiveTimeoutMs ?? SYSTEM_DEFAULTS.receiveTimeoutMs,
      onDeadLetter: options.onDeadLetter ?? (() => {}),
      onError: options.onError ?? (() => {}),
    }));
  }
  const single = shardCount === 1 ? shards[0]! : null;

  return {
    shardCount,
    tell(projectId, uid, message) {
      const shard = single ?? shards[shardOf(uid, shardCount)]!;
      return shard.tell(projectId, uid, message);
    },
    start() { for (const s of shards) s.start(); },
    stop() { for (const s of shards) s.stop(); },
    async drain() { await Promise.all(shards.map((s) => s.drain())); },
    async passivateAll() { await Promise.all(shards.map((s) => s.passivateAll())); },
    tick() { for (const s of shards) s.tickNow(); },
    stats() {
      const total: ShardStats = { live: 0, queued: 0, busy: 0, created: 0, restored: 0, passivated: 0, processed: 0, failed: 0, rejected: 0 };
      for (const s of shards) {
        const st = s.snapshotStats();
        for (const k of Object.keys(total) as (keyof ShardStats)[]) total[k] += st[k];
      }
      return total;
    },
  };
}

/** Turns a refused tell into the error the gateway answers with (503 / back-pressure). */
export function tellError(result: TellResult): FlowError | null {
  switch (result) {
    case TELL_ACCEPTED: return null;
    case TELL_OVERLOADED: return createError('FLOW_ERR_OVERLOADED', { reason: 'event queue full', retryAfter: 1 });
    case TELL_MAILBOX_FULL: return createError('FLOW_ERR_OVERLOADED', { reason: 'too many events queued for this user', retryAfter: 1 });
    case TELL_NO_CAPACITY: return createError('FLOW_ERR_OVERLOADED', { reason: 'no actor capacity', retryAfter: 1 });
    case TELL_STOPPED: return createError('FLOW_ERR_SHUTTING_DOWN');
  }
}
