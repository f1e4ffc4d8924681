import { join } from 'node:path';
import { createSystemClock, type Clock } from './clock/index.js';
import type { Config } from './config/index.js';
import { createShutdown, type Shutdown } from './lifecycle/index.js';
import type { Logger } from './logger/index.js';
import { createRegistry, type Registry, type Topology } from './registry/index.js';
import {
  TELL_ACCEPTED, TELL_STOPPED, createActorSystem, createLmdbStateStore, createMemoryStateStore, createReminders,
  type ActorBehavior, type ActorSystem, type DeadLetter, type Reminders, type StateStore,
} from './system/index.js';

/**
 * The engine: config, topology, actor system and shutdown order wired
 * together. Gateways and sinks attach to it; it owns the order in which they
 * stop.
 */

export interface EngineOptions<S, M> {
  readonly config: Config;
  readonly logger: Logger;
  readonly behavior: ActorBehavior<S, M>;
  readonly registry?: Registry;
  /** Already resolved from `registry` (the caller needed it first); resolved here when absent. */
  readonly topology?: Topology;
  readonly clock?: Clock;
  /** Overrides `actors.stateStore` (tests pass a memory store they can inspect). */
  readonly store?: StateStore;
  /** The message a due reminder sends its actor. */
  readonly wake?: (at: number) => M;
  /** Where `state` and `reminders` live; default `config.dataDir`. Worker threads share the main one. */
  readonly stateDir?: string;
  /** Only these users' reminders are this engine's (a worker thread's users); default all. */
  readonly owns?: (uid: string) => boolean;
}

export interface Engine<M> {
  readonly config: Config;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly topology: Topology;
  readonly system: ActorSystem<M>;
  readonly shutdown: Shutdown;
  /** Actors' wake-up times (kept where `actors.stateStore` keeps state); due ones are sent the `wake` message. */
  readonly reminders: Reminders;
  /** Every message an actor failed on, with the error. */
  onDeadLetter(listener: (letter: DeadLetter<M>) => void): void;
  start(): void;
}

/** Due reminders delivered per tick at most; the rest wait for the next tick. */
const WAKES_PER_TICK = 10_000;
/** A wake the actor system refused (overloaded) is tried again this much later. */
const WAKE_RETRY_MS = 1_000;

/** Failures are logged at most this often; the rest are counted into the next line. */
const DEAD_LETTER_LOG_INTERVAL_MS = 1_000;

export function createEngine<S, M>(options: EngineOptions<S, M>): Engine<M> {
  const { config, logger } = options;
  const clock = options.clock ?? createSystemClock();
  const registry = options.registry ?? createRegistry();
  const topology = options.topology ?? registry.resolve(config);
  for (const warning of topology.warnings) logger.warn({ warning }, 'topology');

  const listeners: ((letter: DeadLetter<M>) => void)[] = [];
  let unlogged = 0;
  let lastLog = -Infinity;
  const { stateStore: storeKind, threads: _threads, ...actorOptions } = config.actors;
  const stateDir = options.stateDir ?? config.dataDir;
  const store = options.store ?? createConfiguredStateStore(config, stateDir, logger);
  const storeName = options.store === undefined ? storeKind : 'injected';

  const system = createActorSystem<S, M>({
    behavior: options.behavior,
    store,
    clock,
    ...actorOptions,
    onDeadLetter(letter) {
      unlogged++;
      if (letter.at - lastLog >= DEAD_LETTER_LOG_INTERVAL_MS) {
        logger.warn({ projectId: letter.projectId, uid: letter.uid, err: letter.error, failures: unlogged }, 'actor failed on an event; sent to dead letters');
        unlogged = 0;
        lastLog = letter.at;
      }
      for (const l of listeners) l(letter);
    },
    onError(err, context) {
      logger.error({ err, context }, 'actor system error');
    },
  });

  const reminders = createReminders({
    path: options.store === undefined && storeKind === 'disk' ? join(stateDir, 'reminders') : undefined,
    now: () => clock.now(),
    ...(options.owns === undefined ? {} : { owns: options.owns }),
    onError(err) { logger.error({ err }, 'reminder store write failed'); },
  });
  const wake = options.wake;
  function deliverDue(): void {
    if (wake === undefined) return;
    const now = clock.now();
    for (const r of reminders.takeDue(now, WAKES_PER_TICK)) {
      const result = system.tell(r.projectId, r.uid, wake(r.at));
      if (result !== TELL_ACCEPTED && result !== TELL_STOPPED) reminders.set(r.projectId, r.uid, now + WAKE_RETRY_MS);
    }
  }
  let wakeTimer: { cancel(): void } | null = null;

  const shutdown = createShutdown({ logger, timeoutMs: config.shutdown.timeoutMs });
  shutdown.on('drain', 'actor mailboxes', async () => {
    wakeTimer?.cancel();
    system.stop();
    await system.drain();
  });
  shutdown.on('passivate', 'actor state', async () => {
    await system.passivateAll();
    // One line per run saying what became of users' state; a restart's `restored` shows the disk store at work.
    const { created, restored, passivated } = system.stats();
    logger.info({ stateStore: storeName, created, restored, passivated }, 'actor state saved');
  });
  shutdown.on('close', 'state store', async () => {
    await store.close?.();
    await reminders.close();
  });

  return {
    config,
    logger,
    clock,
    topology,
    system,
    shutdown,
    reminders,
    onDeadLetter(listener) { listeners.push(listener); },
    start() {
      system.start();
      if (wake !== undefined && wakeTimer === null) wakeTimer = clock.setInterval(deliverDue, config.actors.tickMs);
      logger.info({ shards: system.shardCount, stateStore: storeName, enrichers: topology.enrichers.length, handlers: topology.handlers.length, sinks: topology.sinks.length }, 'engine started');
    },
  };
}

/** `actors.stateStore`: snapshots on local disk under the data directory (the default), or in memory. */
function createConfiguredStateStore(config: Config, stateDir: string, logger: Logger): StateStore {
  if (config.actors.stateStore === 'memory') return createMemoryStateStore();
  const path = join(stateDir, 'state');
  return createLmdbStateStore({
    path,
    // The one-time key rewrite of a store from an older build (engine/system/lmdb-state-store.ts).
    onMigration: (p) => logger.info({ path, moved: p.moved }, p.done ? 'state store keys rewritten' : 'rewriting state store keys'),
  });
}
