import { join } from 'node:path';
import { z } from 'zod';
import {
  createKeyMatcher,
  type Clock, type Config, type Logger, type Registry, type Topology,
} from '../engine/index.js';
import type { DeadLetter } from './batch/index.js';
import { createClickHouseSink } from './clickhouse/sink.js';
import { createStoreHandle, type StoreHandle } from './clickhouse/connect.js';
import type { Sink } from './contract.js';
import { createPipeline, type Pipeline, type PipelineSink } from './pipeline.js';
import { deadLetterRow } from './records.js';
import type { TableName } from './schema/types.js';
import { Wal } from './wal/index.js';
import { createWebhookSink } from './webhook/sink.js';

/**
 * createStorage: the store (chDB or a server), the write-ahead log, the
 * ClickHouse sink, the configured forwarders, and the pipeline that feeds
 * them — assembled from the config. Call `start()` before accepting events:
 * it replays what a previous run left in the log.
 */

export const webhookOptionsSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  headers: z.record(z.string(), z.string()).default({}),
  timeoutMs: z.number().int().positive().max(120_000).default(10_000),
  maxRows: z.number().int().positive().max(1_000_000).default(1_000),
  flushMs: z.number().int().positive().max(600_000).default(1_000),
  spoolMaxBytes: z.number().int().positive().default(256 * 1024 * 1024),
  /** Tables to forward; events by default. */
  tables: z.array(z.enum(['events', 'sessions', 'identities', 'dead_letters'])).default(['events']),
});
export type WebhookOptions = z.output<typeof webhookOptionsSchema>;

/** Registers the sink types a config's `sinks` list may name. */
export function registerSinkTypes(registry: Registry): void {
  registry.register({
    kind: 'sinks',
    type: 'webhook',
    description: 'POST batches of events as JSON lines to a URL, with retries and a disk spool',
    options: webhookOptionsSchema,
  });
}

export interface Storage {
  readonly store: StoreHandle;
  readonly pipeline: Pipeline;
  /** Replays the write-ahead log; returns the number of records replayed. */
  start(): number;
  /**
   * Replays the write-ahead log in `dir`, one another writer left (a worker
   * thread of a run with more threads), into these sinks; returns the record
   * count. The log is closed with this storage.
   */
  replayLog(dir: string): number;
  /** Per-sink stats for metrics and /readyz. */
  sinkStats(): Record<string, ReturnType<Sink['stats']>>;
  close(): Promise<void>;
}

export interface StorageDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  /** The store to write to; default: connect per `config` (a worker thread passes the main thread's). */
  readonly store?: StoreHandle;
}

export function createStorage(config: Config, topology: Topology, deps: StorageDeps): Storage {
  const { clock, logger } = deps;
  const s = config.storage;
  const store = deps.store ?? createStoreHandle(config, logger);
  const foreignLogs: Wal[] = [];
  let pipeline: Pipeline | null = null;

  // Refused rows keep their acknowledgement: the dead letter is written through the same sink.
  const toDeadLetters = (source: string) => (letters: readonly DeadLetter[]): void => {
    for (const l of letters) {
      if (l.table === 'dead_letters') {
        logger.error({ row: l.row, reason: l.reason }, 'a dead letter itself was refused by the store; dropping it');
        l.ack?.release(1);
        continue;
      }
      const row = deadLetterRow({
        at: clock.now(), projectId: Number(l.row.project_id ?? 0) || 0,
        source: `${source}:${l.table}`, code: l.code, reason: l.reason, payload: l.row,
      });
      clickhouse.write([{ table: 'dead_letters', row, ack: l.ack }]);
    }
  };

  const wal = s.durability === 'wal'
    ? new Wal({
        dir: join(config.dataDir, 'wal'),
        segmentBytes: s.walSegmentBytes,
        onError: (err) => pipeline?.failWal(err),
        onCorruption: (err) => logger.error({ err }, 'write-ahead log corruption found at start'),
      })
    : null;

  const clickhouse: Sink = createClickHouseSink({
    store,
    format: s.format,
    spoolDir: join(config.dataDir, 'spool', 'clickhouse'),
    spoolMaxBytes: s.spoolMaxBytes,
    maxRows: s.batchRows,
    maxBytes: s.batchBytes,
    flushMs: s.flushMs,
    clock,
    logger,
    deadLetter: toDeadLetters('sink'),
    // With a write-ahead log, what was spooled is also in the log, which is replayed.
    keepSpool: wal === null,
  });

  const sinks: PipelineSink[] = [{ sink: clickhouse, primary: true }];
  for (const c of topology.sinks) {
    if (c.definition.type !== 'webhook') continue;
    const opts = c.options as WebhookOptions;
    const tables = new Set<TableName>(opts.tables);
    const keys = createKeyMatcher(c.keys.map((pattern) => ({ pattern, value: true })));
    const sink = createWebhookSink({
      name: c.name,
      url: opts.url,
      headers: opts.headers,
      timeoutMs: opts.timeoutMs,
      maxRows: opts.maxRows,
      maxBytes: s.batchBytes,
      flushMs: opts.flushMs,
      spoolDir: join(config.dataDir, 'spool', `webhook-${c.name}`),
      spoolMaxBytes: opts.spoolMaxBytes,
      tables,
      clock,
      logger,
      deadLetter: toDeadLetters(`webhook-${c.name}`),
      keepSpool: wal === null,
    });
    sinks.push({
      sink,
      // Events go by their routing key; other tables by the table list.
      accepts: (r) => tables.has(r.table) && (r.table !== 'events' || keys.match(String(r.row.key)).length > 0),
    });
  }

  pipeline = createPipeline({ wal, sinks, logger });
  const p = pipeline;

  return {
    store,
    pipeline: p,
    start: () => p.replay(),
    replayLog(dir) {
      const log = new Wal({
        dir,
        segmentBytes: s.walSegmentBytes,
        onError: (err) => logger.error({ err, dir }, 'write-ahead log of another thread count: write failed'),
        onCorruption: (err) => logger.error({ err, dir }, 'write-ahead log corruption found at start'),
      });
      foreignLogs.push(log);
      return p.replay(log);
    },
    sinkStats() {
      const out: Record<string, ReturnType<Sink['stats']>> = {};
      for (const { sink } of sinks) out[sink.name] = sink.stats();
      return out;
    },
    async close() {
      await p.close();
      for (const log of foreignLogs) await log.close();
      await store.close();
    },
  };
}
