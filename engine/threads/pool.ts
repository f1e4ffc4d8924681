import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { StoreHandle } from '../../sinks/index.js';
import type { Config } from '../config/index.js';
import type { CoreStats } from '../core.js';
import { createError } from '../errors/index.js';
import type { IngestMessage, PushFn } from '../ingest/index.js';
import type { Logger } from '../logger/index.js';
import {
  TELL_ACCEPTED, TELL_OVERLOADED, TELL_STOPPED, shardOf,
  type ActorSystem, type ShardStats, type TellResult,
} from '../system/index.js';
import {
  EVENT_STRIDE, REPLY_STRIDE, readReply, toWireError, writeEvent,
  type FromWorker, type LoopTime, type ToWorker, type WorkerInit,
} from './protocol.js';
import { serveStoreCall } from './remote-store.js';

/**
 * The main thread's side of `actors.threads` (docs/threads.md): starts the
 * worker threads, routes each event to the thread that owns its user
 * (hash(uid) % threads — the same user always lands on the same thread, so
 * its events stay in order), keeps each waiting client's responder until the
 * thread's reply comes back, serves the threads' store calls, and restarts a
 * thread that dies. To the gateway it is an ActorSystem.
 */

export interface ThreadPoolOptions {
  readonly config: Config;
  readonly threads: number;
  readonly logger: Logger;
  readonly store: StoreHandle;
  readonly push: PushFn;
  /** An event the gateway counted as accepted was refused in its thread (overload): fix the counters. */
  readonly onRefused?: (channel: string, code: string) => void;
}

export interface ThreadPool {
  readonly system: ActorSystem<IngestMessage>;
  /** Starts every thread; resolves when all have replayed their logs and take events. */
  start(): Promise<void>;
  /** Each thread drains, passivates and flushes (its own ordered shutdown); resolves true if all did. */
  stop(reason: string): Promise<boolean>;
  /** The latest numbers each thread posted (every 250 ms). */
  stats(): readonly CoreStats[];
  /** Asks every thread for its numbers now; resolves once all have answered (what stats() then returns). */
  refreshStats(): Promise<readonly CoreStats[]>;
  /** True when a thread's storage cannot take more. */
  saturated(): boolean;
  /** Connections reached by pushes from the threads. */
  pushDeliveries(): number;
  /** Each thread's event loop time, as of its latest stats. */
  loops(): readonly LoopTime[];
}

/** Events sent at once when this many gathered, else at the end of the event loop turn. */
const EVENT_BATCH = 1024;
/** A thread that died is started again after this long. */
const RESTART_DELAY_MS = 1_000;

class Slot {
  worker: Worker | null = null;
  ready = false;
  stopping = false;
  out: unknown[] = [];
  /** Events posted to the thread, and how many it has taken from its port. */
  sent = 0;
  received = 0;
  /** Events whose client waits for a reply, by ref. */
  readonly waiting = new Map<number, IngestMessage>();
  stats: CoreStats | null = null;
  saturated = false;
  loop: LoopTime = { active: 0, idle: 0 };
  onReady: (() => void) | null = null;
  onFailed: ((err: Error) => void) | null = null;
  onStopped: ((ok: boolean) => void) | null = null;
  /** Waiting for the next stats message. */
  statsWaiters: (() => void)[] = [];
  constructor(readonly index: number) {}
}

export function workerScript(): string {
  const here = fileURLToPath(import.meta.url);
  const beside = join(dirname(here), 'worker.js');
  if (existsSync(beside)) return beside;
  // Run from TypeScript sources (vitest): the compiled worker in dist/.
  return join(dirname(here), '..', '..', 'dist', 'engine', 'threads', 'worker.js');
}

export function createThreadPool(o: ThreadPoolOptions): ThreadPool {
  const { logger, threads } = o;
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError('threads must be a positive integer');
  const slots = Array.from({ length: threads }, (_, i) => new Slot(i));
  const init = (index: number): WorkerInit => ({ config: o.config, index, count: threads, storeKind: o.store.kind });
  /** In flight to one thread (posted, not yet taken from its port) before events are refused as overload. */
  const transitCap = Math.max(EVENT_BATCH, Math.ceil(o.config.actors.maxQueued / threads));
  let nextRef = 1;
  let stopped = false;
  let flushScheduled = false;
  let deliveries = 0;

  function post(slot: Slot, m: ToWorker, transfer?: ArrayBuffer[]): void {
    slot.worker?.postMessage(m, transfer);
  }

  function flush(slot: Slot): void {
    if (slot.out.length === 0) return;
    const b = slot.out;
    slot.out = [];
    post(slot, { t: 'events', b });
  }
  function flushAll(): void {
    flushScheduled = false;
    for (const s of slots) flush(s);
  }

  function onMessage(slot: Slot, m: FromWorker): void {
    switch (m.t) {
      case 'replies': {
        slot.received = m.received;
        for (let i = 0; i < m.refused.length; i += 2) o.onRefused?.(m.refused[i]!, m.refused[i + 1]!);
        const b = m.b;
        for (let i = 0; i < b.length; i += REPLY_STRIDE) {
          const ref = b[i] as number;
          const message = slot.waiting.get(ref);
          if (message === undefined) continue;
          slot.waiting.delete(ref);
          message.responder!.respond(message.envelope, readReply(b, i));
        }
        break;
      }
      case 'push': deliveries += o.push(m.projectId, m.uid, m.params); break;
      case 'store':
        serveStoreCall(o.store, m.op, m.args).then(
          (value) => post(slot, { t: 'store-reply', id: m.id, ok: true, value }),
          (err: unknown) => post(slot, { t: 'store-reply', id: m.id, ok: false, error: toWireError(err) }),
        );
        break;
      case 'stats': {
        slot.stats = m.stats;
        slot.saturated = m.saturated;
        slot.loop = m.loop;
        const waiters = slot.statsWaiters;
        slot.statsWaiters = [];
        for (const w of waiters) w();
        break;
      }
      case 'ready': slot.ready = true; slot.onReady?.(); break;
      case 'stopped': slot.onStopped?.(m.ok); break;
      case 'failed': {
        const err = new Error(m.error.message);
        if (m.error.stack !== undefined) err.stack = m.error.stack;
        logger.error({ thread: slot.index, err }, 'worker thread failed to start');
        // Not restarted: what failed at start (a bad data directory, say) would fail again.
        slot.stopping = true;
        slot.onFailed?.(err);
        void slot.worker?.terminate();
        break;
      }
    }
  }

  /** A thread is gone: its waiting clients are told, and it is started again unless the engine is stopping. */
  function onExit(slot: Slot, code: number): void {
    slot.worker = null;
    slot.ready = false;
    slot.out = [];
    slot.sent = slot.received = 0;
    for (const w of slot.statsWaiters.splice(0)) w();
    if (slot.waiting.size > 0) {
      const error = createError('FLOW_ERR_INTERNAL');
      for (const message of slot.waiting.values()) message.responder!.respond(message.envelope, { kind: 'error', error });
      slot.waiting.clear();
    }
    if (slot.stopping) { slot.onStopped?.(code === 0); return; }
    logger.error({ thread: slot.index, exitCode: code, restartInMs: RESTART_DELAY_MS }, 'worker thread died; its users get errors until it is back (what it had acknowledged is in its write-ahead log)');
    const t = setTimeout(() => { if (!stopped) spawn(slot); }, RESTART_DELAY_MS);
    t.unref();
  }

  function spawn(slot: Slot): void {
    const worker = new Worker(workerScript(), { workerData: init(slot.index), stdout: false, stderr: false });
    slot.worker = worker;
    worker.on('message', (m: FromWorker) => onMessage(slot, m));
    worker.on('error', (err) => logger.error({ thread: slot.index, err }, 'worker thread threw'));
    worker.once('exit', (code) => onExit(slot, code));
  }

  const system: ActorSystem<IngestMessage> = {
    shardCount: threads,
    tell(_projectId, uid, message): TellResult {
      if (stopped) return TELL_STOPPED;
      const slot = slots[threads === 1 ? 0 : shardOf(uid, threads)]!;
      if (!slot.ready || slot.sent - slot.received >= transitCap) return TELL_OVERLOADED;
      let ref = 0;
      if (message.responder !== null) {
        ref = nextRef++;
        slot.waiting.set(ref, message);
      }
      writeEvent(slot.out, ref, message.envelope);
      slot.sent++;
      if (slot.out.length >= EVENT_BATCH * EVENT_STRIDE) flush(slot);
      else if (!flushScheduled) { flushScheduled = true; setImmediate(flushAll); }
      return TELL_ACCEPTED;
    },
    start() {},
    stop() { stopped = true; },
    // The threads drain and passivate in their own shutdown (ThreadPool.stop).
    async drain() {},
    async passivateAll() {},
    tick() {},
    stats() {
      const total: ShardStats = { live: 0, queued: 0, busy: 0, created: 0, restored: 0, passivated: 0, processed: 0, failed: 0, rejected: 0 };
      for (const s of slots) {
        const st = s.stats?.system;
        if (st === undefined) continue;
        for (const k of Object.keys(total) as (keyof ShardStats)[]) total[k] += st[k];
      }
      return total;
    },
  };

  return {
    system,
    async start() {
      await Promise.all(slots.map((slot) => new Promise<void>((resolve, reject) => {
        slot.onReady = () => { slot.onReady = slot.onFailed = null; resolve(); };
        slot.onFailed = (err) => { slot.onReady = slot.onFailed = null; reject(err); };
        spawn(slot);
      })));
      logger.info({ threads }, 'worker threads started');
    },
    async stop(reason) {
      stopped = true;
      flushAll();
      const results = await Promise.all(slots.map((slot) => new Promise<boolean>((resolve) => {
        slot.stopping = true;
        if (slot.worker === null) { resolve(true); return; }
        slot.onStopped = (ok) => {
          slot.onStopped = null;
          void slot.worker?.terminate();
          resolve(ok);
        };
        post(slot, { t: 'stop', reason });
      })));
      return results.every(Boolean);
    },
    stats: () => slots.flatMap((s) => (s.stats === null ? [] : [s.stats])),
    async refreshStats() {
      flushAll();
      await Promise.all(slots.filter((slot) => slot.worker !== null && slot.ready).map((slot) => new Promise<void>((resolve) => {
        slot.statsWaiters.push(resolve);
        post(slot, { t: 'stats' });
      })));
      return slots.flatMap((s) => (s.stats === null ? [] : [s.stats]));
    },
    saturated: () => slots.some((s) => s.saturated),
    pushDeliveries: () => deliveries,
    loops: () => slots.map((s) => s.loop),
  };
}
