import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { Packr } from 'msgpackr';
import { createIngestBehavior, type IngestState } from '../../actors/index.js';
import { createEnricherSet } from '../../actors/enrichers/index.js';
import { createChurn, createFunnels } from '../../actors/machines/index.js';
import { createSessionizer } from '../../actors/session/index.js';
import {
  createActorSystem, createEnvelope, createMemoryStateStore, createReminders, SESSION_DEFAULTS, type ActorMessage, type Envelope, type IngestMessage,
} from '../../engine/index.js';
import type { OutRecord, Pipeline } from '../../sinks/index.js';
import { gc, heapUsed, round } from '../lib/measure.js';
import { createZipf, mulberry32, permutation } from '../lib/random.js';
import type { Metric, Scenario, ScenarioResult } from '../lib/scenario.js';

/**
 * The actor stage alone: the real session actor (dedup, sessionize,
 * identity, derived session events) in the real actor system, for 1M users
 * with Zipf activity — without enrichment (its own scenario) and without
 * storage: the pipeline counts the records it is handed and acknowledges at
 * once (the sinks scenario measures storage). Events are made untimed in
 * chunks from just-parsed JSON, then told to the system timed, chunk by
 * chunk; the median is over chunks of CHUNK events. Client time advances
 * over a simulated SIM_HOURS, so sessions split on idle as in production.
 *
 * Memory: heap per live actor after the run, and per idle user once every
 * actor is passivated into the in-memory state store (its snapshot held as
 * an object), and the snapshot's msgpack size (what the disk store keeps).
 *
 * With three funnels (ordered, strict, any; one with an abandonment timer and
 * webhooks) and the churn model at each session end, with a webhook on
 * crossing — so each session end predicts the crossing and every user keeps
 * a reminder (in the in-memory reminder store; webhooks are counted, not sent).
 */

const USERS = Number(process.env.BENCH_ACTOR_USERS ?? 1_000_000);
const EVENTS = Number(process.env.BENCH_ACTOR_EVENTS ?? 3_000_000);
const CHUNK = 1_000;
const SIM_HOURS = 6;
const SEED = 20261125;
const KEYS = ['in.gen.track.page', 'in.gen.track.page', 'in.gen.track.scroll', 'in.gen.track.click', 'in.gen.shop.add_to_cart', 'in.gen.shop.checkout', 'in.gen.shop.purchase'] as const;
const HOOK = 'https://crm.example/hooks';
/** Three funnels, one per mode, over the shop's events; checkout has an abandonment timer and a webhook. */
const FUNNELS = [
  {
    name: 'checkout', mode: 'ordered', windowMs: 3_600_000,
    steps: [{ pattern: 'in.gen.track.page' }, { pattern: 'in.gen.shop.add_to_cart' }, { pattern: 'in.gen.shop.checkout' }, { pattern: 'in.gen.shop.purchase', actions: [{ type: 'webhook', url: HOOK }] }],
    abandon: { afterMs: 600_000, fromStep: 1, actions: [{ type: 'webhook', url: HOOK }] },
  },
  { name: 'engaged', mode: 'strict', windowMs: 600_000, steps: [{ pattern: 'in.gen.track.page' }, { pattern: 'in.gen.track.scroll' }, { pattern: 'in.gen.track.click' }] },
  { name: 'explorer', mode: 'any', windowMs: 86_400_000, steps: [{ pattern: 'in.gen.track.scroll' }, { pattern: 'in.gen.track.click' }, { pattern: 'in.gen.shop.add_to_cart' }] },
];

/** Hands records nowhere: counts them and acknowledges at once. */
function countingPipeline(): Pipeline & { records: number } {
  const p = {
    records: 0,
    sinks: [],
    emit(records: readonly OutRecord[], reply: { durable(): void } | null) { p.records += records.length; reply?.durable(); },
    deadLetter() { throw new Error('the actor stage sent a dead letter'); },
    replay: () => 0,
    saturated: () => false,
    flush: async () => {},
    close: async () => {},
    retryNow() {},
    failWal(err: Error) { throw err; },
  };
  return p;
}

/** Total overlap in ms of two sorted lists of [start, end) pairs. */
function overlapMs(a: readonly number[], b: readonly number[]): number {
  let total = 0;
  let j = 0;
  for (let i = 0; i < a.length; i += 2) {
    while (j < b.length && b[j + 1]! <= a[i]!) j += 2;
    for (let k = j; k < b.length && b[k]! < a[i + 1]!; k += 2) total += Math.min(a[i + 1]!, b[k + 1]!) - Math.max(a[i]!, b[k]!);
  }
  return total;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export const actorStageScenario: Scenario = {
  name: 'actor-stage',
  description: 'session actor (dedup, sessions, identity, 3 funnels, churn) in the actor system, 1M users, Zipf',
  async run(progress): Promise<ScenarioResult> {
    const rand = mulberry32(SEED);
    const userIds = permutation(USERS, rand);
    const zipf = createZipf(USERS, 1.0, rand);
    const pipeline = countingPipeline();
    const store = createMemoryStateStore();
    // Simulated server time: the chunk's client time (the behaviour's `now`, and the reminders').
    let simNow = 0;
    // Reminders as the engine keeps them by default: on disk (lmdb), the next 10 minutes also in memory.
    const remindersDir = mkdtempSync(join(tmpdir(), 'flowstat-bench-reminders-'));
    const reminders = createReminders({ path: remindersDir, now: () => simNow });
    let webhooks = 0;
    const behavior = createIngestBehavior({
      pipeline,
      enrichers: createEnricherSet([]),
      sessions: createSessionizer({ ...SESSION_DEFAULTS, projectTimeZones: {} }),
      funnels: createFunnels(FUNNELS),
      churn: createChurn({ actions: [{ type: 'webhook', url: HOOK }] }),
      ipAnonymization: 'zero',
      dropBots: false,
      dedupIds: SESSION_DEFAULTS.dedupIds,
      now: () => simNow,
      remind: (projectId, uid, at) => reminders.set(projectId, uid, at),
      webhook: () => { webhooks++; },
    });
    const system = createActorSystem<IngestState, ActorMessage>({ behavior, store, shards: 1, maxLiveActors: USERS * 2 });
    const t0 = Date.UTC(2026, 5, 1, 8);
    const step = (SIM_HOURS * 3_600_000) / EVENTS;

    const heapBefore = heapUsed();
    // GC pauses on the main thread, to tell how much of the timed chunks they took.
    const gcPauses: number[] = [];
    const gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) gcPauses.push(e.startTime, e.startTime + e.duration);
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    const timedWindows: number[] = [];
    const chunkUs: number[] = [];
    let told = 0;
    let clientIds = 0;
    progress(`telling ${EVENTS} events for up to ${USERS} users`);
    for (let start = 0; start < EVENTS; start += CHUNK) {
      const inputs = [];
      for (let i = start; i < Math.min(EVENTS, start + CHUNK); i++) {
        const u = userIds[zipf()]!;
        const ts = Math.round(t0 + i * step);
        // One event in ten carries a client id (SDKs that retry send one).
        const id = rand() < 0.1 ? `c-${i}` : undefined;
        if (id !== undefined) clientIds++;
        inputs.push({ key: KEYS[Math.floor(rand() * KEYS.length)]!, projectId: 1, uid: `u-${u.toString(36)}`, ts, id, receivedAt: ts, ip: '203.0.113.1', userAgent: 'bench', pageUrl: `https://shop.example/p/${u % 500}` });
      }
      const envelopes: Envelope[] = (JSON.parse(JSON.stringify(inputs)) as typeof inputs).map((x) => createEnvelope(x));
      const messages: IngestMessage[] = envelopes.map((envelope) => ({ envelope, responder: null }));
      simNow = inputs[0]!.ts;
      // The plain inputs are garbage now: don't let them ride through the timed chunk's scavenges.
      inputs.length = 0;
      const c0 = performance.now();
      for (const m of messages) if (system.tell(1, m.envelope.uid, m) !== 0) throw new Error('tell refused');
      const c1 = performance.now();
      timedWindows.push(c0, c1);
      chunkUs.push(((c1 - c0) * 1000) / messages.length);
      told += messages.length;
      if (start % 500_000 === 0 && start > 0) progress(`${start} events`);
    }
    const live = system.stats().live;
    // Let the observer take the last entries before it is read.
    await new Promise((resolve) => setTimeout(resolve, 50));
    gcObserver.disconnect();
    const gcInTimedMs = overlapMs(timedWindows, gcPauses);
    const timedMs = chunkUs.reduce((a, b) => a + b, 0) * CHUNK / 1000;
    const remindersInMemory = reminders.pending();
    const heapLive = heapUsed();
    const snapshotSample: unknown[] = [];
    progress('passivating every actor into the memory store');
    await system.passivateAll();
    // Passivation set each user's reminder: let those writes land (what production does within 100 ms).
    await reminders.flush();
    gc();
    const heapIdle = heapUsed();
    let n = 0;
    for (let u = 0; u < USERS && n < 10_000; u++) {
      const s = store.get(1, `u-${userIds[u]!.toString(36)}`);
      if (s !== undefined) { snapshotSample.push(s); n++; }
    }
    await reminders.close();
    rmSync(remindersDir, { recursive: true, force: true });
    const packr = new Packr({ useRecords: false });
    const packedBytes = snapshotSample.reduce<number>((sum, s) => sum + packr.pack(s).length, 0) / snapshotSample.length;
    const sorted = [...chunkUs].sort((a, b) => a - b);
    const metrics: Metric[] = [
      { name: 'µs per event, median over chunks', value: round(median(chunkUs), 3), unit: 'µs', target: { op: '<=', value: 3 }, note: `sessions + dedup + identity + 3 funnels + churn; p90 ${round(sorted[Math.floor(sorted.length * 0.9)]!, 3)} µs, p99 ${round(sorted[Math.floor(sorted.length * 0.99)]!, 3)} µs per event over chunks of ${CHUNK}` },
      { name: 'GC pauses within the timed chunks', value: round((100 * gcInTimedMs) / timedMs, 1), unit: '%', note: `${round(gcInTimedMs)} ms of ${round(timedMs)} ms: scavenges and mark-compact steps on the main thread` },
      { name: 'events/s', value: round(told / (chunkUs.reduce((a, b) => a + b, 0) * CHUNK / 1e6)), unit: 'events/s' },
      { name: 'heap per idle user, snapshot included', value: round((heapIdle - heapBefore) / live), unit: 'bytes', target: { op: '<=', value: 1024 }, note: 'after passivation: the snapshot object in the in-memory store, and its key' },
      { name: 'heap per live actor', value: round((heapLive - heapBefore) / live), unit: 'bytes', note: 'before passivation: cell, state, session, uid' },
      { name: 'snapshot size, msgpack', value: round(packedBytes), unit: 'bytes', note: 'what the disk state store keeps per user (mean of 10k)' },
      { name: 'users seen', value: live, unit: 'users' },
      { name: 'records emitted per event', value: round(pipeline.records / told, 3), unit: 'records', note: 'the event plus session start/end events and sessions rows' },
      { name: 'reminders in memory', value: remindersInMemory, unit: 'reminders', note: 'due within 10 min (abandonment timers); the churn crossings days away are on disk only' },
      { name: 'webhook actions', value: webhooks, unit: 'webhooks', note: 'funnel conversions (counted, not sent)' },
    ];
    return {
      scenario: 'actor-stage',
      description: this.description,
      params: { users: USERS, events: EVENTS, chunk: CHUNK, simulatedHours: SIM_HOURS, zipfS: 1, seed: SEED, clientIdShare: round(clientIds / told, 3) },
      metrics,
    };
  },
};
