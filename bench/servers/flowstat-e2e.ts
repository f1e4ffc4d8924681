import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseConfig } from '../../engine/config/index.js';
import { startEngine } from '../../engine/main.js';
import { ident } from '../../sinks/clickhouse/store.js';
import { stopOnSigterm } from '../lib/engine-server.js';

/**
 * flowstat as the end-to-end benchmark runs it: the real engine with
 * everything on — default enrichers (ua, geo, page, fingerprint), sessions,
 * three funnels and the churn score, the write-ahead log (a reply means the
 * event is on disk) and the store: embedded chDB, or the ClickHouse server
 * in CLICKHOUSE_URL. Differences from a production config, each for the
 * benchmark's sake: the per-IP rate limit is off (all load comes from
 * 127.0.0.1), 127.0.0.1 is a trusted proxy (so the generator can spread
 * X-Forwarded-For addresses over the geo database), and there is room for
 * 2M live users. BENCH_E2E_IDLE_MS sets actors.idleTimeoutMs (default 30
 * minutes) for the idle-user stage.
 *
 * argv[2]: `uws` or `ws`. Prints {"port":N} when listening. Commands on
 * stdin, one per line, each answered with one JSON line:
 * - `count`: waits until the sinks hold nothing (queued, in flight, spooled),
 *   then counts the stored events: {"stored","distinct","rows","derived"}.
 * - `mem`: collects garbage (node --expose-gc) and reports
 *   {"rss","rssAnon","rssFile","heapUsed","heapTotal","external","live","passivated","stateBytes"}:
 *   RssAnon and RssFile from /proc/self/status (the heap and malloc's pages
 *   vs mapped files: the libraries, chDB's among them, and lmdb's memory
 *   map), live and passivated actors, and the lmdb files' bytes on disk.
 * - `idle`: waits until no actor is live (each has passivated after
 *   BENCH_E2E_IDLE_MS) and the sinks hold nothing, then answers {"live":0}.
 * - `metrics`: {"accepted","rejected"} from the gateway's counters, and
 *   {"loops"}: each thread's event loop busy and idle time (ms) since start.
 * On SIGTERM: the ordered shutdown, then {"stopped":ok}.
 */

const server = process.argv[2] === 'ws' ? 'ws' : 'uws';
const dataDir = mkdtempSync(join(tmpdir(), 'flowstat-e2e-'));
const clickhouseUrl = process.env.CLICKHOUSE_URL;

const E2E_FUNNELS = [
  {
    name: 'checkout', mode: 'ordered', windowMs: 3_600_000,
    steps: [
      { pattern: 'in.gen.shop.view_item' }, { pattern: 'in.gen.shop.add_to_cart' },
      { pattern: 'in.gen.shop.begin_checkout' }, { pattern: 'in.gen.shop.purchase' },
    ],
  },
  { name: 'signup', mode: 'strict', windowMs: 600_000, steps: [{ pattern: 'in.gen.form.start' }, { pattern: 'in.gen.form.submit' }] },
  { name: 'engaged', mode: 'any', windowMs: 1_800_000, steps: [{ pattern: 'in.gen.track.page' }, { pattern: 'in.gen.track.scroll' }, { pattern: 'in.gen.track.click' }] },
];

const threads = Number(process.env.BENCH_E2E_THREADS ?? 0);
const idleMs = process.env.BENCH_E2E_IDLE_MS === undefined ? undefined : Number(process.env.BENCH_E2E_IDLE_MS);
const config = parseConfig({
  server: { host: '127.0.0.1', port: 0 },
  log: { level: 'warn' },
  dataDir,
  gateway: { server, limits: { ratePerSecond: 0 }, trustedProxies: ['127.0.0.1/32'] },
  actors: { maxLiveActors: 2_000_000, threads, ...(idleMs === undefined ? {} : { idleTimeoutMs: idleMs, tickMs: Math.min(1_000, Math.max(50, Math.floor(idleMs / 4))) }) },
  storage: {
    ...(process.env.BENCH_E2E_FLUSH_MS === undefined ? {} : { flushMs: Number(process.env.BENCH_E2E_FLUSH_MS) }),
    ...(process.env.BENCH_E2E_DURABILITY === undefined ? {} : { durability: process.env.BENCH_E2E_DURABILITY }),
  },
  funnels: E2E_FUNNELS,
  churn: { threshold: 0.8 },
  ...(clickhouseUrl === undefined ? {} : { clickhouse: { url: clickhouseUrl, database: process.env.BENCH_E2E_DATABASE ?? 'flowstat_e2e' } }),
}, {});

const running = await startEngine(config);
const write = (value: unknown): void => { process.stdout.write(`${JSON.stringify(value)}\n`); };
write({ port: running.port, server: running.gateway.transport, store: running.storage.store.kind });

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Every acknowledged event is in the WAL: waits until the sinks have written it all. */
async function drained(): Promise<Record<string, unknown>> {
  for (;;) {
    let pending = 0;
    for (const s of Object.values(await running.freshSinkStats())) pending += s.queued + s.inFlight + s.spooled;
    if (pending === 0) return { pending };
    await sleep(100);
  }
}

async function count(): Promise<Record<string, unknown>> {
  await drained();
  const store = await running.storage.store.get();
  const table = `${ident(store.database)}.events`;
  const [final] = await store.query<Record<string, string | number>>(
    `SELECT count() AS stored, uniqExact(event_id) AS distinct_ids FROM ${table} FINAL WHERE channel = 'gen'`,
  );
  const [raw] = await store.query<Record<string, string | number>>(
    `SELECT countIf(channel = 'gen') AS rows, countIf(channel = 'sys') AS derived FROM ${table}`,
  );
  return { stored: Number(final!.stored), distinct: Number(final!.distinct_ids), rows: Number(raw!.rows), derived: Number(raw!.derived) };
}

function metrics(): Record<string, unknown> {
  const c = running.gateway.metrics.counters;
  let accepted = 0;
  let rejected = 0;
  for (const v of Object.values(c.accepted)) accepted += v;
  for (const v of Object.values(c.rejected)) rejected += v;
  // How busy each thread's event loop has been since start (ms): the main thread, and each worker thread.
  return { accepted, rejected, reasons: c.rejected, loops: running.loops() };
}

/** A field of /proc/self/status in bytes (its kB value), or NaN where there is none. */
function statusBytes(text: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(text);
  return m === null ? Number.NaN : Number(m[1]) * 1024;
}

/** Bytes on disk of the lmdb files (data.mdb) under the data dir: the state store and the reminders. */
function lmdbBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += lmdbBytes(path);
    else if (entry.name === 'data.mdb') total += statSync(path).blocks * 512;
  }
  return total;
}

function mem(): Record<string, unknown> {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  const status = readFileSync('/proc/self/status', 'utf8');
  const s = running.engine.system.stats();
  return {
    rss: m.rss, rssAnon: statusBytes(status, 'RssAnon'), rssFile: statusBytes(status, 'RssFile'), heapUsed: m.heapUsed,
    // The heap V8 has committed (live objects or not) and memory outside it held by JS objects (Buffers).
    heapTotal: m.heapTotal, external: m.external,
    live: s.live, passivated: s.passivated, stateBytes: lmdbBytes(dataDir),
  };
}

async function idle(): Promise<Record<string, unknown>> {
  for (;;) {
    const s = running.engine.system.stats();
    if (s.live === 0 && s.queued === 0 && s.busy === 0) break;
    await sleep(100);
  }
  await count(); // waits for the sinks: the passivations' session ends and churn scores are stored
  return { live: 0 };
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const command = line.trim();
  const answer = command === 'count' ? count()
    : command === 'mem' ? Promise.resolve(mem())
    : command === 'metrics' ? Promise.resolve(metrics())
    : command === 'idle' ? idle()
    : command === 'drained' ? drained()
    : Promise.reject(new Error(`unknown command "${command}"`));
  answer.then(write, (err: unknown) => write({ error: err instanceof Error ? err.message : String(err) }));
});
// The benchmark holds our stdin open; when it closes, the benchmark is gone.
process.stdin.once('close', () => process.exit(1));

stopOnSigterm(running, dataDir, 'flowstat e2e server');
