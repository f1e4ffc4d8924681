import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { createSystemClock } from '../clock/index.js';
import { createCore } from '../core.js';
import type { Envelope } from '../envelope/index.js';
import type { Reply, Responder } from '../ingest/index.js';
import { createLogger } from '../logger/index.js';
import { TELL_ACCEPTED, shardOf, tellError } from '../system/index.js';
import { createError } from '../errors/index.js';
import { EVENT_STRIDE, REPLY_STRIDE, readEvent, shardDataDir, toWireError, writeReply, type FromWorker, type ToWorker, type WorkerInit } from './protocol.js';
import { StoreCalls, createRemoteStoreHandle } from './remote-store.js';

/**
 * A worker thread of the engine (docs/threads.md): one core — enrichers,
 * session actors, write-ahead log, sinks — for the users whose
 * hash(uid) % threads is this thread's index. Events arrive in batches from
 * the main thread's gateway; replies go back in batches, each after its
 * event is durable, as in one thread. The store is the main thread's.
 */

/** Replies are sent when this many have gathered, else at the end of the event loop turn. */
const REPLY_BATCH = 4096;
const STATS_INTERVAL_MS = 250;

async function run(init: WorkerInit): Promise<void> {
  const port = parentPort!;
  const post = (m: FromWorker, transfer?: ArrayBuffer[]): void => port.postMessage(m, transfer);
  const { config, index, count } = init;
  const logger = createLogger({ level: config.log.level }).child({ thread: index });
  const clock = createSystemClock();
  const calls = new StoreCalls((id, op, args, transfer) => post({ t: 'store', id, op, args }, transfer));

  let outbox: unknown[] = [];
  let refused: string[] = [];
  /** Events taken from the port, and the count the main thread was last told. */
  let received = 0;
  let reported = 0;
  let flushScheduled = false;
  function flushReplies(): void {
    flushScheduled = false;
    if (outbox.length === 0 && received === reported && refused.length === 0) return;
    const b = outbox;
    outbox = [];
    reported = received;
    post({ t: 'replies', b, received, refused });
    if (refused.length > 0) refused = [];
  }
  function scheduleFlush(): void {
    if (flushScheduled) return;
    flushScheduled = true;
    setImmediate(flushReplies);
  }
  function queueReply(ref: number, reply: Reply): void {
    writeReply(outbox, ref, reply);
    if (outbox.length >= REPLY_BATCH * REPLY_STRIDE) flushReplies();
    else scheduleFlush();
  }
  /** Answers through the main thread, which holds the client's responder under `ref`. */
  class RemoteResponder implements Responder {
    constructor(private readonly ref: number) {}
    respond(_envelope: Envelope, reply: Reply): void { queueReply(this.ref, reply); }
  }

  const core = await createCore({ ...config, dataDir: shardDataDir(config.dataDir, index) }, {
    logger,
    clock,
    store: createRemoteStoreHandle(init.storeKind, calls.call),
    // The count of connections reached is the main thread's to know; it counts them itself.
    push: (projectId, uid, params) => { post({ t: 'push', projectId, uid, params }); return 0; },
    stateDir: config.dataDir,
    owns: (uid) => shardOf(uid, count) === index,
  });
  const { engine, storage } = core;
  engine.shutdown.on('close', 'storage', () => storage.close());

  const sendStats = (): void => {
    const { active, idle } = performance.eventLoopUtilization();
    post({ t: 'stats', stats: core.stats(), saturated: storage.pipeline.saturated(), loop: { active, idle } });
  };
  const statsTimer = setInterval(sendStats, STATS_INTERVAL_MS);
  statsTimer.unref();

  function take(b: readonly unknown[]): void {
    const saturated = storage.pipeline.saturated();
    for (let i = 0; i < b.length; i += EVENT_STRIDE) {
      const ref = b[i] as number;
      const envelope = readEvent(b, i);
      const responder = ref === 0 ? null : new RemoteResponder(ref);
      if (saturated) {
        const error = createError('FLOW_ERR_OVERLOADED', { reason: 'storage backlog', retryAfter: 5 });
        refused.push(envelope.channel, error.code);
        responder?.respond(envelope, { kind: 'error', error });
        continue;
      }
      const result = engine.system.tell(envelope.projectId, envelope.uid, { envelope, responder });
      if (result !== TELL_ACCEPTED) {
        const error = tellError(result)!;
        refused.push(envelope.channel, error.code);
        responder?.respond(envelope, { kind: 'error', error });
      }
    }
    received += b.length / EVENT_STRIDE;
    // The main thread learns how far this thread has got even when no reply is due (notifications).
    scheduleFlush();
  }

  port.on('message', (m: ToWorker) => {
    switch (m.t) {
      case 'events': take(m.b); break;
      case 'store-reply': calls.settle(m.id, m.ok, m.value, m.error); break;
      // Replies first: whoever asks must see the events they answer as counted.
      case 'stats': flushReplies(); sendStats(); break;
      case 'stop':
        void engine.shutdown.run(m.reason).then((result) => {
          clearInterval(statsTimer);
          flushReplies();
          sendStats();
          post({ t: 'stopped', ok: result.ok });
          port.close();
        });
        break;
    }
  });

  const replayed = storage.start();
  storage.store.get().catch(() => { /* the main thread logs store failures; sinks retry */ });
  engine.start();
  logger.info({ threads: count, replayed }, 'worker thread started');
  post({ t: 'ready' });
}

run(workerData as WorkerInit).catch((err: unknown) => {
  parentPort!.postMessage({ t: 'failed', error: toWireError(err) } satisfies FromWorker);
});
