import { createIngestBehavior, type IngestBehavior, type IngestStats } from '../actors/index.js';
import { createSessionizer } from '../actors/session/index.js';
import { createChurn, createFunnels } from '../actors/machines/index.js';
import { createWebhooks, type WebhookStats, type Webhooks } from '../actors/actions/webhooks.js';
import { createEnrichers, registerEnricherTypes, withDefaultEnrichers, type EnrichmentStats } from '../actors/enrichers/index.js';
import { createStorage, registerSinkTypes, type SinkStats, type Storage, type StoreHandle } from '../sinks/index.js';
import type { Clock } from './clock/index.js';
import type { Config } from './config/index.js';
import { createEngine, type Engine } from './engine.js';
import { createRegistry, type Registry, type Topology } from './registry/index.js';
import { createError } from './errors/index.js';
import { wakeMessage, type ActorMessage, type IngestMessage, type PushFn } from './ingest/index.js';
import type { Logger } from './logger/index.js';
import type { ActorBehavior, ShardStats } from './system/index.js';

/**
 * The engine's core: enrichers, storage, webhook delivery, the session
 * actor's behaviour and the actor system, wired together — everything but
 * the gateway. In-process mode runs one core in the gateway's thread; with
 * `actors.threads` each worker thread runs one over the main thread's store
 * (engine/threads/).
 */

export interface CoreOptions {
  readonly logger: Logger;
  readonly clock: Clock;
  /** Sends a push to the user's open WebSocket connections (the gateway, maybe in another thread). */
  readonly push: PushFn;
  /** The store; default: connect per config. */
  readonly store?: StoreHandle;
  /** The actor behaviour; tests and benchmarks inject their own. Default: the session actor. */
  readonly behavior?: (storage: Storage) => ActorBehavior<unknown, IngestMessage>;
  /** Where actor state and reminders live (default config.dataDir). */
  readonly stateDir?: string;
  /** The users whose reminders this core delivers (a worker thread's). */
  readonly owns?: (uid: string) => boolean;
}

/** Every number the metrics show that the core keeps; a worker thread posts these to the main thread. */
export interface CoreStats {
  readonly system: ShardStats;
  readonly enrichers: EnrichmentStats;
  readonly ingest: IngestStats | null;
  readonly webhooks: WebhookStats;
  readonly webhooksPending: number;
  readonly remindersPending: number;
  readonly sinks: Record<string, SinkStats>;
}

export interface Core {
  readonly config: Config;
  readonly topology: Topology;
  readonly registry: Registry;
  readonly engine: Engine<ActorMessage>;
  readonly storage: Storage;
  readonly webhooks: Webhooks;
  /** The session actor's behaviour, when it is the default one. */
  readonly ingest: IngestBehavior | null;
  stats(): CoreStats;
}

/** The config with defaults filled in that depend on the registry (the default enrichers), and its topology. */
export function resolveTopology(loaded: Config): { config: Config; registry: Registry; topology: Topology } {
  const registry = createRegistry();
  registerSinkTypes(registry);
  registerEnricherTypes(registry);
  const config = withDefaultEnrichers(loaded);
  return { config, registry, topology: registry.resolve(config) };
}

export async function createCore(loaded: Config, o: CoreOptions): Promise<Core> {
  const { logger, clock } = o;
  const { config, registry, topology } = resolveTopology(loaded);
  const enrichers = await createEnrichers(topology);
  const storage = createStorage(config, topology, { clock, logger, ...(o.store === undefined ? {} : { store: o.store }) });
  let remind: ((projectId: number, uid: string, at: number) => void) | null = null;
  // A webhook that cannot be delivered is kept in dead_letters with the event it carried.
  const webhooks = createWebhooks({
    config: config.webhooks,
    clock,
    logger,
    onFailed(failure) {
      storage.pipeline.deadLetter({
        at: clock.now(), projectId: failure.delivery.projectId, source: 'webhook', code: 'FLOW_ERR_WEBHOOK_FAILED',
        reason: `${failure.delivery.url}: ${failure.reason}`, payload: failure.delivery.body,
      });
    },
  });
  const ingest = o.behavior === undefined ? createIngestBehavior({
    pipeline: storage.pipeline,
    enrichers,
    sessions: createSessionizer(config.sessions),
    funnels: createFunnels(config.funnels, { configPath: ['funnels'] }),
    churn: createChurn(config.churn, { configPath: ['churn'] }),
    ipAnonymization: config.enrichment.ipAnonymization,
    dropBots: config.enrichment.bots === 'drop',
    dedupIds: config.sessions.dedupIds,
    now: () => clock.now(),
    push: o.push,
    // The engine is made after the behaviour: bound once it exists.
    remind: (projectId, uid, at) => remind?.(projectId, uid, at),
    webhook: (delivery) => webhooks.send(delivery),
  }) : null;
  const behavior = o.behavior?.(storage) ?? (ingest as ActorBehavior<unknown, ActorMessage>);
  const engine = createEngine<unknown, ActorMessage>({
    config, logger, behavior, registry, topology, clock, wake: wakeMessage,
    ...(o.stateDir === undefined ? {} : { stateDir: o.stateDir }),
    ...(o.owns === undefined ? {} : { owns: o.owns }),
  });
  remind = (projectId, uid, at) => engine.reminders.set(projectId, uid, at);
  // An event the actor failed on still gets an answer, and is kept in dead_letters.
  engine.onDeadLetter((letter) => {
    if (letter.message.envelope === null) return; // a wake: logged by the engine, nothing to answer
    const error = createError('FLOW_ERR_ACTOR_FAILED', { reason: letter.error.message.slice(0, 200) }, letter.error);
    storage.pipeline.deadLetter({
      at: letter.at, projectId: letter.projectId, source: 'actor', code: error.code,
      reason: letter.error.message, payload: letter.message.envelope,
    });
    letter.message.responder?.respond(letter.message.envelope, { kind: 'error', error });
  });

  // Webhooks first: what cannot be delivered in time becomes a dead letter, which the sinks then flush.
  engine.shutdown.on('flush-sinks', 'webhooks', () => webhooks.close(Math.min(5_000, config.shutdown.timeoutMs / 3)));
  engine.shutdown.on('flush-sinks', 'storage', () => storage.pipeline.flush());

  return {
    config,
    topology,
    registry,
    engine,
    storage,
    webhooks,
    ingest,
    stats: () => ({
      system: engine.system.stats(),
      enrichers: enrichers.stats(),
      ingest: ingest === null ? null : { ...ingest.stats },
      webhooks: { ...webhooks.stats() },
      webhooksPending: webhooks.pending(),
      remindersPending: engine.reminders.pending(),
      sinks: storage.sinkStats(),
    }),
  };
}
