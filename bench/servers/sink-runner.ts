import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { createLogger, createRegistry, createSystemClock, parseConfig } from '../../engine/index.js';
import { createStorage, registerSinkTypes, TABLES, type OutRecord } from '../../sinks/index.js';
import { createJsonEachRowEncoder, createRowBinaryEncoder } from '../../sinks/rows/index.js';
import { machineBusySeconds, processCpuSeconds } from '../lib/cpu.js';
import { eventRows } from '../lib/event-rows.js';
import { gc } from '../lib/measure.js';

/**
 * One case of the sink benchmark, in a process of its own (chDB allows one
 * data directory per process, and each case should start from a clean heap):
 * builds the storage from a config as the engine does, connects and migrates
 * the store, then times handing seeded event rows to the pipeline one event
 * per emit() — as the ingest behaviour does — until the sink reports every
 * row stored. Emission pauses while a batch's worth of rows waits in the
 * sink (one batch in flight, the next filling): a closed loop that measures
 * what the sink sustains. Emitting further ahead would only lengthen the
 * queue (the sink reports itself saturated at 4 sealed batches and spools
 * past 8, which would then measure the spool).
 *
 * The rows are made as a producer makes them, a few thousand at a time just
 * before they are emitted, inside the window; the time and CPU that takes
 * are reported so they can be taken out. (Building all 1M up front made a
 * 1.3 GB live heap that every major GC marked again: ~26 µs a row of GC that
 * no running engine pays.)
 *
 * argv[2]: JSON RunnerArgs. Prints one JSON line {"result": …} and exits.
 */

export interface RunnerArgs {
  /** Server URL; absent for chDB. */
  readonly url?: string;
  readonly database: string;
  readonly format: 'RowBinary' | 'JSONEachRow';
  readonly durability: 'memory' | 'wal';
  readonly batchRows: number;
  readonly rows: number;
  readonly seed: number;
  /** The ClickHouse server's pid, whose CPU is read over the same window; -1 for none. */
  readonly serverPid: number;
}

export interface RunnerResult {
  readonly rows: number;
  readonly seconds: number;
  /** This process's CPU (all threads: chDB's too) over the window, seconds. */
  readonly engineCpuSeconds: number;
  /** Main-thread garbage-collection pauses in the window, seconds (concurrent marking on helper threads is not in here). */
  readonly gcPauseSeconds: number;
  /** The server's CPU over the window, seconds (NaN without a server). */
  readonly serverCpuSeconds: number;
  /** CPU the whole machine used over the window, seconds (to see what other processes took). */
  readonly machineCpuSeconds: number;
  /** The server's CPU counter at the window's start, to measure its merges after the run. */
  readonly serverCpuAtStart: number;
  readonly stored: number;
  /** Rows the sink had on its disk spool at any check (the closed loop should keep this 0). */
  readonly peakSpooled: number;
  readonly retries: number;
  readonly deadLettered: number;
  /** SELECT count() FROM events, read back through the store after the run. */
  readonly counted: number;
  /** Encoded insert body size, bytes per row (first 10k rows), in the format used. */
  readonly bodyBytesPerRow: number;
  /** Building the rows inside the window, wall and CPU seconds. */
  readonly buildSeconds: number;
  readonly buildCpuSeconds: number;
  readonly peakRssBytes: number;
  readonly storeVersion: string;
}

const args = JSON.parse(process.argv[2] ?? '{}') as RunnerArgs;
const dataDir = mkdtempSync(join(tmpdir(), 'flowstat-bench-sink-'));
// The benchmark holds our stdin open; when it closes, the benchmark is gone.
process.stdin.once('close', () => {
  rmSync(dataDir, { recursive: true, force: true });
  process.exit(1);
}).resume();
const CHUNK = 5_000;
const POLL_MS = 2;
const BATCH_BYTES = 1024 * 1024 * 1024;
const FLUSH_MS = 600_000;

async function run(): Promise<RunnerResult> {
  const config = parseConfig({
    dataDir,
    log: { level: 'warn' },
    clickhouse: args.url === undefined ? { database: args.database } : { url: args.url, database: args.database },
    // Batches close by row count only. The sink guesses 512 B a row, so the
    // default 32 MiB batchBytes would close 100k-row batches at 65,536 rows;
    // and a batch left open for flushMs while a GC pause or an encode blocks
    // the loop would be closed part-full (the tail is closed by flush()).
    storage: { durability: args.durability, format: args.format, batchRows: args.batchRows, batchBytes: BATCH_BYTES, flushMs: FLUSH_MS },
  }, {});
  const registry = createRegistry();
  registerSinkTypes(registry);
  const logger = createLogger({ level: 'warn', destination: process.stderr });
  const storage = createStorage(config, registry.resolve(config), { clock: createSystemClock(), logger });
  storage.start();
  const store = await storage.store.get(); // connect and migrate outside the window

  let buildMs = 0;
  let buildCpuUs = 0;
  let made = 0;
  /** The next `n` rows of the workload; later chunks are seeded seed + 1, seed + 2, … */
  const makeRows = (n: number): OutRecord[] => {
    const t = performance.now();
    const c = process.cpuUsage();
    const rows = eventRows(n, args.seed + made++, false).map((row): OutRecord => ({ table: 'events', row }));
    const used = process.cpuUsage(c);
    buildCpuUs += used.user + used.system;
    buildMs += performance.now() - t;
    return rows;
  };

  const format = args.format;
  const encoder = format === 'RowBinary'
    ? createRowBinaryEncoder(TABLES.events, store.capabilities)
    : createJsonEachRowEncoder(TABLES.events, store.capabilities);
  const sample = eventRows(10_000, args.seed, false);
  const bodyBytesPerRow = encoder.encode(sample).body.length / sample.length;

  const { pipeline } = storage;
  const sink = (): ReturnType<typeof storage.sinkStats>[string] => Object.values(storage.sinkStats())[0]!;
  const room = args.batchRows;
  let peakSpooled = 0;
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  gc();
  const gcEntries: { start: number; duration: number }[] = [];
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcEntries.push({ start: e.startTime, duration: e.duration });
  });
  gcObserver.observe({ entryTypes: ['gc'] });

  const serverCpuAtStart = args.serverPid > 0 ? processCpuSeconds(args.serverPid) : Number.NaN;
  const busy0 = machineBusySeconds();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < args.rows;) {
    const s = sink();
    if (s.spooled > peakSpooled) peakSpooled = s.spooled;
    if (s.queued >= room) { await sleep(POLL_MS); continue; }
    const chunk = makeRows(Math.min(CHUNK, args.rows - i));
    for (const record of chunk) pipeline.emit([record], null);
    i += chunk.length;
    await new Promise<void>((r) => setImmediate(r));
  }
  await pipeline.flush();
  while (sink().stored < args.rows) {
    const s = sink();
    if (s.spooled > peakSpooled) peakSpooled = s.spooled;
    if (s.failing) throw new Error(`the sink is failing: ${s.lastError}`);
    await sleep(POLL_MS);
  }
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const serverCpuSeconds = args.serverPid > 0 ? processCpuSeconds(args.serverPid) - serverCpuAtStart : Number.NaN;
  const machineCpuSeconds = machineBusySeconds() - busy0;
  await new Promise<void>((r) => setImmediate(r)); // GC entries are delivered asynchronously
  for (const e of gcObserver.takeRecords()) gcEntries.push({ start: e.startTime, duration: e.duration });
  gcObserver.disconnect();
  let gcPauseMs = 0;
  for (const e of gcEntries) if (e.start >= t0 && e.start < t1) gcPauseMs += e.duration;

  const stats = sink();
  const [row] = await store.query<{ n: string | number }>(`SELECT count() AS n FROM ${args.database}.events`);
  await storage.close();
  return {
    rows: args.rows,
    seconds: (t1 - t0) / 1000,
    engineCpuSeconds: (cpu.user + cpu.system) / 1e6,
    gcPauseSeconds: gcPauseMs / 1000,
    serverCpuSeconds,
    machineCpuSeconds,
    serverCpuAtStart,
    stored: stats.stored,
    peakSpooled,
    retries: stats.retries,
    deadLettered: stats.deadLettered,
    counted: Number(row?.n ?? Number.NaN),
    bodyBytesPerRow,
    buildSeconds: buildMs / 1000,
    buildCpuSeconds: buildCpuUs / 1e6,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    storeVersion: store.capabilities.version,
  };
}

run().then(
  (result) => {
    rmSync(dataDir, { recursive: true, force: true });
    process.stdout.write(`${JSON.stringify({ result })}\n`, () => process.exit(0));
  },
  (err: unknown) => {
    rmSync(dataDir, { recursive: true, force: true });
    process.stderr.write(`sink-runner: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  },
);
