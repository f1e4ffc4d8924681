import { mkdirSync } from 'node:fs';
import { createIngestBehavior } from '../actors/index.js';
import { createSessionizer } from '../actors/session/index.js';
import { createChurn, createFunnels } from '../actors/machines/index.js';
import { createWebhooks } from '../actors/actions/webhooks.js';
import { createEnrichers, registerEnricherTypes, withDefaultEnrichers } from '../actors/enrichers/index.js';
import { createGateway, type Gateway } from '../gateway/index.js';
import { createQueryService } from '../query/index.js';
import { createStorage, registerSinkTypes, type Storage } from '../sinks/index.js';
import { loadConfig, ConfigError, type Config } from './config/index.js';
import { createSystemClock } from './clock/index.js';
import { createEngine, type Engine } from './engine.js';
import { createRegistry } from './registry/index.js';
import { createError } from './errors/index.js';
import { wakeMessage, type ActorMessage, type IngestMessage } from './ingest/index.js';
import { createLogger, type Logger } from './logger/index.js';
import type { ActorBehavior } from './system/index.js';

/**
 * `flowstat start`: load and validate the config (refusing to start, before
 * any port opens, if it is wrong), build the engine and the gateway, listen,
 * and run the ordered shutdown on SIGTERM / SIGINT.
 */

export interface Running {
  readonly engine: Engine<ActorMessage>;
  readonly gateway: Gateway;
  readonly storage: Storage;
  readonly port: number;
  /** Runs the ordered shutdown; resolves true if every step succeeded. */
  stop(reason: string): Promise<boolean>;
}

export interface StartOptions {
  readonly logger?: Logger;
  /** The actor behaviour; tests inject slow or failing ones. Default: the session actor. */
  readonly behavior?: (storage: Storage) => ActorBehavior<unknown, IngestMessage>;
}

export async function startEngine(loaded: Config, options: StartOptions = {}): Promise<Running> {
  let config = loaded;
  const logger = options.logger ?? createLogger({ level: config.log.level });
  mkdirSync(config.dataDir, { recursive: true });
  const registry = createRegistry();
  registerSinkTypes(registry);
  registerEnricherTypes(registry);
  config = withDefaultEnrichers(config);
  const topology = registry.resolve(config);
  const clock = createSystemClock();
  const enrichers = await createEnrichers(topology);
  const storage = createStorage(config, topology, { clock, logger });
  let pushToUser: ((projectId: number, uid: string, params: unknown) => number) | null = null;
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
  const ingest = options.behavior === undefined ? createIngestBehavior({
    pipeline: storage.pipeline,
    enrichers,
    sessions: createSessionizer(config.sessions),
    funnels: createFunnels(config.funnels, { configPath: ['funnels'] }),
    churn: createChurn(config.churn, { configPath: ['churn'] }),
    ipAnonymization: config.enrichment.ipAnonymization,
    dropBots: config.enrichment.bots === 'drop',
    dedupIds: config.sessions.dedupIds,
    now: () => clock.now(),
    // The gateway and the engine are made after the behavior: bound once they exist.
    push: (projectId, uid, params) => pushToUser?.(projectId, uid, params) ?? 0,
    remind: (projectId, uid, at) => remind?.(projectId, uid, at),
    webhook: (delivery) => webhooks.send(delivery),
  }) : null;
  const behavior = options.behavior?.(storage) ?? (ingest as ActorBehavior<unknown, ActorMessage>);
  const engine = createEngine<unknown, ActorMessage>({ config, logger, behavior, registry, topology, clock, wake: wakeMessage });
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

  // What a previous run left in the write-ahead log goes out before anything new comes in.
  storage.start();
  // Connect (and migrate) now, so a misconfigured store shows up in the first log lines; events are kept meanwhile.
  storage.store.get().catch(() => { /* logged by the store handle; retried on use */ });

  const query = createQueryService({ store: () => storage.store.get(), defaultProjectId: config.defaultProjectId, funnels: config.funnels });
  const gateway = createGateway(engine, { pipeline: storage.pipeline, saturated: () => storage.pipeline.saturated(), query });
  pushToUser = gateway.push;
  let storeReachable = false;
  const probe = (): void => {
    void storage.store.reachable().then((ok) => {
      // Back after an outage: deliver the spool now rather than at the end of a long backoff.
      if (ok && !storeReachable) storage.pipeline.retryNow();
      storeReachable = ok;
    });
  };
  probe();
  const prober = clock.setInterval(probe, 1_000);
  gateway.addReadinessCheck('store', () => ({ ok: storeReachable, detail: { kind: storage.store.kind, reachable: storeReachable } }));
  gateway.addReadinessCheck('sinks', () => {
    const stats = storage.sinkStats();
    return { ok: !storage.pipeline.saturated(), detail: stats };
  });
  gateway.metrics.addLabeledCounter('flowstat_enricher_runs_total', 'Enricher runs', 'enricher', () => enrichers.stats().runs);
  gateway.metrics.addLabeledCounter('flowstat_enricher_failures_total', 'Enricher runs that threw or rejected (the event went on without)', 'enricher', () => enrichers.stats().failures);
  gateway.metrics.addLabeledCounter('flowstat_enricher_timeouts_total', 'Enricher runs that overran their timeout (the event went on without)', 'enricher', () => enrichers.stats().timeouts);
  gateway.metrics.addLabeledCounter('flowstat_enricher_reused_total', 'Events given a pure enricher\'s patch from their session\'s memo (inputs unchanged) instead of a run', 'enricher', () => enrichers.stats().reused);
  gateway.metrics.addLabeledCounter('flowstat_enricher_stray_total', 'Patch columns an enricher is not allowed to write (dropped)', 'enricher', () => enrichers.stats().stray);
  if (ingest !== null) {
    const st = ingest.stats;
    gateway.metrics.addLabeledCounter('flowstat_sessions_total', 'Sessions started and ended (an end written again after the user came back is counted again)', 'event', () => ({ started: st.sessionsStarted, ended: st.sessionsEnded }));
    gateway.metrics.addLabeledCounter('flowstat_handler_events_total', 'Funnel steps reached, funnel attempts abandoned and churn thresholds crossed', 'event', () => ({ funnel_step: st.funnelSteps, funnel_abandoned: st.funnelAbandons, churn_crossed: st.churnCrossings }));
    gateway.metrics.addLabeledCounter('flowstat_pushes_total', 'Push actions carried out, and the connections they reached', 'counted', () => ({ actions: st.pushes, deliveries: st.pushDeliveries }));
    gateway.metrics.addLabeledCounter('flowstat_actor_wakes_total', 'Reminders that woke an actor (funnel abandonment, churn crossing)', 'by', () => ({ reminder: st.wakes }));
    gateway.metrics.addLabeledCounter('flowstat_duplicate_events_total', 'Repeats of a recent client event id: acknowledged, not processed again', 'by', () => ({ client_id: st.duplicates }));
  }
  gateway.metrics.addLabeledCounter('flowstat_webhooks_total', 'Webhook actions: accepted, delivered, attempts retried, given up (dead-lettered)', 'result', () => {
    const w = webhooks.stats();
    return { accepted: w.accepted, delivered: w.delivered, retried: w.retried, failed: w.failed };
  });
  gateway.metrics.addGauge('flowstat_webhooks_pending', 'Webhook deliveries waiting or in flight', () => webhooks.pending());
  gateway.metrics.addGauge('flowstat_reminders_pending', 'Actor reminders due within the next window, held in memory', () => engine.reminders.pending());
  gateway.metrics.addGauge('flowstat_sink_queued_records', 'Records accepted by sinks, not yet being written', () => sumStat(storage, 'queued'));
  gateway.metrics.addGauge('flowstat_sink_inflight_records', 'Records in writes running now', () => sumStat(storage, 'inFlight'));
  gateway.metrics.addGauge('flowstat_sink_spooled_records', 'Records parked on disk until their destination is back', () => sumStat(storage, 'spooled'));
  gateway.metrics.addGauge('flowstat_sink_stored_records', 'Records stored since start', () => sumStat(storage, 'stored'));
  gateway.metrics.addGauge('flowstat_sink_dead_lettered_records', 'Records sent to dead_letters since start', () => sumStat(storage, 'deadLettered'));

  // Webhooks first: what cannot be delivered in time becomes a dead letter, which the sinks then flush.
  engine.shutdown.on('flush-sinks', 'webhooks', () => webhooks.close(Math.min(5_000, config.shutdown.timeoutMs / 3)));
  engine.shutdown.on('flush-sinks', 'storage', () => storage.pipeline.flush());
  engine.shutdown.on('close', 'storage', async () => {
    prober.cancel();
    await storage.close();
  });

  const port = await gateway.listen();
  engine.start();
  logger.info({ port, dataDir: config.dataDir, store: storage.store.kind, durability: config.storage.durability }, 'flowstat listening');
  return {
    engine,
    gateway,
    storage,
    port,
    async stop(reason) {
      const result = await engine.shutdown.run(reason);
      return result.ok;
    },
  };
}

function sumStat(storage: Storage, key: 'queued' | 'inFlight' | 'spooled' | 'stored' | 'deadLettered'): number {
  let n = 0;
  for (const st of Object.values(storage.sinkStats())) n += st[key];
  return n;
}

/** Runs until a signal; resolves with the process exit code. */
export async function runFromEnvironment(): Promise<number> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`flowstat: refusing to start — ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  // Listen for the signal before starting: one that arrives during start-up
  // (a fast Ctrl-C) is honoured once the engine is up, never lost.
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  const running = await startEngine(config);
  const ok = await running.stop(await signal);
  return ok ? 0 : 1;
}
