import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createClient, ClickHouseLogLevel } from '@clickhouse/client';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';

/**
 * The naive per-event pipeline, the baseline flowstat is compared against:
 * what most tutorials show. A `ws` server, `JSON.parse` of each message, one
 * `INSERT` per event with @clickhouse/client, and the reply once that insert
 * resolved. Nothing here is tuned, and nothing is slowed down: the client
 * keeps its defaults (keep-alive on, 10 sockets), as a tutorial leaves them.
 *
 *   node naive.js --clickhouse-url http://127.0.0.1:8123 [--database naive] [--port 0]
 *
 * (or CLICKHOUSE_URL / NAIVE_DATABASE in the environment). It creates the
 * database and the table `events` on start, prints {"port":N} when listening,
 * exits when its stdin closes, and on SIGTERM stops accepting, waits for the
 * inserts in flight (at most 10 s), prints
 * {"messages":M,"inserted":K,"failed":F,"unsettled":U} and exits 0 (U: inserts
 * still unresolved when it gave up waiting).
 *
 * Protocol: the JSON-RPC 2.0 `track` frames of bench/lib/ws-load.ts; the reply
 * is {"jsonrpc":"2.0","id":N,"result":{"id","key","uid"}}, or a JSON-RPC error
 * (-32000 when the insert failed).
 */

const { values: args } = parseArgs({
  options: {
    'clickhouse-url': { type: 'string' },
    database: { type: 'string' },
    port: { type: 'string' },
  },
  strict: true,
});
const clickhouseUrl = args['clickhouse-url'] ?? process.env.CLICKHOUSE_URL;
const database = args.database ?? process.env.NAIVE_DATABASE ?? 'naive';
const port = Number(args.port ?? 0);
if (clickhouseUrl === undefined || clickhouseUrl === '') fail('CLICKHOUSE_URL (or --clickhouse-url) is required');
if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(database)) fail(`bad database name "${database}"`);
if (!Number.isInteger(port) || port < 0 || port > 65_535) fail(`bad port "${String(args.port)}"`);

function fail(message: string): never {
  process.stderr.write(`naive: ${message}\n`);
  process.exit(2);
}

/** How long SIGTERM waits for inserts in flight before reporting anyway. */
const STOP_WAIT_MS = 10_000;
const TABLE = `${database}.events`;

// The benchmark holds our stdin open; when it closes, the benchmark is gone.
process.stdin.once('close', () => process.exit(1)).resume();

const client = createClient({ url: clickhouseUrl, log: { level: ClickHouseLogLevel.OFF } });

// Every piece runs on ClickHouse 18.16: IF NOT EXISTS, the MergeTree ORDER BY
// syntax (no PARTITION BY needed), UUID and DateTime columns.
await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
await client.command({
  query: `CREATE TABLE IF NOT EXISTS ${TABLE} (
    event_id UUID, key String, uid String, ts DateTime,
    url String, referrer String, props String
  ) ENGINE = MergeTree ORDER BY (key, ts)`,
});

interface TrackRequest {
  readonly jsonrpc?: unknown;
  readonly method?: unknown;
  readonly id?: unknown;
  readonly params?: {
    readonly service?: unknown;
    readonly name?: unknown;
    readonly uid?: unknown;
    readonly page?: { readonly url?: unknown; readonly ref?: unknown; readonly title?: unknown };
    readonly data?: unknown;
  };
}

let messages = 0;
let inserted = 0;
let failed = 0;
let inFlight = 0;
let idle: (() => void) | null = null;

function reply(socket: WebSocket, id: unknown, body: { result: unknown } | { error: { code: number; message: string } }): void {
  if (id === undefined) return; // a notification: no reply
  socket.send(JSON.stringify({ jsonrpc: '2.0', id, ...body }));
}

const text = (v: unknown): string => (typeof v === 'string' ? v : '');

async function onMessage(socket: WebSocket, data: RawData, isBinary: boolean): Promise<void> {
  messages++;
  let req: TrackRequest;
  try {
    if (isBinary) throw new Error('binary frames are not supported');
    req = JSON.parse(data.toString()) as TrackRequest;
  } catch (err) {
    reply(socket, null, { error: { code: -32700, message: (err as Error).message } });
    return;
  }
  if (req === null || typeof req !== 'object' || Array.isArray(req)) {
    reply(socket, null, { error: { code: -32600, message: 'expected one JSON-RPC request object' } });
    return;
  }
  if (req.method !== 'track') {
    reply(socket, req.id, { error: { code: -32601, message: `unknown method ${JSON.stringify(req.method)}` } });
    return;
  }
  const p = req.params ?? {};
  if (typeof p.service !== 'string' || typeof p.name !== 'string') {
    reply(socket, req.id, { error: { code: -32602, message: 'params.service and params.name must be strings' } });
    return;
  }
  const row = {
    event_id: randomUUID(),
    key: `in.gen.${p.service}.${p.name}`,
    uid: text(p.uid),
    ts: Math.floor(Date.now() / 1000),
    url: text(p.page?.url),
    referrer: text(p.page?.ref),
    props: JSON.stringify(p.data ?? {}),
  };
  inFlight++;
  try {
    await client.insert({ table: TABLE, values: [row], format: 'JSONEachRow' });
    inserted++;
    reply(socket, req.id, { result: { id: row.event_id, key: row.key, uid: row.uid } });
  } catch (err) {
    failed++;
    reply(socket, req.id, { error: { code: -32000, message: (err as Error).message } });
  } finally {
    inFlight--;
    if (inFlight === 0) idle?.();
  }
}

const wss = new WebSocketServer({ host: '127.0.0.1', port });
wss.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => { void onMessage(socket, data, isBinary); });
  socket.on('error', () => { /* the socket closes; its inserts still finish */ });
});
wss.on('error', (err) => fail(`listen: ${err.message}`));
wss.on('listening', () => {
  const address = wss.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address !== null ? address.port : port })}\n`);
});

process.once('SIGTERM', () => {
  // Stop accepting and end the open connections; inserts already sent still finish and are counted.
  wss.close();
  for (const socket of wss.clients) socket.terminate();
  const settled = inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => { idle = resolve; });
  let timer: NodeJS.Timeout | undefined;
  void Promise.race([settled, new Promise<void>((resolve) => { timer = setTimeout(resolve, STOP_WAIT_MS); })])
    .then(() => { clearTimeout(timer); return client.close(); })
    .catch(() => { /* closing the client cannot change the counts */ })
    .then(() => {
      process.stdout.write(`${JSON.stringify({ messages, inserted, failed, unsettled: inFlight })}\n`, () => process.exit(0));
    });
});
