import { resolve } from 'node:path';
import { startClickHouseServer } from '../lib/clickhouse-server.js';
import { machineBusySeconds, processCpuSeconds } from '../lib/cpu.js';
import { runHttpLoad, HTTP_LOAD_DEFAULTS, type HttpLoadKind, type HttpLoadResult } from '../lib/http-load.js';
import { round } from '../lib/measure.js';
import type { Metric, Scenario, ScenarioResult } from '../lib/scenario.js';
import { startServerProcess } from '../lib/server-process.js';
import { runWsLoad, WS_LOAD_DEFAULTS, type WsLoadResult } from '../lib/ws-load.js';

/**
 * Two building blocks of the end-to-end benchmark, each exercised for a few
 * seconds: the HTTP load generator (bench/lib/http-load.ts) against the
 * flowstat gateway without storage (bench/servers/flowstat.ts) — pixel GETs,
 * JSON POSTs, and pipelined pixels — and the naive per-event baseline
 * (bench/servers/naive.ts: ws + JSON.parse + one INSERT per event) on a local
 * ClickHouse 18.16 server, driven by the WebSocket generator, checked
 * afterwards: rows in its table == events acknowledged with a result.
 */

const HTTP_CONNECTIONS = Number(process.env.BENCH_HTTP_CONNECTIONS ?? HTTP_LOAD_DEFAULTS.connections);
const HTTP_DURATION_MS = Number(process.env.BENCH_HTTP_DURATION_MS ?? 3_000);
const PIPELINE_DEPTH = 8;
const NAIVE_CONNECTIONS = Number(process.env.BENCH_NAIVE_CONNECTIONS ?? 20);
/**
 * Events in flight per connection. @clickhouse/client holds 10 sockets, so 80
 * in flight keep every one busy; more would only queue in its agent, and at a
 * few hundred inserts/s the ws generator's 2 s drain would not empty them.
 */
const NAIVE_WINDOW = Number(process.env.BENCH_NAIVE_WINDOW ?? 4);
const NAIVE_DURATION_MS = Number(process.env.BENCH_NAIVE_DURATION_MS ?? 5_000);
const WARMUP_MS = 1_000;
const USERS = 100_000;
const NAIVE_DATABASE = 'naive';
/** Repeat an HTTP case when other processes took more than this many cores during its window… */
const OTHER_CORES_RETRY = 0.25;
/** …unless the HTTP cases have already run this long (the naive case: twice this, since the scenario began). */
const RETRY_BUDGET_MS = 30_000;

const SERVERS_DIR = resolve(import.meta.dirname, '../servers');

interface HttpCase {
  readonly id: string;
  readonly label: string;
  readonly kind: HttpLoadKind;
  readonly pipeline: number;
}

const HTTP_CASES: readonly HttpCase[] = [
  { id: 'pixel', label: 'pixel GET', kind: 'pixel', pipeline: 1 },
  { id: 'post', label: 'JSON POST', kind: 'post', pipeline: 1 },
  { id: 'pixel-p8', label: `pixel GET, pipelined x${PIPELINE_DEPTH}`, kind: 'pixel', pipeline: PIPELINE_DEPTH },
];

interface Window {
  serverCpu0: number; serverCpu1: number;
  extraCpu0: number; extraCpu1: number;
  busy0: number; busy1: number;
  t0: number; t1: number;
}

function windowRecorder(serverPid: number, extraPid?: number): { w: Window; onPhase(phase: 'measure-start' | 'measure-end'): void } {
  const w: Window = { serverCpu0: 0, serverCpu1: 0, extraCpu0: 0, extraCpu1: 0, busy0: 0, busy1: 0, t0: 0, t1: 0 };
  return {
    w,
    onPhase(phase) {
      const cpu = processCpuSeconds(serverPid);
      const extra = extraPid === undefined ? 0 : processCpuSeconds(extraPid);
      if (phase === 'measure-start') { w.serverCpu0 = cpu; w.extraCpu0 = extra; w.busy0 = machineBusySeconds(); w.t0 = performance.now(); }
      else { w.serverCpu1 = cpu; w.extraCpu1 = extra; w.busy1 = machineBusySeconds(); w.t1 = performance.now(); }
    },
  };
}

const seconds = (w: Window): number => (w.t1 - w.t0) / 1000;
const cores = (a: number, b: number, w: Window): number => (b - a) / seconds(w);

async function acceptedEvents(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = /^flowstat_events_accepted_total\{channel="gen"\} (\d+)$/m.exec(text);
  if (m === null) throw new Error('flowstat_events_accepted_total{channel="gen"} missing from /metrics');
  return Number(m[1]);
}

interface HttpCaseResult { readonly load: HttpLoadResult; readonly serverCores: number; readonly otherCores: number }

async function runHttpCases(progress: (message: string) => void): Promise<Map<string, HttpCaseResult>> {
  const server = await startServerProcess(resolve(SERVERS_DIR, 'flowstat.js'), ['uws']);
  const results = new Map<string, HttpCaseResult>();
  try {
    let completed = 0;
    const started = performance.now();
    const runOnce = async (c: HttpCase): Promise<HttpCaseResult> => {
      const rec = windowRecorder(server.pid);
      const load = await runHttpLoad({
        ...HTTP_LOAD_DEFAULTS,
        port: server.port, kind: c.kind, pipeline: c.pipeline, connections: HTTP_CONNECTIONS,
        users: USERS, warmupMs: WARMUP_MS, durationMs: HTTP_DURATION_MS,
      }, rec);
      const serverCores = cores(rec.w.serverCpu0, rec.w.serverCpu1, rec.w);
      const otherCores = Math.max(0, cores(rec.w.busy0, rec.w.busy1, rec.w) - serverCores - load.cpuCores);
      if (load.parseErrors > 0) throw new Error(`${c.label}: ${load.parseErrors} unparseable response(s): ${load.firstParseError}`);
      if (load.droppedConnections > 0) throw new Error(`${c.label}: the server closed ${load.droppedConnections} connection(s)`);
      if (load.errors > 0) throw new Error(`${c.label}: ${load.errors} error response(s) ${JSON.stringify(load.byStatus)}: ${load.firstErrorBody}`);
      if (load.unanswered > 0) throw new Error(`${c.label}: ${load.unanswered} request(s) unanswered after the drain`);
      completed += load.completed;
      progress(
        `flowstat ${c.label}: ${round(load.requestsPerSecond).toLocaleString('en-US')} req/s, ` +
        `p50 ${load.latencyMs.p50} ms, p99 ${load.latencyMs.p99} ms, p99.9 ${load.latencyMs.p999} ms ` +
        `(server ${round(serverCores, 2)} cores, generator ${round(load.cpuCores, 2)}, other ${round(otherCores, 2)}; ` +
        `${load.requestBytes.mean} B/request; ${JSON.stringify(load.byStatus)})`,
      );
      return { load, serverCores, otherCores };
    };
    for (const c of HTTP_CASES) {
      let r = await runOnce(c);
      // The machine may be shared: a run that lost a good part of a core to
      // other processes is repeated once, while the time budget allows.
      if (r.otherCores > OTHER_CORES_RETRY && performance.now() - started < RETRY_BUDGET_MS) {
        progress(`flowstat ${c.label}: other processes used ${round(r.otherCores, 2)} cores during the window; running it again`);
        const again = await runOnce(c);
        if (again.otherCores < r.otherCores) r = again;
      }
      results.set(c.id, r);
    }
    // Every response was a 200 and none is outstanding: the gateway must have accepted exactly that many events.
    const accepted = await acceptedEvents(server.port);
    if (accepted !== completed) throw new Error(`flowstat counted ${accepted} accepted events, the generator ${completed} responses`);
    progress(`flowstat /metrics: ${accepted} events accepted == ${completed} responses read`);
    const lines = await server.stop();
    if (!lines.some((l) => l.stopped === true)) throw new Error(`flowstat: the ordered shutdown did not succeed (${JSON.stringify(lines)})`);
    return results;
  } finally {
    await server.stop(); // no-op when already stopped
  }
}

interface NaiveResult {
  readonly load: WsLoadResult;
  readonly serverCores: number;
  readonly clickhouseCores: number;
  readonly otherCores: number;
  readonly acknowledged: number;
  readonly errorReplies: number;
  readonly report: { messages: number; inserted: number; failed: number; unsettled: number };
  readonly rows: number;
}

async function runNaive(progress: (message: string) => void): Promise<NaiveResult> {
  const ch = await startClickHouseServer();
  try {
    const server = await startServerProcess(resolve(SERVERS_DIR, 'naive.js'), ['--clickhouse-url', ch.url, '--database', NAIVE_DATABASE]);
    let load: WsLoadResult;
    let report: NaiveResult['report'];
    const rec = windowRecorder(server.pid, ch.pid);
    try {
      load = await runWsLoad({
        ...WS_LOAD_DEFAULTS,
        port: server.port, path: '/ws', connections: NAIVE_CONNECTIONS, encoding: 'json', batch: 1,
        users: USERS, window: NAIVE_WINDOW, warmupMs: WARMUP_MS, durationMs: NAIVE_DURATION_MS,
        poolEvents: 20_000,
        // Every reply decoded: the results among them are the acknowledged events.
        sampleEvery: 1,
      }, rec);
      const lines = await server.stop();
      const r = lines.find((l) => typeof l.inserted === 'number');
      if (r === undefined) throw new Error(`naive: no report on stop (${JSON.stringify(lines)})`);
      report = r as unknown as NaiveResult['report'];
    } finally {
      await server.stop();
    }
    const res = await fetch(`${ch.url}/?query=${encodeURIComponent(`SELECT count() FROM ${NAIVE_DATABASE}.events`)}`);
    const body = await res.text();
    if (!res.ok) throw new Error(`count(): ${res.status} ${body}`);
    const rows = Number(body.trim());
    const acknowledged = load.sampled - load.sampleErrors;
    const serverCores = cores(rec.w.serverCpu0, rec.w.serverCpu1, rec.w);
    const clickhouseCores = cores(rec.w.extraCpu0, rec.w.extraCpu1, rec.w);
    const otherCores = Math.max(0, cores(rec.w.busy0, rec.w.busy1, rec.w) - serverCores - clickhouseCores - load.cpuCores);
    progress(
      `naive: ${round(load.eventsPerSecond).toLocaleString('en-US')} events/s ` +
      `(naive ${round(serverCores, 2)} cores, ClickHouse ${round(clickhouseCores, 2)}, generator ${round(load.cpuCores, 2)}, other ${round(otherCores, 2)}); ` +
      `${rows} rows, ${acknowledged} acknowledged, ${load.sampleErrors} error replies, server report ${JSON.stringify(report)}` +
      (load.firstSampleError === undefined ? '' : `; first error reply: ${load.firstSampleError.slice(0, 300)}`),
    );
    if (load.unacked > 0 || load.droppedConnections > 0) throw new Error(`naive: ${load.unacked} events unanswered after the drain, ${load.droppedConnections} connections dropped`);
    if (load.sampled !== load.eventsAcked) throw new Error(`naive: ${load.sampled} replies decoded of ${load.eventsAcked}`);
    if (report.unsettled > 0) throw new Error(`naive: ${report.unsettled} inserts still in flight at stop`);
    if (rows !== report.inserted) throw new Error(`naive: ${rows} rows in the table, the server counted ${report.inserted} inserts`);
    if (rows !== acknowledged) throw new Error(`naive: ${rows} rows in the table but ${acknowledged} events acknowledged`);
    return { load, serverCores, clickhouseCores, otherCores, acknowledged, errorReplies: load.sampleErrors, report, rows };
  } finally {
    await ch.stop();
    ch.remove();
  }
}

export const httpScenario: Scenario = {
  name: 'http',
  description: 'HTTP load generator vs the flowstat gateway (no storage); the naive ws + INSERT-per-event baseline on ClickHouse 18.16',
  async run(progress): Promise<ScenarioResult> {
    const started = performance.now();
    const http = await runHttpCases(progress);
    progress('naive: starting ClickHouse and naive.js');
    let naive = await runNaive(progress);
    if (naive.otherCores > OTHER_CORES_RETRY && performance.now() - started < 2 * RETRY_BUDGET_MS) {
      progress(`naive: other processes used ${round(naive.otherCores, 2)} cores during the window; running it again on a fresh server`);
      const again = await runNaive(progress);
      if (again.otherCores < naive.otherCores) naive = again;
    }
    const metrics: Metric[] = [];
    for (const c of HTTP_CASES) {
      const { load, serverCores, otherCores } = http.get(c.id)!;
      const cpu = `CPU: server ${round(serverCores, 2)}, generator ${round(load.cpuCores, 2)}, other processes ${round(otherCores, 2)} cores`;
      metrics.push({
        name: `flowstat HTTP ${c.label}`, value: round(load.requestsPerSecond), unit: 'req/s',
        note: `${cpu}; ${HTTP_CONNECTIONS} keep-alive connections × ${c.pipeline} in flight; ${load.requestBytes.mean} B/request; statuses ${JSON.stringify(load.byStatus)}`,
      });
      const l = load.latencyMs;
      metrics.push({ name: `flowstat HTTP ${c.label} latency p50`, value: l.p50, unit: 'ms', note: 'request written → its response read, closed loop' });
      metrics.push({ name: `flowstat HTTP ${c.label} latency p99`, value: l.p99, unit: 'ms' });
      metrics.push({ name: `flowstat HTTP ${c.label} latency p99.9`, value: l.p999, unit: 'ms', note: `max ${l.max} ms, mean ${l.mean} ms` });
    }
    metrics.push({
      name: 'naive ws + INSERT per event', value: round(naive.load.eventsPerSecond), unit: 'events/s',
      note: `CPU: naive ${round(naive.serverCores, 2)}, ClickHouse ${round(naive.clickhouseCores, 2)}, generator ${round(naive.load.cpuCores, 2)}, ` +
        `other processes ${round(naive.otherCores, 2)} cores; ${NAIVE_CONNECTIONS} connections × ${NAIVE_WINDOW} in flight`,
    });
    metrics.push({
      name: 'naive rows stored', value: naive.rows, unit: 'rows',
      note: `SELECT count() == ${naive.acknowledged} events acknowledged with a result (checked); ${naive.errorReplies} error replies; ` +
        `server: ${naive.report.messages} messages, ${naive.report.inserted} inserted, ${naive.report.failed} failed`,
    });
    metrics.push({ name: 'naive failed inserts', value: naive.report.failed, unit: 'events' });
    return {
      scenario: 'http',
      description: this.description,
      params: {
        httpConnections: HTTP_CONNECTIONS, pipelineDepth: PIPELINE_DEPTH, httpDurationMs: HTTP_DURATION_MS,
        naiveConnections: NAIVE_CONNECTIONS, naiveWindow: NAIVE_WINDOW, naiveDurationMs: NAIVE_DURATION_MS,
        warmupMs: WARMUP_MS, users: USERS, zipfS: HTTP_LOAD_DEFAULTS.zipfS, seed: HTTP_LOAD_DEFAULTS.seed,
      },
      metrics,
    };
  },
};
