import { spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
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
 * write-ahead log; 100k- and 50k-row batches) and into embedded chDB
 * (RowBinary through a file, JSONEachRow in memory). Each case runs in a
 * child process of its own with a fresh database, and is checked afterwards
 * with SELECT count(). Rows are made a few thousand at a time inside the
 * window, as a producer makes them; that time and CPU are measured and
 * taken out (both figures are reported). Reports rows/s and CPU per row:
 * flowstat's process (chDB's threads included) and the server's, in the
 * window and with the merges the inserts set off — and, since the machine's
 * cores are shared, the rate the measured CPU per row allows on free cores.
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
/** BENCH_SINK_CASES=id,id runs only those cases (while iterating; the recorded run has all). */
const ONLY = process.env.BENCH_SINK_CASES?.split(',').filter((x) => x !== '');
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
}

const ALL_CASES: readonly Case[] = [
  { id: 'server_rowbinary', label: 'server RowBinary', backend: 'server', format: 'RowBinary', durability: 'memory', batchRows: BATCH_ROWS },
  { id: 'server_jsoneachrow', label: 'server JSONEachRow', backend: 'server', format: 'JSONEachRow', durability: 'memory', batchRows: BATCH_ROWS },
  { id: 'server_rowbinary_wal', label: 'server RowBinary + WAL', backend: 'server', format: 'RowBinary', durability: 'wal', batchRows: BATCH_ROWS },
  { id: 'server_rowbinary_50k', label: 'server RowBinary, 50k batches', backend: 'server', format: 'RowBinary', durability: 'memory', batchRows: DEFAULT_BATCH_ROWS },
  { id: 'chdb_rowbinary', label: 'chDB RowBinary', backend: 'chdb', format: 'RowBinary', durability: 'memory', batchRows: BATCH_ROWS },
  { id: 'chdb_jsoneachrow', label: 'chDB JSONEachRow', backend: 'chdb', format: 'JSONEachRow', durability: 'memory', batchRows: BATCH_ROWS },
];
const CASES = ONLY === undefined ? ALL_CASES : ALL_CASES.filter((c) => ONLY.includes(c.id));

interface CaseResult {
  readonly run: RunnerResult;
  /** Rows over the window less the time making them took (an upper estimate: some of it overlapped an insert). */
  readonly rowsPerSecond: number;
  /** Rows over the whole window, row making in (a lower bound). */
  readonly rawRowsPerSecond: number;
  /** What the measured CPU per row allows if this machine's cores did nothing else. */
  readonly cpuBoundRowsPerSecond: number;
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
  const engineUsPerRow = (run.engineCpuSeconds - run.buildCpuSeconds) * 1e6 / ROWS;
  const serverUsPerRow = server ? run.serverCpuSeconds * 1e6 / ROWS : 0;
  const r: CaseResult = {
    run,
    // Making rows overlaps the insert in flight, so taking all of its time out overstates the rate a little.
    rowsPerSecond: ROWS / (run.seconds - run.buildSeconds),
    rawRowsPerSecond: ROWS / run.seconds,
    cpuBoundRowsPerSecond: cpus().length * 1e6 / (engineUsPerRow + serverUsPerRow),
    engineUsPerRow,
    gcPauseUsPerRow: run.gcPauseSeconds * 1e6 / ROWS,
    serverUsPerRow: server ? serverUsPerRow : Number.NaN,
    serverUsPerRowWithMerges,
    otherCores: Math.max(0, run.machineCpuSeconds - run.engineCpuSeconds - (server ? run.serverCpuSeconds : 0)) / run.seconds,
  };
  progress(
    `${c.label}: ${round(r.rowsPerSecond).toLocaleString('en-US')} rows/s in ${round(run.seconds, 2)} s; CPU µs/row: flowstat ${round(r.engineUsPerRow, 2)} (GC pauses ${round(r.gcPauseUsPerRow, 2)})` +
    (server ? `, server ${round(r.serverUsPerRow, 2)} (${round(r.serverUsPerRowWithMerges, 2)} with merges)` : '') +
    `; other processes ${round(r.otherCores, 2)} cores; ${round(run.bodyBytesPerRow)} B/row; rows built in ${round(run.buildSeconds, 1)} s inside the window (taken out; ${round(r.rawRowsPerSecond).toLocaleString('en-US')} rows/s with it in); peak RSS ${round(run.peakRssBytes / 2 ** 20)} MiB`,
  );
  return r;
}

function caseNote(c: Case, r: CaseResult): string {
  const parts = [
    `${round(r.run.seconds, 2)} s wall`,
    `CPU per row: flowstat ${round(r.engineUsPerRow, 2)} µs (main-thread GC pauses ${round(r.gcPauseUsPerRow, 2)} µs)` +
      (c.backend === 'server' ? `, ClickHouse ${round(r.serverUsPerRow, 2)} µs (${round(r.serverUsPerRowWithMerges, 2)} µs counting the merges after the run)` : ' (chDB threads included)'),
    `${round(r.run.bodyBytesPerRow)} B/row ${c.format} body`,
    `${c.batchRows.toLocaleString('en-US')}-row batches, durability ${c.durability}`,
    `peak RSS ${round(r.run.peakRssBytes / 2 ** 20)} MiB`,
    `other processes used ${round(r.otherCores, 2)} cores meanwhile`,
    `${round(r.cpuBoundRowsPerSecond).toLocaleString('en-US')} rows/s is what this CPU per row allows on ${cpus().length} free cores`,
  ];
  parts.unshift(`rows made ${(5_000).toLocaleString('en-US')} at a time inside the window, their ${round(r.run.buildSeconds, 1)} s and ` +
    `${round(r.run.buildCpuSeconds * 1e6 / ROWS, 2)} µs/row CPU taken out; ${round(r.rawRowsPerSecond).toLocaleString('en-US')} rows/s with them in`);
  if (r.run.peakSpooled > 0 || r.run.retries > 0) parts.push(`**spool used** (peak ${r.run.peakSpooled} rows), retries ${r.run.retries}`);
  return parts.join('; ');
}

export const sinksScenario: Scenario = {
  name: 'sinks',
  description: 'ClickHouse sink: 1M realistic events into a local server and chDB, rows/s and CPU per row',
  async run(progress): Promise<ScenarioResult> {
    // Recorded with the results: the cores are shared, and a busy machine shows in every number.
    const loadAtStart = loadavg().map((l) => round(l, 2));
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
    const cores = cpus().length;
    const bestOf = (backend: Case['backend']): Case | undefined => CASES.filter((c) => c.backend === backend)
      .reduce<Case | undefined>((a, b) => (a === undefined || get(b.id).rowsPerSecond > get(a.id).rowsPerSecond ? b : a), undefined);
    const bestServer = bestOf('server');
    if (bestServer !== undefined) {
      const r = get(bestServer.id);
      metrics.push({
        name: 'best server case rows/s',
        value: round(r.rowsPerSecond),
        unit: 'rows/s',
        target: { op: '>=', value: TARGET_SERVER },
        note: `${bestServer.label}. This machine has ${cores} cores, shared by flowstat, the ClickHouse server and (during this run) ` +
          `other processes using ${round(r.otherCores, 2)} cores. CPU per row: flowstat ${round(r.engineUsPerRow, 2)} µs + server ${round(r.serverUsPerRow, 2)} µs, ` +
          `so even with every core free the rate is at most ${round(r.cpuBoundRowsPerSecond).toLocaleString('en-US')} rows/s; ` +
          `${TARGET_SERVER.toLocaleString('en-US')} rows/s would take ${round(TARGET_SERVER * r.serverUsPerRow / 1e6, 2)} cores for the server alone`,
      });
    }
    const bestChdb = bestOf('chdb');
    if (bestChdb !== undefined) {
      const r = get(bestChdb.id);
      metrics.push({
        name: 'best chDB case rows/s',
        value: round(r.rowsPerSecond),
        unit: 'rows/s',
        target: { op: '>=', value: TARGET_CHDB },
        note: `${bestChdb.label}. chDB runs inside flowstat's process: its inserts and the sink's encoding share ${cores} cores ` +
          `(other processes used ${round(r.otherCores, 2)} cores during this run); at ${round(r.engineUsPerRow, 2)} µs CPU per row, ` +
          `${round(r.cpuBoundRowsPerSecond).toLocaleString('en-US')} rows/s is the most ${cores} free cores allow`,
      });
    }
    for (const c of CASES) {
      metrics.push({ name: `${c.label} rows/s (row making taken out)`, value: round(get(c.id).rowsPerSecond), unit: 'rows/s', note: caseNote(c, get(c.id)) });
    }
    for (const c of CASES) {
      metrics.push({
        name: `${c.label} flowstat CPU per row`,
        value: round(get(c.id).engineUsPerRow, 2),
        unit: 'µs/row',
        ...(c.backend === 'chdb' ? { note: "chDB's threads included" } : {}),
      });
    }
    for (const c of CASES.filter((x) => x.backend === 'server')) {
      const r = get(c.id);
      metrics.push({
        name: `${c.label} ClickHouse server CPU per row`,
        value: round(r.serverUsPerRow, 2),
        unit: 'µs/row',
        note: `${round(r.serverUsPerRowWithMerges, 2)} µs/row counting the merges after the run`,
      });
    }
    if (results.has('server_rowbinary') && results.has('server_rowbinary_wal')) {
      const plain = get('server_rowbinary');
      const wal = get('server_rowbinary_wal');
      metrics.push({
        name: 'write-ahead log cost, server RowBinary',
        value: round(wal.engineUsPerRow - plain.engineUsPerRow, 2),
        unit: 'µs/row',
        note: `extra flowstat CPU per row with durability wal (msgpack + append + fdatasync per commit); rows/s ${round(wal.rowsPerSecond / plain.rowsPerSecond, 2)}x of durability memory`,
      });
    }
    return {
      scenario: 'sinks',
      description: this.description,
      params: {
        rows: ROWS, seed: SEED, batchRows: BATCH_ROWS, defaultBatchRows: DEFAULT_BATCH_ROWS, batchBytes: 'unbounded (1 GiB)', flushMs: 'unbounded (600 s; batches close by rows, the last by flush())',
        emit: 'rows made 5k at a time inside the window (time and CPU taken out), one event per emit(), 5k between yields, paused while a batch of rows waits in the sink',
        clickhouseServer: serverVersion, chdb: chdbVersion,
        loadAverageAtStart: `${loadAtStart.join(' / ')} (1 / 5 / 15 min)`,
      },
      metrics,
    };
  },
};
