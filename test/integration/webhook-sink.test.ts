import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createManualClock, createSilentLogger, createSystemClock, type Clock } from '../../engine/index.js';
import type { DeadLetter } from '../../sinks/batch/index.js';
import type { AckTarget, Sink, SinkRecord } from '../../sinks/contract.js';
import type { TableName } from '../../sinks/schema/types.js';
import { createWebhookSink, type WebhookSinkOptions } from '../../sinks/webhook/sink.js';

/**
 * The webhook sink against a real HTTP receiver on 127.0.0.1. Retries are
 * driven by a manual clock (the sink's backoff timers) or by flush(); only
 * the HTTP exchanges and the spool's fsyncs are real asynchronous I/O.
 */

interface Line { readonly table: string; readonly event_id: string; readonly [field: string]: unknown }
interface Received { readonly status: number; readonly contentType: string | undefined; readonly from: string | undefined; readonly lines: readonly Line[] }

interface Receiver {
  readonly port: number;
  readonly url: string;
  readonly requests: Received[];
  /** Ids in the batches the receiver took (answered 2xx), in arrival order. */
  accepted(): string[];
  /** Resolves once `pred` holds after some request (or right away). */
  until(pred: () => boolean): Promise<void>;
  close(): Promise<void>;
}

type Answer = (lines: readonly Line[], index: number) => number;

const servers: Server[] = [];
const sinks: Sink[] = [];
let spoolDir: string;

beforeEach(() => { spoolDir = mkdtempSync(join(tmpdir(), 'flowstat-webhook-')); });
afterEach(async () => {
  for (const s of sinks.splice(0)) await s.close();
  for (const s of servers.splice(0)) await stopServer(s);
  rmSync(spoolDir, { recursive: true, force: true });
});

async function stopServer(server: Server): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}

async function startReceiver(answer: Answer, port = 0): Promise<Receiver> {
  const requests: Received[] = [];
  let waiters: { pred: () => boolean; resolve: () => void }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const lines = Buffer.concat(chunks).toString('utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Line);
      const status = answer(lines, requests.length);
      const from = req.headers['x-sink'];
      requests.push({ status, contentType: req.headers['content-type'], from: typeof from === 'string' ? from : undefined, lines });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : `refused with ${status}`);
      waiters = waiters.filter((w) => { if (!w.pred()) return true; w.resolve(); return false; });
    });
  });
  servers.push(server);
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, '127.0.0.1', resolve); });
  const bound = (server.address() as AddressInfo).port;
  const accepted = (): string[] => requests.filter((r) => r.status < 300).flatMap((r) => r.lines.map((l) => l.event_id));
  return {
    port: bound,
    url: `http://127.0.0.1:${bound}/hook`,
    requests,
    accepted,
    until: (pred) => (pred() ? Promise.resolve() : new Promise((resolve) => waiters.push({ pred, resolve }))),
    close: () => stopServer(server),
  };
}

/** A port nothing listens on: connections to it are refused. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Counts releases per record, as the write-ahead log would. */
class Acks {
  readonly released = new Map<string, number>();
  target(id: string): AckTarget {
    return { release: (n) => { this.released.set(id, (this.released.get(id) ?? 0) + n); } };
  }
  total(): number {
    let n = 0;
    for (const v of this.released.values()) n += v;
    return n;
  }
}

const id = (i: number): string => `e${String(i).padStart(3, '0')}`;
const ids = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => id(from + i));

function records(acks: Acks, from: number, to: number, table: TableName = 'events', extra: (i: number) => Record<string, unknown> = () => ({})): SinkRecord[] {
  return Array.from({ length: to - from }, (_, k) => {
    const i = from + k;
    return { table, row: { event_id: id(i), n: i, seq: BigInt(i) * 1_000_000_000_000n, ...extra(i) }, ack: acks.target(id(i)) };
  });
}

function spooledFiles(): string[] {
  return readdirSync(spoolDir).filter((f) => f.endsWith('.spool'));
}

interface SinkSetup extends Partial<WebhookSinkOptions> { readonly url: string; readonly clock: Clock }

function startSink(o: SinkSetup, letters: DeadLetter[] = []): Sink {
  const sink = createWebhookSink({
    name: 'test',
    headers: { 'x-sink': 'first' },
    timeoutMs: 5_000,
    maxRows: 100,
    maxBytes: 1 << 24,
    flushMs: 1_000,
    spoolDir,
    spoolMaxBytes: 1 << 24,
    tables: new Set<TableName>(['events', 'sessions']),
    logger: createSilentLogger(),
    deadLetter: (l) => { letters.push(...l); },
    ...o,
  });
  sinks.push(sink);
  return sink;
}

/** Longer than any backoff delay the sink can pick (DEFAULT_BACKOFF.maxMs). */
const PAST_ANY_BACKOFF = 30_000;

describe('webhook sink - batching', () => {
  it('webhook sink - posts batches closed by maxRows as JSON lines with the table and the row fields', async () => {
    const receiver = await startReceiver(() => 200);
    const acks = new Acks();
    const sink = startSink({ url: receiver.url, clock: createManualClock(), maxRows: 4 });

    sink.write(records(acks, 0, 10));
    sink.write(records(acks, 100, 101, 'identities')); // not a table this sink takes
    expect(acks.released.get(id(100))).toBe(1);
    // Two full batches go without a flush; the last two rows wait for more.
    await receiver.until(() => receiver.accepted().length >= 8);
    expect(receiver.requests.map((r) => r.lines.length)).toEqual([4, 4]);
    expect(receiver.requests[0]!.contentType).toBe('application/x-ndjson');
    expect(receiver.requests[0]!.lines[1]).toEqual({ table: 'events', event_id: id(1), n: 1, seq: '1000000000000' });

    await sink.flush(); // the manual clock never moved: only this sends the last two
    expect(receiver.requests.map((r) => r.lines.length)).toEqual([4, 4, 2]);
    expect(receiver.accepted()).toEqual(ids(0, 10));
    expect(receiver.requests.flatMap((r) => r.lines).every((l) => l.table === 'events')).toBe(true);
    for (const i of ids(0, 10)) expect(acks.released.get(i)).toBe(1);
    expect(sink.stats()).toMatchObject({ queued: 0, inFlight: 0, stored: 10, spooled: 0, failing: false });
  });

  it('webhook sink - sends a batch once it is flushMs old, without a flush call (system clock)', async () => {
    const receiver = await startReceiver(() => 200);
    const acks = new Acks();
    const sink = startSink({ url: receiver.url, clock: createSystemClock(), flushMs: 50 });

    const start = Date.now();
    sink.write(records(acks, 0, 3));
    await receiver.until(() => receiver.accepted().length >= 3);
    expect(Date.now() - start).toBeGreaterThanOrEqual(50);
    expect(receiver.requests.map((r) => r.lines.map((l) => l.event_id))).toEqual([ids(0, 3)]);
  });

  it('webhook sink - holds a batch younger than flushMs and seals it on the next tick past it', async () => {
    const receiver = await startReceiver(() => 200);
    const clock = createManualClock();
    const sink = startSink({ url: receiver.url, clock, flushMs: 100 });

    sink.write(records(new Acks(), 0, 3, 'sessions'));
    clock.advance(99);
    expect(sink.stats()).toMatchObject({ queued: 3, inFlight: 0 });
    clock.advance(25); // the age check runs every flushMs / 4
    expect(sink.stats().inFlight).toBe(3);
    await receiver.until(() => receiver.accepted().length >= 3);
    expect(receiver.requests[0]!.lines.map((l) => l.table)).toEqual(['sessions', 'sessions', 'sessions']);
  });
});

describe('webhook sink - failures', () => {
  it('webhook sink - retries 503 answers until the receiver recovers; every record arrives and is acknowledged once', async () => {
    const receiver = await startReceiver((_lines, index) => (index < 3 ? 503 : 200));
    const acks = new Acks();
    const clock = createManualClock();
    const sink = startSink({ url: receiver.url, clock, maxRows: 5 });

    sink.write(records(acks, 0, 10));
    await sink.flush(); // resolves once the data is safe on disk, not delivered
    expect(sink.stats()).toMatchObject({ failing: true, spooled: 10, queued: 0, inFlight: 0, retries: 1, stored: 0 });
    expect(sink.stats().lastError).toMatch(/503/);
    expect(spooledFiles()).toHaveLength(2);
    expect(acks.total()).toBe(0);

    // More data while failing goes behind it, to disk.
    sink.write(records(acks, 10, 13));
    await sink.flush(); // also retries now: the second 503
    expect(sink.stats()).toMatchObject({ failing: true, spooled: 13, retries: 2 });

    clock.advance(PAST_ANY_BACKOFF); // the backoff timer retries: the third 503
    await sink.flush();
    expect(receiver.requests.map((r) => r.status)).toEqual([503, 503, 503]);
    expect(sink.stats()).toMatchObject({ failing: true, spooled: 13, retries: 3 });
    expect(acks.total()).toBe(0);

    clock.advance(PAST_ANY_BACKOFF); // the receiver is back: this retry delivers everything
    await sink.flush();
    expect(receiver.requests.map((r) => r.status)).toEqual([503, 503, 503, 200, 200, 200]);
    expect(sink.stats()).toMatchObject({ failing: false, spooled: 0, spooledBytes: 0, queued: 0, retries: 3, stored: 13 });
    expect(spooledFiles()).toEqual([]);

    // Delivered in order; a refused batch is not taken, so a whole-batch retry leaves no duplicates here.
    expect(receiver.accepted()).toEqual(ids(0, 13));
    for (const i of ids(0, 13)) expect(acks.released.get(i)).toBe(1);
    expect(acks.total()).toBe(13);
  });

  it('webhook sink - rows the receiver refuses with 400 go to the dead letter with their ack; the rest are delivered', async () => {
    const poison = new Set([id(2), id(5)]);
    const receiver = await startReceiver((lines) => (lines.some((l) => l.poison === true) ? 400 : 200));
    const acks = new Acks();
    const letters: DeadLetter[] = [];
    const sink = startSink({ url: receiver.url, clock: createManualClock(), maxRows: 8 }, letters);

    sink.write(records(acks, 0, 8, 'events', (i) => (poison.has(id(i)) ? { poison: true } : {})));
    await sink.flush();

    expect(letters.map((l) => l.row.event_id)).toEqual([id(2), id(5)]);
    for (const l of letters) {
      expect(l.table).toBe('events');
      expect(l.code).toBe('http_400');
      expect(l.reason).toMatch(/400/);
      // The dead letter carries the record's acknowledgement: whoever stores it releases it.
      expect(acks.released.has(String(l.row.event_id))).toBe(false);
      l.ack!.release(1);
    }
    expect(receiver.accepted()).toEqual(ids(0, 8).filter((i) => !poison.has(i)));
    for (const i of ids(0, 8)) expect(acks.released.get(i)).toBe(1);
    expect(sink.stats()).toMatchObject({ stored: 6, deadLettered: 2, failing: false, spooled: 0, retries: 0 });
  });

  it('webhook sink - with the receiver down, flush() resolves with the data spooled, and a backoff retry delivers it once the receiver is up', async () => {
    const port = await closedPort();
    const acks = new Acks();
    const clock = createManualClock();
    const sink = startSink({ url: `http://127.0.0.1:${port}/hook`, clock });

    sink.write(records(acks, 0, 6));
    await sink.flush();
    expect(sink.stats()).toMatchObject({ failing: true, spooled: 6, queued: 0, retries: 1 });
    expect(sink.stats().spooledBytes).toBeGreaterThan(0);
    expect(sink.stats().lastError).toMatch(/^network/);
    expect(spooledFiles()).toHaveLength(1);
    expect(acks.total()).toBe(0);

    const receiver = await startReceiver(() => 200, port);
    clock.advance(PAST_ANY_BACKOFF);
    await receiver.until(() => receiver.accepted().length >= 6);
    await sink.flush();
    expect(receiver.accepted()).toEqual(ids(0, 6));
    expect(sink.stats()).toMatchObject({ failing: false, spooled: 0, stored: 6, retries: 1 });
    expect(spooledFiles()).toEqual([]);
    for (const i of ids(0, 6)) expect(acks.released.get(i)).toBe(1);
  });

  it('webhook sink - close() spools what it cannot deliver and a new sink on the same spool directory delivers it', async () => {
    const port = await closedPort();
    const url = `http://127.0.0.1:${port}/hook`;
    const acks = new Acks();
    const first = startSink({ url, clock: createManualClock() });

    first.write(records(acks, 0, 5));
    await first.close();
    expect(first.stats()).toMatchObject({ failing: true, spooled: 5, queued: 0, inFlight: 0 });
    expect(spooledFiles()).toHaveLength(1);

    const receiver = await startReceiver(() => 200, port);
    const second = startSink({ url, clock: createManualClock(), headers: { 'x-sink': 'second' } });
    await receiver.until(() => receiver.accepted().length >= 5);
    await second.close();

    expect(receiver.accepted()).toEqual(ids(0, 5));
    // The closed sink sent nothing more; the new one found the batch on disk.
    expect(receiver.requests.map((r) => r.from)).toEqual(['second']);
    expect(second.stats()).toMatchObject({ stored: 5, spooled: 0, failing: false });
    expect(spooledFiles()).toEqual([]);
    // Not stored by the sink that had them, so never acknowledged there (the write-ahead log replays them).
    expect(acks.total()).toBe(0);
  });
});
