import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createGateway, type Gateway } from '../gateway/index.js';
import { bump } from '../gateway/metrics.js';
import { createQueryService } from '../query/index.js';
import { createStorage, type Storage } from '../sinks/index.js';
import { adoptSpool } from '../sinks/spool/index.js';
import { loadConfig, ConfigError, type Config } from './config/index.js';
import { createSystemClock } from './clock/index.js';
import { createCore, resolveTopology, type CoreStats } from './core.js';
import type { Engine } from './engine.js';
import { createShutdown } from './lifecycle/index.js';
import type { ActorMessage, IngestMessage } from './ingest/index.js';
import { createLogger, type Logger } from './logger/index.js';
import type { ActorBehavior, ShardStats } from './system/index.js';
import { createThreadPool } from './threads/pool.js';
import type { LoopTime } from './threads/protocol.js';
import { shardDataDir } from './threads/protocol.js';
import type { SinkStats } from '../sinks/index.js';

/**
 * `flowstat start`: load and validate the config (refusing to start, before
 * any port opens, if it is wrong), build the engine and the gateway, listen,
 * and run the ordered shutdown on SIGTERM / SIGINT.
 *
 * With `actors.threads: 0` (the default) the session actors run in this
 * thread beside the gateway. With N >= 1 they run on N worker threads
 * (engine/threads/), each with its own enrichers, write-ahead log and sinks;
 * this thread keeps the gateway, the query API and the store.
 */

/** What the gateway and the callers of startEngine see of the engine, whichever the mode. */
export type EngineView = Pick<Engine<ActorMessage>, 'config' | 'logger' | 'clock' | 'system' | 'shutdown'>;

export interface Running {
  readonly engine: EngineView;
  readonly gateway: Gateway;
  /** This thread's storage: every event's with no threads; the gateway's own records (cookie-sync, refusals) with threads. */
  readonly storage: Storage;
  readonly port: number;
  /** Sinks of every thread, summed by sink name (worker threads' numbers are up to 250 ms old). */
  sinkStats(): Record<string, SinkStats>;
  /** The same, with every worker thread asked now. */
  freshSinkStats(): Promise<Record<string, SinkStats>>;
  /** Event loop time of this thread and of each worker thread (benchmarks: how busy each one is). */
  loops(): { main: LoopTime; threads: readonly LoopTime[] };
  /** Runs the ordered shutdown; resolves true if every step succeeded. */
  stop(reason: string): Promise<boolean>;
}

export interface StartOptions {
  readonly logger?: Logger;
  /** The actor behavior; tests inject slow or failing ones. Default: the session actor. Not with threads. */
  readonly behavior?: (storage: Storage) => ActorBehavior<unknown, IngestMessage>;
}

export async function startEngine(loaded: Config, options: StartOptions = {}): Promise<Running> {
  const logger = options.logger ?? createLogger({ level: loaded.log.level });
  mkdirSync(loaded.dataDir, { recursive: true });
  const clock = createSystemClock();
  let pushToUser: ((projectId: number, uid: string, params: unknown) => number) | null = null;
  // The gateway is made after the threads: bound once it exists.
  let gatewayCounters: Gateway['metrics']['counters'] | null = null;
  const push = (projectId: number, uid: string, params: unknown): number => pushToUser?.(projectId, uid, params) ?? 0;
  const threads = loaded.actors.threads;
  if (threads > 0 && options.behavior !== undefined) throw new Error('an injected behavior runs in this thread: start with actors.threads 0');

  let view: EngineView;
  let storage: Storage;
  let config: Config;
  let stats: () => readonly CoreStats[];
  let saturated: () => boolean;
  let pushDeliveries: () => number;
  let refresh: () => Promise<unknown> = () => Promise.resolve();
  let threadLoops: () => readonly LoopTime[] = () => [];
  let startActors = (): void => {};
  // Before any sink opens its spool: what the spools of threads this run lacks hold joins the main thread's.
  adoptOtherThreadSpools(loaded, threads, logger);
  if (threads === 0) {
    const core = await createCore(loaded, { logger, clock, push, ...(options.behavior === undefined ? {} : { behavior: options.behavior }) });
    ({ config, storage } = core);
    view = core.engine;
    startActors = () => core.engine.start();
    stats = () => [core.stats()];
    saturated = () => core.storage.pipeline.saturated();
    pushDeliveries = () => core.ingest?.stats.pushDeliveries ?? 0;
    // What a previous run left in the write-ahead log goes out before anything new comes in.
    storage.start();
    // A run with worker threads before this one left a log per thread.
    replayOtherThreadLogs(config, 0, storage, logger);
  } else {
    const resolved = resolveTopology(loaded);
    config = resolved.config;
    storage = createStorage(config, resolved.topology, { clock, logger });
    storage.start();
    replayOtherThreadLogs(config, threads, storage, logger);
    const pool = createThreadPool({
      config: loaded, threads, logger, store: storage.store, push,
      onRefused: (channel, code) => {
        const c = gatewayCounters;
        if (c === null) return;
        bump(c.accepted, channel, -1);
        bump(c.rejected, code);
      },
    });
    const shutdown = createShutdown({ logger, timeoutMs: config.shutdown.timeoutMs });
    view = { config, logger, clock, system: pool.system, shutdown };
    stats = pool.stats;
    saturated = () => storage.pipeline.saturated() || pool.saturated();
    pushDeliveries = pool.pushDeliveries;
    refresh = pool.refreshStats;
    threadLoops = pool.loops;
    shutdown.on('drain', 'worker threads', async () => {
      if (!(await pool.stop('engine shutdown'))) throw new Error('a worker thread did not stop cleanly');
    });
    shutdown.on('flush-sinks', 'storage', () => storage.pipeline.flush());
    // The threads start before the gateway listens: each replays its write-ahead log first.
    await pool.start();
  }
  const { shutdown } = view;

  // Connect (and migrate) now, so a misconfigured store shows up in the first log lines; events are kept meanwhile.
  storage.store.get().catch(() => { /* logged by the store handle; retried on use */ });

  const query = createQueryService({ store: () => storage.store.get(), defaultProjectId: config.defaultProjectId, funnels: config.funnels });
  const gateway = createGateway(view, { pipeline: storage.pipeline, saturated, query });
  pushToUser = gateway.push;
  gatewayCounters = gateway.metrics.counters;
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
  // Without threads, the one core's sinks are this storage's.
  const sinkStats = (): Record<string, SinkStats> => (threads === 0 ? storage.sinkStats() : sumSinkStats([storage.sinkStats(), ...stats().map((s) => s.sinks)]));
  gateway.addReadinessCheck('store', () => ({ ok: storeReachable, detail: { kind: storage.store.kind, reachable: storeReachable } }));
  gateway.addReadinessCheck('sinks', () => ({ ok: !saturated(), detail: sinkStats() }));
  registerCoreMetrics(gateway, () => sumCoreStats(stats()), sinkStats, pushDeliveries);

  shutdown.on('close', 'storage', async () => {
    prober.cancel();
    await storage.close();
  });

  const port = await gateway.listen();
  startActors();
  logger.info({ port, dataDir: config.dataDir, store: storage.store.kind, durability: config.storage.durability, threads }, 'flowstat listening');
  return {
    engine: view,
    gateway,
    storage,
    port,
    sinkStats,
    loops() {
      const { active, idle } = performance.eventLoopUtilization();
      return { main: { active, idle }, threads: threadLoops() };
    },
    async freshSinkStats() {
      await refresh();
      return sinkStats();
    },
    async stop(reason) {
      const result = await shutdown.run(reason);
      return result.ok;
    },
  };
}

/**
 * Write-ahead logs of threads this run does not have (an earlier run had
 * more, or this one has none): replayed into this thread's sinks, so a
 * smaller `actors.threads` loses nothing that was acknowledged.
 */
function replayOtherThreadLogs(config: Config, threads: number, storage: Storage, logger: Logger): void {
  for (const { index, dir } of missingThreadDirs(config, threads)) {
    const wal = join(dir, 'wal');
    if (!existsSync(wal)) continue;
    const records = storage.replayLog(wal);
    if (records > 0) logger.info({ thread: index, threads, records }, 'replayed the write-ahead log of a thread this run does not have');
  }
}

/** The data directories of worker threads an earlier run had and this one (with `threads`) does not. */
function missingThreadDirs(config: Config, threads: number): { index: number; dir: string }[] {
  const root = join(config.dataDir, 'threads');
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .map(Number)
    .filter((index) => Number.isInteger(index) && index >= threads)
    .map((index) => ({ index, dir: shardDataDir(config.dataDir, index) }));
}

/**
 * Spools of threads this run does not have (an earlier run had more, or had
 * threads and this one has none), moved into the main thread's spools of the
 * same names, whose sinks deliver them at start. Only with durability
 * memory: with a write-ahead log the spool repeats what the log holds, and
 * the thread's log is replayed instead (replayOtherThreadLogs).
 */
function adoptOtherThreadSpools(config: Config, threads: number, logger: Logger): void {
  if (config.storage.durability !== 'memory') return;
  for (const { index, dir } of missingThreadDirs(config, threads)) {
    const spools = join(dir, 'spool');
    if (!existsSync(spools)) continue;
    for (const sink of readdirSync(spools)) {
      const batches = adoptSpool(join(spools, sink), join(config.dataDir, 'spool', sink));
      if (batches > 0) logger.info({ thread: index, threads, sink, batches }, 'took over the spooled batches of a thread this run does not have');
    }
  }
}

function sumSinkStats(all: readonly Record<string, SinkStats>[]): Record<string, SinkStats> {
  const out: Record<string, SinkStats> = {};
  for (const stats of all) {
    for (const [name, st] of Object.entries(stats)) {
      const t = out[name];
      if (t === undefined) { out[name] = { ...st }; continue; }
      t.queued += st.queued; t.inFlight += st.inFlight; t.spooled += st.spooled; t.spooledBytes += st.spooledBytes;
      t.stored += st.stored; t.deadLettered += st.deadLettered; t.retries += st.retries;
      t.failing ||= st.failing;
      t.lastError ??= st.lastError;
    }
  }
  return out;
}

function addCounts(into: Record<string, number>, from: Readonly<Record<string, number>>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

/** The threads' numbers added up (one core without threads). */
export function sumCoreStats(all: readonly CoreStats[]): CoreStats {
  const system: ShardStats = { live: 0, queued: 0, busy: 0, created: 0, restored: 0, passivated: 0, processed: 0, failed: 0, rejected: 0 };
  const enrichers = { runs: {}, failures: {}, timeouts: {}, stray: {}, reused: {} } as Record<keyof CoreStats['enrichers'], Record<string, number>>;
  let ingest: Record<string, number> | null = null;
  const webhooks = { accepted: 0, delivered: 0, retried: 0, failed: 0 };
  let webhooksPending = 0;
  let remindersPending = 0;
  for (const s of all) {
    addCounts(system as unknown as Record<string, number>, s.system as unknown as Record<string, number>);
    for (const k of Object.keys(enrichers) as (keyof CoreStats['enrichers'])[]) addCounts(enrichers[k], s.enrichers[k]);
    if (s.ingest !== null) addCounts(ingest ??= {}, s.ingest as unknown as Record<string, number>);
    addCounts(webhooks, s.webhooks as unknown as Record<string, number>);
    webhooksPending += s.webhooksPending;
    remindersPending += s.remindersPending;
  }
  return {
    system, enrichers, ingest: ingest as CoreStats['ingest'], webhooks, webhooksPending, remindersPending,
    sinks: sumSinkStats(all.map((s) => s.sinks)),
  };
}

function registerCoreMetrics(gateway: Gateway, source: () => CoreStats, sinkStats: () => Record<string, SinkStats>, pushDeliveries: () => number): void {
  const m = gateway.metrics;
  m.addLabeledCounter('flowstat_enricher_runs_total', 'Enricher runs', 'enricher', () => source().enrichers.runs);
  m.addLabeledCounter('flowstat_enricher_failures_total', 'Enricher runs that threw or rejected (the event went on without)', 'enricher', () => source().enrichers.failures);
  m.addLabeledCounter('flowstat_enricher_timeouts_total', 'Enricher runs that overran their timeout (the event went on without)', 'enricher', () => source().enrichers.timeouts);
  m.addLabeledCounter('flowstat_enricher_reused_total', 'Events given a pure enricher\'s patch from their session\'s memo (inputs unchanged) instead of a run', 'enricher', () => source().enrichers.reused);
  m.addLabeledCounter('flowstat_enricher_stray_total', 'Patch columns an enricher is not allowed to write (dropped)', 'enricher', () => source().enrichers.stray);
  const ingest = (): NonNullable<CoreStats['ingest']> => source().ingest ?? {
    duplicates: 0, sessionsStarted: 0, sessionsEnded: 0, funnelSteps: 0, churnCrossings: 0, funnelAbandons: 0, pushes: 0, pushDeliveries: 0, webhooks: 0, wakes: 0,
  };
  m.addLabeledCounter('flowstat_sessions_total', 'Sessions started and ended (an end written again after the user came back is counted again)', 'event', () => { const st = ingest(); return { started: st.sessionsStarted, ended: st.sessionsEnded }; });
  m.addLabeledCounter('flowstat_handler_events_total', 'Funnel steps reached, funnel attempts abandoned and churn thresholds crossed', 'event', () => { const st = ingest(); return { funnel_step: st.funnelSteps, funnel_abandoned: st.funnelAbandons, churn_crossed: st.churnCrossings }; });
  m.addLabeledCounter('flowstat_pushes_total', 'Push actions carried out, and the connections they reached', 'counted', () => ({ actions: ingest().pushes, deliveries: pushDeliveries() }));
  m.addLabeledCounter('flowstat_actor_wakes_total', 'Reminders that woke an actor (funnel abandonment, churn crossing)', 'by', () => ({ reminder: ingest().wakes }));
  m.addLabeledCounter('flowstat_duplicate_events_total', 'Repeats of a recent client event id: acknowledged, not processed again', 'by', () => ({ client_id: ingest().duplicates }));
  m.addLabeledCounter('flowstat_webhooks_total', 'Webhook actions: accepted, delivered, attempts retried, given up (dead-lettered)', 'result', () => ({ ...source().webhooks }));
  m.addGauge('flowstat_webhooks_pending', 'Webhook deliveries waiting or in flight', () => source().webhooksPending);
  m.addGauge('flowstat_reminders_pending', 'Actor reminders due within the next window, held in memory', () => source().remindersPending);
  const sum = (key: 'queued' | 'inFlight' | 'spooled' | 'stored' | 'deadLettered') => (): number => {
    let n = 0;
    for (const st of Object.values(sinkStats())) n += st[key];
    return n;
  };
  m.addGauge('flowstat_sink_queued_records', 'Records accepted by sinks, not yet being written', sum('queued'));
  m.addGauge('flowstat_sink_inflight_records', 'Records in writes running now', sum('inFlight'));
  m.addGauge('flowstat_sink_spooled_records', 'Records parked on disk until their destination is back', sum('spooled'));
  m.addGauge('flowstat_sink_stored_records', 'Records stored since start', sum('stored'));
  m.addGauge('flowstat_sink_dead_lettered_records', 'Records sent to dead_letters since start', sum('deadLettered'));
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
