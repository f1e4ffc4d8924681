import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { startClickHouseServer, type ClickHouseServer } from '../lib/clickhouse-server.js';
import { processCpuSeconds } from '../lib/cpu.js';
import { round } from '../lib/measure.js';
import type { Metric, Scenario, ScenarioResult } from '../lib/scenario.js';
import type { RunnerArgs, RunnerResult } from '../servers/sink-runner.js';

/**
 * The ClickHouse sink alone: 1M realistic event rows (seeded; long URLs and
 * user agents, unicode titles, nested props) handed to the storage pipeline
 * as the engine hands them over, until the sink reports all stored — into a
 * local ClickHouse server (RowBinary, JSONEachRow; with and without the
 * write-ahead log; 100k- and 50k-row batches) and into embedded chDB. Each
 * case runs in a child process of its own with a fresh database, and is
 * checked afterwards with SELECT count(). Reports rows/s and CPU per row:
 * flowstat's process (chDB's threads included) and the server's, in the
 * window and with the merges the inserts set off. One more case makes the
 * rows a batch at a time instead of holding all 1M (a 1.3 GB heap that each
 * major GC marks again), to show what the sink itself costs.
 */

const ROWS = Number(process.env.BENCH_SINK_ROWS ?? 1_000_000);
const SEED = 20260514;
/** The issue: 100k-row batches cost the server about 3x less CPU per row than 10k. */
const BATCH_ROWS = 100_000;
const DEFAULT_BATCH_ROWS = 50_000;
const TARGET_SERVER = 200_000;
const TARGET_CHDB = 100_000;
/** A child that has not finished by then is killed and the scenario fails. */
const CASE_TIMEOUT_MS = 240_000;
/** The server counts as idle (merges done) below this share of a core over IDLE_WINDOW_MS. */
const IDLE_CORES = 0.03;
const IDLE_WINDOW_MS = 1_000;
const IDLE_TIMEOUT_MS = 60_000;

const RUNNER = resolve(import.meta.dirname, '../servers/sink-runner.js');

interface Case {
  readonly id: string;
  readonly label: string;
  readonly backend: 'server' | 'chdb';
  readonly format: RunnerArgs['format'];
  readonly durability: RunnerArgs['durability'];
  readonly batchRows: number;
  readonly rowSource: RunnerArgs['rowSource'];
}

const CASES: readonly Case[] = [
  { id: 'server_rowbinary', label: 'server RowBinary', backend: 'server', format: 'RowBinary', durability: 'memory', batchRows: BATCH_ROWS, rowSource: 'upfront' },
  { id: 'server_jsoneachrow', label: 'server JSONEachRow', backend: 'server', format: 'JSONEachRow', durability: 'memory', batchRows: BATCH_ROWS, rowSource: 'upfront' },
  { id: 'server_rowbinary_wal', label: 'server RowBinary + WAL', backend: 'server', format: 'RowBinary', durability: 'wal', batchRows: BATCH_ROWS, rowSource: 'upfront' },
  { id: 'server_rowbinary_50k', label: 'server RowBinary, 50k batches', backend: 'server', format: 'RowBinary', durability: 'memory', batchRows: DEFAULT_BATCH_ROWS, rowSource: 'upfront' },
  { id: 'chdb_jsoneachrow', label: 'chDB JSONEachRow', backend: 'chdb', format: 'JSONEachRow', durability: 'memory', batchRows: BATCH_ROWS, rowSource: 'upfront' },
  // The same as the first, without 1M rows held in the heap (see sink-runner.ts): what the sink itself costs.
  { id: 'server_rowbinary_small_heap', label: 'server RowBinary, rows made per batch', backend: 'server', format: 'RowBinary', durability: 'memory', batchRows: BATCH_ROWS, rowSource: 'per-batch' },
];

interface CaseResult {
  readonly run: RunnerResult;
  /** Rows over the window; with rows made inside it, over the window less the time that took. */
  readonly rowsPerSecond: number;
  /** With rows made inside the window, rows over the whole window (a lower bound). */
  readonly rawRowsPerSecond: number;
  /** flowstat's CPU per row, less what making rows inside the window took. */
  readonly engineUsPerRow: number;
  readonly gcPauseUsPerRow: number;
  /** Server CPU in the window, and until its merges settled; NaN for chDB. */
  readonly serverUsPerRow: number;
  readonly serverUsPerRowWithMerges: number;
  /** Cores other processes (not flowstat, not the server) used on average over the window. */
  readonly otherCores: number;
}

function runRunner(args: RunnerArgs): Promise<RunnerResult> {
  const child = spawn(process.execPath, ['--expose-gc', '--max-old-space-size=8192', RUNNER, JSON.stringify(args)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return new Promise((resolveRun, reject) => {
    let result: RunnerResult | null = null;
    const timer = setTimeout(() => child.kill('SIGKILL'), CASE_TIMEOUT_MS);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const value = JSON.parse(line) as { result?: RunnerResult };
        if (value.result !== undefined) { result = value.result; return; }
      } catch { /* not ours */ }
      process.stderr.write(`${line}\n`);
    });
    child.once('error', (err) => { clearTimeout(timer); reject(err); });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (result !== null && code === 0) resolveRun(result);
      else reject(new Error(`sink runner (${JSON.stringify(args)}) exited with ${code ?? signal}${result === null ? ' without a result' : ''}`));
    });
  });
}

async function serverQuery(url: string, sql: string): Promise<string> {
  const res = await fetch(`${url}/?query=${encodeURIComponent(sql)}`, { method: 'POST' });
  const text = await res.text();
  if (!res.ok) throw new Error(`ClickHouse refused "${sql}": ${text.slice(0, 500)}`);
  return text.trim();
}

/** Waits until the server has finished its background work (merges), so each case starts and ends quiet. */
async function serverIdle(pid: number): Promise<void> {
  const deadline = Date.now() + IDLE_TIMEOUT_MS;
  let last = processCpuSeconds(pid);
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, IDLE_WINDOW_MS));
    const now = processCpuSeconds(pid);
    if ((now - last) / (IDLE_WINDOW_MS / 1000) < IDLE_CORES) return;
    last = now;
  }
}

async function runCase(c: Case, ch: ClickHouseServer, progress: (message: string) => void): Promise<CaseResult> {
  const database = `bench_sinks_${c.id}_${process.pid}`;
  const server = c.backend === 'server';
  if (server) await serverIdle(ch.pid);
  const run = await runRunner({
    ...(server ? { url: ch.url } : {}),
    database,
    format: c.format,
    durability: c.durability,
    batchRows: c.batchRows,
    rows: ROWS,
    seed: SEED,
    rowSource: c.rowSource,
    serverPid: server ? ch.pid : -1,
  });
  // Loudly wrong rather than quietly fast.
  if (run.stored !== ROWS || run.counted !== ROWS) {
    throw new Error(`${c.label}: the sink reported ${run.stored} rows stored and SELECT count() found ${run.counted}, expected ${ROWS}`);
  }
  let serverUsPerRowWithMerges = Number.NaN;
  if (server) {
    const counted = Number(await serverQuery(ch.url, `SELECT count() FROM ${database}.events`));
    if (counted !== ROWS) throw new Error(`${c.label}: the server counts ${counted} rows in ${database}.events, expected ${ROWS}`);
    await serverIdle(ch.pid);
    serverUsPerRowWithMerges = (processCpuSeconds(ch.pid) - run.serverCpuAtStart) * 1e6 / ROWS;
    await serverQuery(ch.url, `DROP DATABASE ${database}`);
  }
  const inWindow = c.rowSource === 'per-batch';
  const r: CaseResult = {
    run,
    // Making rows overlaps the insert in flight, so taking all of its time out overstates the rate a little.
    rowsPerSecond: ROWS / (run.seconds - (inWindow ? run.buildSeconds : 0)),
    rawRowsPerSecond: ROWS / run.seconds,
    engineUsPerRow: (run.engineCpuSeconds - (inWindow ? run.buildCpuSeconds : 0)) * 1e6 / ROWS,
    gcPauseUsPerRow: run.gcPauseSeconds * 1e6 / ROWS,
    serverUsPerRow: server ? run.serverCpuSeconds * 1e6 / ROWS : Number.NaN,
    serverUsPerRowWithMerges,
    otherCores: Math.max(0, run.machineCpuSeconds - run.engineCpuSeconds - (server ? run.serverCpuSeconds : 0)) / run.seconds,
  };
  progress(
    `${c.label}: ${round(r.rowsPerSecond).toLocaleString('en-US')} rows/s in ${round(run.seconds, 2)} s; CPU µs/row: flowstat ${round(r.engineUsPerRow, 2)} (GC pauses ${round(r.gcPauseUsPerRow, 2)})` +
    (server ? `, server ${round(r.serverUsPerRow, 2)} (${round(r.serverUsPerRowWithMerges, 2)} with merges)` : '') +
    `; other processes ${round(r.otherCores, 2)} cores; ${round(run.bodyBytesPerRow)} B/row; rows built in ${round(run.buildSeconds, 1)} s${inWindow ? ' inside the window (taken out)' : ''}; peak RSS ${round(run.peakRssBytes / 2 ** 20)} MiB`,
  );
  return r;
}

function caseNote(c: Case, r: CaseResult): string {
  const parts = [
    `${round(r.run.seconds, 2)} s wall`,
    `CPU per row: flowstat ${round(r.engineUsPerRow, 2)} µs (main-thread GC pauses ${round(r.gcPauseUsPerRow, 2)} µs)` +
      (c.backend === 'server' ? `, ClickHouse ${round(r.serverUsPerRow, 2)} µs (${round(r.serverUsPerRowWithMerges, 2)} µs counting the merges after the run)` : ' (chDB threads included)'),
    `${round(r.run.bodyBytesPerRow)} B/row ${c.backend === 'chdb' ? 'JSONEachRow' : c.format} body`,
    `${c.batchRows.toLocaleString('en-US')}-row batches, durability ${c.durability}`,
    `peak RSS ${round(r.run.peakRssBytes / 2 ** 20)} MiB`,
    `other processes used ${round(r.otherCores, 2)} cores meanwhile`,
  ];
  if (c.rowSource === 'per-batch') {
    parts.unshift(`rows made one batch at a time inside the window, their ${round(r.run.buildSeconds, 1)} s and ` +
      `${round(r.run.buildCpuSeconds * 1e6 / ROWS, 2)} µs/row CPU taken out; ${round(r.rawRowsPerSecond).toLocaleString('en-US')} rows/s with them in`);
  }
  if (r.run.peakSpooled > 0 || r.run.retries > 0) parts.push(`**spool used** (peak ${r.run.peakSpooled} rows), retries ${r.run.retries}`);
  return parts.join('; ');
}

export const sinksScenario: Scenario = {
  name: 'sinks',
  description: 'ClickHouse sink: 1M realistic events into a local server and chDB, rows/s and CPU per row',
  async run(progress): Promise<ScenarioResult> {
    progress('starting ClickHouse server');
    const ch = await startClickHouseServer();
    const results = new Map<string, CaseResult>();
    let serverVersion = 'unknown';
    let chdbVersion = 'unknown';
    try {
      serverVersion = await serverQuery(ch.url, 'SELECT version()');
      for (const c of CASES) {
        progress(`${c.label}: building ${ROWS.toLocaleString('en-US')} rows and inserting`);
        const r = await runCase(c, ch, progress);
        if (c.backend === 'chdb') chdbVersion = r.run.storeVersion;
        results.set(c.id, r);
      }
    } finally {
      await ch.stop();
      ch.remove();
    }

    const get = (id: string): CaseResult => results.get(id)!;
    const metrics: Metric[] = [];
    const serverCases = CASES.filter((c) => c.backend === 'server');
    const best = serverCases.filter((c) => c.rowSource === 'upfront').reduce((a, b) => (get(b.id).rowsPerSecond > get(a.id).rowsPerSecond ? b : a));
    const cores = cpus().length;
    metrics.push({
      name: 'best server case rows/s',
      value: round(get(best.id).rowsPerSecond),
      unit: 'rows/s',
      target: { op: '>=', value: TARGET_SERVER },
      note: `${best.label}. This machine has ${cores} cores, shared by flowstat and the ClickHouse server: ` +
        'flowstat CPU + server CPU per row, not either alone, bounds the rate (and the sink encodes and inserts one batch after the other)',
    });
    for (const c of CASES) {
      const r = get(c.id);
      metrics.push({
        name: c.rowSource === 'per-batch' ? `${c.label} rows/s (row making taken out)` : `${c.label} rows/s`,
        value: round(r.rowsPerSecond),
        unit: 'rows/s',
        ...(c.backend === 'chdb' ? { target: { op: '>=', value: TARGET_CHDB } } : {}),
        note: c.backend === 'chdb'
          ? `${caseNote(c, r)}. chDB runs inside flowstat's process: its inserts compete with the sink's encoding for the same ${cores} cores`
          : caseNote(c, r),
      });
    }
    for (const c of CASES) {
      metrics.push({ name: `${c.label} flowstat CPU per row`, value: round(get(c.id).engineUsPerRow, 2), unit: 'µs/row' });
    }
    for (const c of serverCases) {
      const r = get(c.id);
      metrics.push({
        name: `${c.label} ClickHouse server CPU per row`,
        value: round(r.serverUsPerRow, 2),
        unit: 'µs/row',
        note: `${round(r.serverUsPerRowWithMerges, 2)} µs/row counting the merges after the run`,
      });
    }
    const plain = get('server_rowbinary');
    const wal = get('server_rowbinary_wal');
    const small = get('server_rowbinary_small_heap');
    metrics.push({
      name: 'cost of 1M rows held in the heap, server RowBinary',
      value: round(plain.engineUsPerRow - small.engineUsPerRow, 2),
      unit: 'µs/row',
      note: 'extra flowstat CPU per row with all rows built up front (a 1.3 GB live heap) over rows made a batch at a time: ' +
        'garbage collection — each major GC marks the whole heap, and each 100k-row RowBinary encode allocates ~350 MB of Buffers, which sets them off',
    });
    metrics.push({
      name: 'write-ahead log cost, server RowBinary',
      value: round(wal.engineUsPerRow - plain.engineUsPerRow, 2),
      unit: 'µs/row',
      note: `extra flowstat CPU per row with durability wal (msgpack + append + fsync); rows/s ${round(wal.rowsPerSecond / plain.rowsPerSecond, 2)}x of durability memory`,
    });
    return {
      scenario: 'sinks',
      description: this.description,
      params: {
        rows: ROWS, seed: SEED, batchRows: BATCH_ROWS, defaultBatchRows: DEFAULT_BATCH_ROWS, batchBytes: 'unbounded (1 GiB)', flushMs: 'unbounded (600 s; batches close by rows, the last by flush())',
        emit: 'one event per emit(), 5k between yields, paused while a batch of rows waits in the sink',
        clickhouseServer: serverVersion, chdb: chdbVersion,
      },
      metrics,
    };
  },
};
