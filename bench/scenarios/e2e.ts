import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { startClickHouseServer, type ClickHouseServer } from '../lib/clickhouse-server.js';
import { machineBusySeconds, processCpuSeconds } from '../lib/cpu.js';
import { round } from '../lib/measure.js';
import type { Metric, Scenario, ScenarioResult } from '../lib/scenario.js';
import { startServerProcess, type ServerProcess } from '../lib/server-process.js';
import { runWsLoad, WS_LOAD_DEFAULTS, type WsLoadOptions, type WsLoadResult } from '../lib/ws-load.js';

/**
 * End to end: WebSocket JSON frames of realistic shop traffic → gateway →
 * session actors (default enrichers, sessions, three funnels, churn) →
 * write-ahead log → reply → batches into ClickHouse; then every accepted
 * event is looked for in ClickHouse, and the run fails if one is missing or
 * stored twice. The store is embedded chDB, or with `npm run bench -- e2e
 * --server` (or CLICKHOUSE_URL) a ClickHouse server the harness starts the
 * way the tests do.
 *
 * In the same run, on the same generator: a bare uWS frame counter (the
 * ceiling), flowstat behind its `ws` gateway, and a naive per-event pipeline
 * (`ws`, JSON.parse, one INSERT per event into a ClickHouse server, the reply
 * after it) — each reported as a ratio to flowstat, because the machine is
 * shared and absolute numbers drift. Then reply latency at fixed open-loop
 * rates, memory per live user (100k users, none passivated yet), and memory
 * per idle user (200k and 1M users, each passivated after one event).
 */

const SERVERS_DIR = resolve(import.meta.dirname, '../servers');
/**
 * The stages to run (BENCH_E2E_STAGES, comma-separated; default all), for A/B
 * pairs that need only some — `throughput` takes ~40 s of the ~7.5 min. The
 * ceiling always runs: the ratios need it. A stage left out leaves out its metrics.
 */
const STAGE_NAMES = ['throughput', 'naive', 'latency', 'memory', 'idle'] as const;
type StageName = (typeof STAGE_NAMES)[number];
const STAGES: ReadonlySet<StageName> = (() => {
  const raw = process.env.BENCH_E2E_STAGES;
  if (raw === undefined || raw.trim() === '') return new Set(STAGE_NAMES);
  const picked = raw.split(',').map((x) => x.trim()).filter(Boolean);
  const unknown = picked.filter((x) => !(STAGE_NAMES as readonly string[]).includes(x));
  if (unknown.length > 0) throw new Error(`BENCH_E2E_STAGES: unknown stage ${unknown.map((x) => `"${x}"`).join(', ')} (have: ${STAGE_NAMES.join(', ')})`);
  return new Set(picked as StageName[]);
})();
const WARMUP_MS = 3_000;
const DURATION_MS = Number(process.env.BENCH_E2E_DURATION_MS ?? 8_000);
const CONNECTIONS = 100;
/** Events in flight per connection in the closed loops: 6,400 in all, a few WAL commits' worth. */
const WINDOW = 64;
const USERS = 100_000;
const RATES = (process.env.BENCH_E2E_RATES ?? '10000,25000,50000').split(',').map(Number);
const RATE_MS = 6_000;
/** actors.threads of the engine under test (BENCH_E2E_THREADS; the server script reads the same variable). */
const THREADS = Number(process.env.BENCH_E2E_THREADS ?? 0);
/** Live users (one event each, none passivated): 100k, then BENCH_E2E_MEMORY_USERS in all if set (a second reading). */
const MEMORY_USERS = [100_000, ...(process.env.BENCH_E2E_MEMORY_USERS === undefined ? [] : [Number(process.env.BENCH_E2E_MEMORY_USERS)])];
/** Idle users: one event each, then passivated after IDLE_TIMEOUT_MS; memory is read after each count. */
const IDLE_USERS = [200_000, Number(process.env.BENCH_E2E_IDLE_USERS ?? 1_000_000)];
/**
 * Sent open loop at this rate (closed loop, a burst of fresh users is shed).
 * A fresh user is ~4 stored rows (its event, session start and end, sessions
 * row, churn score): at 8,000/s on a slow evening (2026-12-04) the 18.16
 * server fell behind, the engine shed users and the queued rows showed as
 * anonymous memory. 5,000/s is kept up with on both stores.
 */
const IDLE_RATE = Number(process.env.BENCH_E2E_IDLE_RATE ?? 5_000);
/**
 * Users sent before the baseline reading. The first users grow the engine's
 * buffers to their working size — the insert bodies' slab pool to a batch's
 * worth (~100 MB at 100k rows), V8's young generation, lmdb's write buffers —
 * fixed memory that a 5k-user warm-up left to be charged to the idle users
 * (~110 B each over the first 200k, round 5 of docs/performance.md).
 */
const IDLE_WARMUP_USERS = Number(process.env.BENCH_E2E_IDLE_WARMUP ?? 100_000);
/**
 * Users sent at a time; before the next block the sinks must have written
 * everything (the `drained` command). On a slow evening the store fell
 * behind at this rate, and the backlog's buffers stayed in the allocator
 * after they were freed (glibc keeps freed 1 MiB blocks in its heap once its
 * mmap threshold has risen), counted as idle users' memory. A bounded
 * backlog measures what an idle user costs, not how far the store fell behind.
 */
const IDLE_BLOCK_USERS = Math.max(1, Number(process.env.BENCH_E2E_IDLE_BLOCK ?? 50_000));
const IDLE_TIMEOUT_MS = 2_000;
/** X-Forwarded-For addresses, one per connection: spread over the geo database (flowstat trusts 127.0.0.1 here). */
const FORWARDED = Array.from({ length: CONNECTIONS }, (_, i) => (i % 10 === 9
  ? `2a0${1 + (i % 9)}:${(0x1000 + i * 97).toString(16)}::${(i * 31).toString(16)}`
  : `${[81, 2, 5, 31, 46, 62, 77, 85, 91, 94, 103, 109, 151, 175, 185, 188, 193, 200, 212][i % 19]}.${(i * 37) % 256}.${(i * 101) % 256}.${1 + (i % 250)}`));

const TARGETS = {
  storedServer: 150_000,
  storedChdb: 60_000,
  p99AtRate: { rate: 50_000, ms: 10 },
  naiveRatio: 100,
  bytesPerUser: 400,
};

interface Env {
  readonly store: 'chdb' | 'server';
  /** The ClickHouse server flowstat writes to in server mode, and the naive baseline always. */
  readonly clickhouse: ClickHouseServer | null;
  readonly clickhouseUrl: string;
}

const loadOptions = (port: number, o: Partial<WsLoadOptions>): WsLoadOptions => ({
  ...WS_LOAD_DEFAULTS,
  port,
  path: '/ws?projectId=1',
  connections: CONNECTIONS,
  users: USERS,
  window: WINDOW,
  warmupMs: WARMUP_MS,
  durationMs: DURATION_MS,
  traffic: 'shop',
  forwardedFor: FORWARDED,
  ...o,
});

let databases = 0;

/** Each engine gets a store of its own (a fresh chDB data dir, or its own database on the server), so counts never mix. */
function startFlowstat(env: Env, gateway: 'uws' | 'ws', extraEnv: Readonly<Record<string, string>> = {}): Promise<ServerProcess> {
  return startServerProcess(resolve(SERVERS_DIR, 'flowstat-e2e.js'), [gateway], {
    nodeArgs: ['--expose-gc'],
    env: {
      ...(env.store === 'server' ? { CLICKHOUSE_URL: env.clickhouseUrl, BENCH_E2E_DATABASE: `flowstat_e2e_${process.pid}_${++databases}` } : {}),
      ...extraEnv,
    },
  });
}

interface LoopTime { readonly active: number; readonly idle: number }
interface Loops { readonly main: LoopTime; readonly threads: readonly LoopTime[] }

async function counts(server: ServerProcess): Promise<{ accepted: number; rejected: number; reasons: Record<string, number>; loops: Loops }> {
  const m = await server.command('metrics');
  return { accepted: Number(m.accepted), rejected: Number(m.rejected), reasons: m.reasons as Record<string, number>, loops: m.loops as Loops };
}

/** Share of the time between two readings that a thread's event loop was busy. */
function busyShare(a: LoopTime | undefined, b: LoopTime | undefined): number {
  if (a === undefined || b === undefined) return Number.NaN;
  const active = b.active - a.active;
  const total = active + (b.idle - a.idle);
  return total > 0 ? active / total : Number.NaN;
}

/** Waits for the sinks to hold nothing and counts what ClickHouse has; throws if an accepted event is missing or doubled. */
async function verifyStored(server: ServerProcess, label: string): Promise<{ stored: number; derived: number; accepted: number }> {
  const c = await server.command('count', 600_000);
  if (c.error !== undefined) throw new Error(`${label}: counting the stored events failed: ${String(c.error)}`);
  const { accepted } = await counts(server);
  const stored = Number(c.stored);
  if (stored !== accepted) throw new Error(`${label}: ${accepted} events accepted but ${stored} stored (FINAL) — ${accepted - stored} missing`);
  if (Number(c.distinct) !== stored) throw new Error(`${label}: ${stored} rows but ${String(c.distinct)} distinct event ids`);
  return { stored, derived: Number(c.derived), accepted };
}

interface ThroughputResult {
  readonly load: WsLoadResult;
  /** Events accepted by the server per second inside the measured window. */
  readonly acceptedPerSecond: number;
  /** Accepted events stored, per second, from the first frame until the store had them all. */
  readonly storedPerSecond: number;
  readonly stored: number;
  readonly derived: number;
  readonly rejected: number;
  readonly reasons: Record<string, number>;
  /** Server (and ClickHouse server) CPU per accepted event in the window, µs. */
  readonly cpuUsPerEvent: number;
  readonly clickhouseCpuUsPerEvent: number;
  readonly otherCores: number;
  /** How busy the main thread's event loop was in the window, and each worker thread's (actors.threads). */
  readonly mainBusy: number;
  readonly threadsBusy: readonly number[];
}

async function flowstatThroughput(env: Env, gateway: 'uws' | 'ws', progress: (m: string) => void): Promise<ThroughputResult> {
  const label = `flowstat ${gateway} e2e (${env.store})`;
  const server = await startFlowstat(env, gateway);
  try {
    const chPid = env.store === 'server' ? env.clickhouse!.pid : -1;
    let at0: { accepted: number; cpu: number; ch: number; busy: number; t: number; loops: Loops } = {
      accepted: 0, cpu: 0, ch: 0, busy: 0, t: 0, loops: { main: { active: 0, idle: 0 }, threads: [] },
    };
    let at1 = at0;
    const sample = async (): Promise<typeof at0> => {
      const c = await counts(server);
      return {
        accepted: c.accepted, cpu: server.cpuSeconds(), ch: chPid > 0 ? processCpuSeconds(chPid) : 0,
        busy: machineBusySeconds(), t: performance.now(), loops: c.loops,
      };
    };
    let pending: Promise<void> = Promise.resolve();
    const started = performance.now();
    const load = await runWsLoad(loadOptions(server.port, {}), {
      onPhase(phase) {
        pending = pending.then(async () => {
          if (phase === 'measure-start') at0 = await sample();
          else at1 = await sample();
        });
      },
    });
    await pending;
    if (load.droppedConnections > 0) throw new Error(`${label}: the server closed ${load.droppedConnections} connection(s) (${JSON.stringify(load.serverCloses)})`);
    const end = await counts(server);
    const v = await verifyStored(server, label);
    const storedSeconds = (performance.now() - started) / 1000;
    const seconds = (at1.t - at0.t) / 1000;
    const accepted = at1.accepted - at0.accepted;
    const serverCores = (at1.cpu - at0.cpu) / seconds;
    const chCores = (at1.ch - at0.ch) / seconds;
    const r: ThroughputResult = {
      load,
      acceptedPerSecond: accepted / seconds,
      storedPerSecond: v.stored / storedSeconds,
      stored: v.stored,
      derived: v.derived,
      rejected: end.rejected,
      reasons: end.reasons,
      cpuUsPerEvent: accepted > 0 ? (serverCores * seconds * 1e6) / accepted : Number.NaN,
      clickhouseCpuUsPerEvent: accepted > 0 && chPid > 0 ? (chCores * seconds * 1e6) / accepted : 0,
      otherCores: Math.max(0, (at1.busy - at0.busy) / seconds - serverCores - chCores - load.cpuCores),
      mainBusy: busyShare(at0.loops.main, at1.loops.main),
      threadsBusy: at1.loops.threads.map((t, i) => busyShare(at0.loops.threads[i], t)),
    };
    progress(`${label}: ${round(r.acceptedPerSecond).toLocaleString('en-US')} events/s accepted, ${round(r.storedPerSecond).toLocaleString('en-US')} stored/s; ${v.stored.toLocaleString('en-US')} stored = accepted, ${end.rejected} refused ${JSON.stringify(end.reasons)}`);
    return r;
  } finally {
    await server.stop();
  }
}

async function bareCeiling(progress: (m: string) => void): Promise<WsLoadResult> {
  const server = await startServerProcess(resolve(SERVERS_DIR, 'uws-counter.js'), ['json']);
  try {
    const load = await runWsLoad(loadOptions(server.port, { window: 512, warmupMs: 1_000, durationMs: 4_000 }));
    progress(`bare uWS + JSON.parse: ${round(load.eventsPerSecond).toLocaleString('en-US')} msgs/s`);
    return load;
  } finally {
    await server.stop();
  }
}

async function naiveBaseline(env: Env, progress: (m: string) => void): Promise<{ perSecond: number; inserted: number; acked: number } | null> {
  const script = resolve(SERVERS_DIR, 'naive.js');
  if (!existsSync(script)) return null;
  const server = await startServerProcess(script, [], { env: { CLICKHOUSE_URL: env.clickhouseUrl } });
  let load: WsLoadResult;
  let lines: Record<string, unknown>[];
  try {
    load = await runWsLoad(loadOptions(server.port, { warmupMs: 1_000, durationMs: 5_000 }));
  } finally {
    lines = await server.stop();
  }
  const report = lines.find((l) => typeof l.inserted === 'number');
  if (report === undefined) throw new Error(`naive baseline: no report on exit (${JSON.stringify(lines)})`);
  const inserted = Number(report.inserted);
  if (inserted < load.eventsAcked) throw new Error(`naive baseline: ${load.eventsAcked} acknowledged but ${inserted} inserted`);
  progress(`naive per-event pipeline: ${round(load.eventsPerSecond).toLocaleString('en-US')} events/s (${inserted} inserted)`);
  return { perSecond: load.eventsPerSecond, inserted, acked: load.eventsAcked };
}

interface LatencyResult { readonly rate: number; readonly load: WsLoadResult }

/**
 * Open loop at each of RATES on one engine, after a pass at the first rate
 * on the fresh engine (its JIT, caches and store cold), reported on its own:
 * a fresh engine's first seconds are slower (2026-12-06, chDB, four 4 s
 * passes at 10k/s in a row: p99 232, 102, 27, 40 ms), and the rates are
 * there to show the warm engine. LATENCY_WARMUP_MS of it; 0 skips it.
 */
const LATENCY_WARMUP_MS = Number(process.env.BENCH_E2E_LATENCY_WARMUP_MS ?? 10_000);

async function latencyAtRates(env: Env, progress: (m: string) => void): Promise<{ cold: LatencyResult | null; rates: LatencyResult[] }> {
  const server = await startFlowstat(env, 'uws');
  const out: LatencyResult[] = [];
  let cold: LatencyResult | null = null;
  try {
    if (LATENCY_WARMUP_MS > 0) {
      const rate = RATES[0]!;
      const load = await runWsLoad(loadOptions(server.port, { rate, window: 4_096, warmupMs: 0, durationMs: LATENCY_WARMUP_MS }));
      await verifyStored(server, `latency warm-up at ${rate}/s`);
      const l = load.latencyUs!;
      progress(`latency warm-up, the fresh engine at ${rate.toLocaleString('en-US')} events/s for ${LATENCY_WARMUP_MS / 1000} s: p50 ${round(l.p50 / 1000, 2)} ms, p99 ${round(l.p99 / 1000, 2)} ms`);
      cold = { rate, load };
    }
    for (const rate of RATES) {
      const load = await runWsLoad(loadOptions(server.port, { rate, window: 4_096, warmupMs: 1_000, durationMs: RATE_MS }));
      await verifyStored(server, `latency at ${rate}/s`);
      const l = load.latencyUs!;
      progress(`latency at ${rate.toLocaleString('en-US')} events/s: p50 ${round(l.p50 / 1000, 2)} ms, p99 ${round(l.p99 / 1000, 2)} ms, p999 ${round(l.p999 / 1000, 2)} ms (${l.unanswered} unanswered at the end, ${load.stalls} stalls, ${round(load.eventsPerSecond)} events/s replied in the window)`);
      out.push({ rate, load });
    }
  } finally {
    await server.stop();
  }
  return { cold, rates: out };
}

interface MemoryPoint { readonly users: number; readonly rss: number; readonly heapUsed: number; readonly live: number }

async function memoryPerUser(env: Env, progress: (m: string) => void): Promise<{ base: MemoryPoint; points: MemoryPoint[] }> {
  const server = await startFlowstat(env, 'uws');
  try {
    // Warm-up: JIT, buffers, the store's first batches; then the baseline.
    await runWsLoad(loadOptions(server.port, { freshUsers: 5_000, freshPrefix: 'warm-', once: true }));
    await verifyStored(server, 'memory warm-up');
    const read = async (users: number): Promise<MemoryPoint> => {
      const m = await server.command('mem');
      return { users, rss: Number(m.rss), heapUsed: Number(m.heapUsed), live: Number(m.live) };
    };
    const base = await read(0);
    const points: MemoryPoint[] = [];
    let done = 0;
    for (const users of MEMORY_USERS) {
      await runWsLoad(loadOptions(server.port, { freshUsers: users - done, freshPrefix: `m${done}-`, once: true }));
      await verifyStored(server, `memory at ${users} users`);
      done = users;
      const p = await read(users);
      points.push(p);
      progress(`memory at ${users.toLocaleString('en-US')} users sent: RSS +${round((p.rss - base.rss) / (p.live - base.live))} B/user, heap +${round((p.heapUsed - base.heapUsed) / (p.live - base.live))} B/user (${p.live.toLocaleString('en-US')} live actors)`);
    }
    return { base, points };
  } finally {
    // The ordered shutdown saves every live actor's state to disk first: minutes at 1M users.
    await server.stop(600_000);
  }
}

interface IdlePoint {
  readonly users: number;
  /** Users sent so far (after the warm-up), and acknowledged. */
  readonly sent: number;
  readonly acked: number;
  readonly rss: number;
  readonly rssAnon: number;
  readonly rssFile: number;
  readonly heapUsed: number;
  readonly passivated: number;
  readonly stateBytes: number;
  /** Users sent per second, drains between blocks included (0 for the baseline). */
  readonly perSecond: number;
}

/**
 * Memory per idle user: each fresh user sends one event and goes quiet; the
 * engine passivates it IDLE_TIMEOUT_MS later (its session's end, `sessions`
 * row and churn score stored, its state and churn reminder in lmdb on disk).
 * Memory is read once every user has passivated and every row is stored,
 * after a full GC, at a baseline (after a warm-up) and after each step of
 * IDLE_USERS. The per-user figures are differences between two readings
 * over the users passivated in between, so the engine's fixed memory (chDB's
 * library alone maps ~0.5 GB) is not charged to users.
 */
async function idleMemory(env: Env, progress: (m: string) => void): Promise<{ base: IdlePoint; points: IdlePoint[] }> {
  const server = await startFlowstat(env, 'uws', { BENCH_E2E_IDLE_MS: String(IDLE_TIMEOUT_MS) });
  try {
    let sent = 0;
    let acked = 0;
    /** Sends `users` fresh users in blocks, the sinks drained after each; returns the users sent per second over all of it. */
    const send = async (users: number, prefix: string): Promise<{ sent: number; acked: number; perSecond: number }> => {
      const t0 = performance.now();
      let blockSent = 0;
      let blockAcked = 0;
      for (let done = 0; done < users; done += IDLE_BLOCK_USERS) {
        const load = await runWsLoad(loadOptions(server.port, {
          freshUsers: Math.min(IDLE_BLOCK_USERS, users - done), freshPrefix: `${prefix}${done}-`, once: true, rate: IDLE_RATE, window: 4_096,
        }));
        blockSent += load.eventsSent;
        blockAcked += load.eventsAcked;
        const d = await server.command('drained', 600_000);
        if (d.error !== undefined) throw new Error(`${prefix}: waiting for the sinks to drain failed: ${String(d.error)}`);
      }
      return { sent: blockSent, acked: blockAcked, perSecond: blockSent / ((performance.now() - t0) / 1000) };
    };
    const read = async (users: number, label: string): Promise<IdlePoint> => {
      const idle = await server.command('idle', 900_000);
      if (idle.error !== undefined) throw new Error(`${label}: waiting for the users to passivate failed: ${String(idle.error)}`);
      await verifyStored(server, label);
      const m = await server.command('mem');
      return {
        users, sent, acked, rss: Number(m.rss), rssAnon: Number(m.rssAnon), rssFile: Number(m.rssFile), heapUsed: Number(m.heapUsed),
        passivated: Number(m.passivated), stateBytes: Number(m.stateBytes), perSecond: 0,
      };
    };
    await send(IDLE_WARMUP_USERS, 'idle-warm-');
    const base = await read(0, 'idle warm-up');
    const points: IdlePoint[] = [];
    let done = 0;
    for (const users of IDLE_USERS) {
      const load = await send(users - done, `i${done}-`);
      sent += load.sent;
      acked += load.acked;
      const p = { ...(await read(users, `idle users at ${users}`)), perSecond: load.perSecond };
      done = users;
      points.push(p);
      const per = (a: number, b: number): number => round((a - b) / (p.passivated - base.passivated));
      progress(`idle users at ${users.toLocaleString('en-US')} sent (${round(load.perSecond)} users/s, ${p.passivated - base.passivated} passivated): ` +
        `RSS +${per(p.rss, base.rss)} B/user (anon +${per(p.rssAnon, base.rssAnon)}, file +${per(p.rssFile, base.rssFile)}), heap +${per(p.heapUsed, base.heapUsed)}, on disk +${per(p.stateBytes, base.stateBytes)}`);
    }
    return { base, points };
  } finally {
    await server.stop(600_000);
  }
}

export const e2eScenario: Scenario = {
  name: 'e2e',
  description: 'End to end: WS JSON → enrichment → sessions + 3 funnels + churn → WAL → ClickHouse, every event verified; baselines in the same run',
  async run(progress): Promise<ScenarioResult> {
    const serverMode = process.argv.includes('--server') || process.env.CLICKHOUSE_URL !== undefined;
    let clickhouse: ClickHouseServer | null = null;
    const external = process.env.CLICKHOUSE_URL;
    if (external === undefined) {
      progress('starting a local ClickHouse server (the naive baseline writes to it; with --server, flowstat too)');
      clickhouse = await startClickHouseServer();
    }
    const env: Env = { store: serverMode ? 'server' : 'chdb', clickhouse, clickhouseUrl: external ?? clickhouse!.url };
    try {
      const bare = await bareCeiling(progress);
      const uws = STAGES.has('throughput') ? await flowstatThroughput(env, 'uws', progress) : null;
      const ws = STAGES.has('throughput') ? await flowstatThroughput(env, 'ws', progress) : null;
      const naive = STAGES.has('naive') ? await naiveBaseline(env, progress) : null;
      const latency = STAGES.has('latency') ? await latencyAtRates(env, progress) : { cold: null, rates: [] };
      const memory = STAGES.has('memory') ? await memoryPerUser(env, progress) : null;
      const idle = STAGES.has('idle') ? await idleMemory(env, progress) : null;

      const n = (v: number): string => round(v).toLocaleString('en-US');
      const metrics: Metric[] = [{ name: 'baseline bare uWS + JSON.parse', value: round(bare.eventsPerSecond), unit: 'msgs/s', note: 'the ceiling: no work beyond parsing and a constant reply' }];
      if (uws !== null && ws !== null) metrics.push(
        {
          name: `flowstat stored events/s (${env.store})`, value: round(uws.storedPerSecond), unit: 'events/s',
          target: { op: '>=', value: env.store === 'server' ? TARGETS.storedServer : TARGETS.storedChdb },
          note: `${n(uws.stored)} accepted events all found in ClickHouse exactly once (FINAL count = distinct ids = accepted), plus ${n(uws.derived)} derived events; from the first frame until the store had the last`,
        },
        {
          name: 'flowstat accepted events/s, uws', value: round(uws.acceptedPerSecond), unit: 'events/s',
          note: `closed loop, ${CONNECTIONS} connections × ${WINDOW} in flight; ${uws.rejected} refused ${JSON.stringify(uws.reasons)} (load shedding while the store is behind); other processes used ${round(uws.otherCores, 2)} cores`,
        },
        {
          name: 'flowstat CPU per event, uws', value: round(uws.cpuUsPerEvent, 2), unit: 'µs',
          note: env.store === 'chdb' ? "flowstat's process, chDB's threads included" : `flowstat's process; the ClickHouse server used ${round(uws.clickhouseCpuUsPerEvent, 2)} µs more per event`,
        },
        {
          name: 'main thread busy, uws', value: round(uws.mainBusy * 100, 1), unit: '%',
          note: THREADS === 0
            ? 'share of the window the event loop ran (gateway, actors, sinks: everything is on this thread with actors.threads 0)'
            : `the gateway thread (actors.threads ${THREADS}); worker threads busy ${uws.threadsBusy.map((b) => `${round(b * 100, 1)}%`).join(', ')}`,
        },
        { name: 'flowstat ws-gateway stored events/s', value: round(ws.storedPerSecond), unit: 'events/s', note: `accepted ${n(ws.acceptedPerSecond)}/s; ${n(ws.stored)} stored = accepted` },
        { name: 'ratio flowstat / bare uWS + JSON.parse', value: round(uws.acceptedPerSecond / bare.eventsPerSecond, 3), unit: 'x' },
        { name: 'ratio flowstat ws gateway / flowstat uws', value: round(ws.acceptedPerSecond / uws.acceptedPerSecond, 2), unit: 'x' },
      );
      if (naive !== null && uws !== null) {
        metrics.push({ name: 'baseline naive per-event pipeline', value: round(naive.perSecond), unit: 'events/s', note: `ws + JSON.parse + one INSERT per event (@clickhouse/client) into ClickHouse ${env.clickhouse === null ? '(CLICKHOUSE_URL)' : '18.16'}; ${n(naive.inserted)} inserted ≥ ${n(naive.acked)} acknowledged` });
        metrics.push({ name: 'ratio flowstat / naive pipeline', value: round(uws.storedPerSecond / naive.perSecond, 1), unit: 'x', target: { op: '>=', value: TARGETS.naiveRatio } });
      }
      const ms = (v: number): number => round(v / 1000, 2);
      if (latency.cold !== null) {
        const us = latency.cold.load.latencyUs!;
        metrics.push({ name: `reply latency p99 of a fresh engine at ${n(latency.cold.rate)} events/s`, value: ms(us.p99), unit: 'ms', note: `its first ${LATENCY_WARMUP_MS / 1000} s (JIT, caches and store cold; the warm-up of the rates below): p50 ${ms(us.p50)} ms, max ${ms(us.max)} ms over ${n(us.samples)} frames` });
      }
      for (const l of latency.rates) {
        const us = l.load.latencyUs!;
        const target = l.rate === TARGETS.p99AtRate.rate ? { target: { op: '<=' as const, value: TARGETS.p99AtRate.ms } } : {};
        metrics.push({ name: `reply latency p99 at ${n(l.rate)} events/s`, value: ms(us.p99), unit: 'ms', ...target, note: `p50 ${ms(us.p50)} ms, p999 ${ms(us.p999)} ms, max ${ms(us.max)} ms over ${n(us.samples)} frames due in the window, after the warm-up; open loop, timed from when each frame was due; ${n(us.unanswered)} had no reply 2 s after the window closed and count with the time they had waited (a lower bound); ${l.load.stalls ?? 0} stalls (window full)` });
      }
      if (memory !== null) for (const p of memory.points) {
        const users = p.live - memory.base.live;
        metrics.push({
          name: `RSS per live user at ${n(p.users)} users sent`, value: round((p.rss - memory.base.rss) / users), unit: 'B',
          note: `per live actor (${n(users)} of the users sent were accepted; refused ones got no actor): heap +${round((p.heapUsed - memory.base.heapUsed) / users)} B/user; none passivated yet (idle timeout 30 min), so this is a live user's cost; RSS ${round(p.rss / 2 ** 20)} MiB, baseline ${round(memory.base.rss / 2 ** 20)} MiB`,
        });
      }
      const mib = (b: number): number => round(b / 2 ** 20);
      if (idle !== null) for (const p of idle.points) {
        const users = p.passivated - idle.base.passivated;
        const per = (a: number, b: number): number => round((a - b) / users);
        const last = p.users === IDLE_USERS.at(-1);
        const first = idle.points[0]!;
        const between = last && idle.points.length > 1
          ? `; between ${n(first.users)} and ${n(p.users)} users: RSS +${round((p.rss - first.rss) / (p.passivated - first.passivated))} B/user (anon +${round((p.rssAnon - first.rssAnon) / (p.passivated - first.passivated))}, file +${round((p.rssFile - first.rssFile) / (p.passivated - first.passivated))})`
          : '';
        metrics.push({
          name: `RSS per idle user at ${n(p.users)} users sent`, value: per(p.rss, idle.base.rss), unit: 'B',
          ...(last ? { target: { op: '<=' as const, value: TARGETS.bytesPerUser } } : {}),
          note: `${n(p.sent)} users sent one event each at up to ${n(IDLE_RATE)}/s in blocks of ${n(IDLE_BLOCK_USERS)}, the sinks drained between blocks (${n(p.perSecond)} users/s in all; ${n(p.acked)} acknowledged), ${n(users)} of them passivated ${IDLE_TIMEOUT_MS / 1000} s later (their session ends stored, their state on disk); ` +
            `RssAnon +${per(p.rssAnon, idle.base.rssAnon)} B/user, RssFile +${per(p.rssFile, idle.base.rssFile)} B/user (mapped files: lmdb's map), heap +${per(p.heapUsed, idle.base.heapUsed)} B/user; ` +
            `lmdb on disk +${per(p.stateBytes, idle.base.stateBytes)} B/user${between}; RSS ${mib(p.rss)} MiB (anon ${mib(p.rssAnon)}, file ${mib(p.rssFile)}), baseline ${mib(idle.base.rss)} MiB after a warm-up of ${n(IDLE_WARMUP_USERS)} users`,
        });
      }
      return {
        scenario: 'e2e',
        description: this.description,
        params: {
          store: env.store, connections: CONNECTIONS, windowPerConnection: WINDOW, users: USERS, zipfS: WS_LOAD_DEFAULTS.zipfS,
          seed: WS_LOAD_DEFAULTS.seed, warmupMs: WARMUP_MS, durationMs: DURATION_MS, rates: RATES.join(','), rateMs: RATE_MS, latencyWarmupMs: LATENCY_WARMUP_MS,
          memoryUsers: MEMORY_USERS.join(','), idleUsers: IDLE_USERS.join(','), idleRate: IDLE_RATE, idleWarmupUsers: IDLE_WARMUP_USERS, idleBlockUsers: IDLE_BLOCK_USERS, idleTimeoutMs: IDLE_TIMEOUT_MS, threads: THREADS, durability: 'wal', enrichers: 'ua,geo,page,fingerprint', funnels: 3, churn: true,
          traffic: 'shop (bench/lib/traffic.ts)',
        },
        metrics,
      };
    } finally {
      if (clickhouse !== null) { await clickhouse.stop(); clickhouse.remove(); }
    }
  },
};
