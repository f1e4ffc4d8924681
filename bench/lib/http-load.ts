import { connect, type Socket } from 'node:net';
import * as hdr from 'hdr-histogram-js';
import { createClickstream, type TrackParams } from './clickstream.js';
import { runLoadChild, serveLoadChild, type LoadHooks } from './load-child.js';

/**
 * HTTP load generator, run in a process of its own (like ws-load.ts) so it
 * does not share an event loop with the server it measures. It speaks
 * HTTP/1.1 over raw keep-alive sockets: every request is built before the
 * clock starts, from the seeded clickstream (Zipf-distributed users), and
 * written as slices of one buffer.
 *
 * Closed loop with pipelining: each connection keeps `pipeline` requests in
 * flight and writes more as responses complete. Every response is parsed —
 * status line, then Content-Length or chunked framing — so the counts by
 * status are exact, and each request's latency (written → last byte of its
 * response read) goes into an HDR histogram (pure JS build).
 *
 * Kinds, on flowstat's HTTP event routes (docs/gateway.md):
 * - `pixel`: `GET /track/{name}.gif?uid=…&url=…&ref=…&title=…&<data fields>`
 * - `post`:  `POST /track/{name}` with a JSON body `{uid, page, data}`
 *
 * `runHttpLoad(options)` forks this file and resolves with its report. The
 * child stops by itself: warm-up, measured window, drain, close.
 */

export type HttpLoadKind = 'pixel' | 'post';

export interface HttpLoadOptions {
  readonly port: number;
  readonly kind: HttpLoadKind;
  readonly connections: number;
  /** Requests in flight per connection (HTTP/1.1 pipelining); 1: one at a time. */
  readonly pipeline: number;
  readonly users: number;
  readonly zipfS: number;
  readonly seed: number;
  /** Distinct requests built ahead; connections cycle through them from different offsets. */
  readonly poolRequests: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

export const HTTP_LOAD_DEFAULTS = Object.freeze({
  kind: 'pixel',
  connections: 50,
  pipeline: 1,
  users: 100_000,
  zipfS: 1.0,
  seed: 20261124,
  poolRequests: 50_000,
  warmupMs: 1_000,
  durationMs: 5_000,
} satisfies Omit<HttpLoadOptions, 'port'>);

export interface HttpLoadResult {
  readonly kind: HttpLoadKind;
  readonly connections: number;
  readonly pipeline: number;
  readonly buildMs: number;
  readonly requestBytes: { readonly min: number; readonly mean: number; readonly max: number };
  readonly measuredSeconds: number;
  /** Responses completed inside the measured window, per second. */
  readonly requestsPerSecond: number;
  /** Responses completed inside the measured window with a 2xx or 3xx status. */
  readonly ok: number;
  /** Responses completed inside the measured window with any other status. */
  readonly errors: number;
  /** Responses completed inside the measured window, by status code. */
  readonly byStatus: Readonly<Record<string, number>>;
  /** The body (first 300 bytes) of the first response with status >= 400, if any. */
  readonly firstErrorBody?: string;
  /** Latency of the requests completed inside the measured window, ms. */
  readonly latencyMs: {
    readonly p50: number; readonly p99: number; readonly p999: number;
    readonly max: number; readonly mean: number;
  };
  /** Whole run (warm-up, window, drain): requests written and responses read. */
  readonly sent: number;
  readonly completed: number;
  /** Requests still without a response when the drain ended (or their connection was closed). */
  readonly unanswered: number;
  /** Connections that ended before the generator closed them. */
  readonly droppedConnections: number;
  /** Responses that could not be parsed (their connection was dropped). */
  readonly parseErrors: number;
  readonly firstParseError?: string;
  /** Generator CPU (user + system) over the measured window, as a fraction of one core. */
  readonly cpuCores: number;
}

export type HttpLoadHooks = LoadHooks;

const CHILD_FLAG = '--http-load-child';
const CONNECT_TIMEOUT_MS = 5_000;
const DRAIN_TIMEOUT_MS = 2_000;
const CLOSE_TIMEOUT_MS = 1_000;
const MAX_HEAD_BYTES = 16_384;
const ERROR_BODY_BYTES = 300;
/** Latencies are recorded in µs, up to a minute. */
const HIGHEST_LATENCY_US = 60_000_000;
const USER_AGENT = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36';

/** Forks the generator, runs it, and returns its report. Kills it if it overruns. */
export function runHttpLoad(options: HttpLoadOptions, hooks: HttpLoadHooks = {}): Promise<HttpLoadResult> {
  return runLoadChild<HttpLoadOptions, HttpLoadResult>('http-load', import.meta.filename, CHILD_FLAG, options, options.warmupMs + options.durationMs + 60_000, hooks);
}

// ---------------------------------------------------------------- requests

interface RequestPool {
  /** Every request, back to back. */
  readonly bytes: Buffer;
  /** offsets[i] is where request i starts; offsets[requests] is the end. */
  readonly offsets: Uint32Array;
  readonly requests: number;
}

function pixelRequest(e: TrackParams, host: string): string {
  const q = new URLSearchParams({ uid: e.uid, url: e.page.url, title: e.page.title });
  if (e.page.ref !== undefined) q.set('ref', e.page.ref);
  for (const [k, v] of Object.entries(e.data)) q.set(k, String(v));
  return `GET /${e.service}/${e.name}.gif?${q.toString()} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: ${USER_AGENT}\r\n` +
    'Accept: image/avif,image/webp,image/*,*/*;q=0.8\r\n\r\n';
}

function postRequest(e: TrackParams, host: string): string {
  const body = JSON.stringify({ uid: e.uid, page: e.page, data: e.data });
  return `POST /${e.service}/${e.name} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: ${USER_AGENT}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

function buildPool(o: HttpLoadOptions): RequestPool {
  const next = createClickstream({ users: o.users, zipfS: o.zipfS, seed: o.seed });
  const host = `127.0.0.1:${o.port}`;
  const build = o.kind === 'pixel' ? pixelRequest : postRequest;
  const requests = Math.max(o.connections * o.pipeline, o.poolRequests);
  const parts: Buffer[] = [];
  let total = 0;
  for (let i = 0; i < requests; i++) {
    const b = Buffer.from(build(next(), host), 'latin1');
    parts.push(b);
    total += b.length;
  }
  const bytes = Buffer.allocUnsafe(total);
  const offsets = new Uint32Array(requests + 1);
  let at = 0;
  for (let i = 0; i < requests; i++) {
    offsets[i] = at;
    parts[i]!.copy(bytes, at);
    at += parts[i]!.length;
  }
  offsets[requests] = at;
  return { bytes, offsets, requests };
}

// ---------------------------------------------------------------- responses

const HEAD = 0;
const BODY = 1;
const CHUNK_SIZE = 2;
const CHUNK_DATA = 3;
const CHUNK_END = 4;
const TRAILER = 5;

const CRLFCRLF = Buffer.from('\r\n\r\n');
const CR = 13;
const LF = 10;
const RE_CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)[ \t]*\r/i;
const RE_CHUNKED = /\r\ntransfer-encoding:[^\r]*chunked/i;
const RE_CLOSE = /\r\nconnection:[^\r]*close/i;
const RE_KEEP_ALIVE = /\r\nconnection:[^\r]*keep-alive/i;

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Splits a byte stream into HTTP/1.1 responses (to GET and POST: every one
 * framed by Content-Length or chunked encoding, or empty by status), in
 * chunks split anywhere. Throws on anything it cannot frame.
 */
class ResponseParser {
  private state = HEAD;
  private remaining = 0;
  private status = 0;
  private close = false;
  private partial: Buffer | null = null;
  private chunkSize = 0;
  private chunkDigits = 0;
  private inExtension = false;
  private lineLength = 0;
  private capture: Buffer[] | null = null;
  private captured = 0;

  constructor(
    private readonly onResponse: (status: number, close: boolean) => void,
    private readonly wantErrorBody: () => boolean,
    private readonly onErrorBody: (body: string) => void,
  ) {}

  push(chunk: Buffer): void {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      switch (this.state) {
        case HEAD: i = this.readHead(chunk, i); break;
        case BODY: {
          const take = Math.min(this.remaining, n - i);
          if (this.capture !== null) this.keep(chunk, i, take);
          this.remaining -= take;
          i += take;
          if (this.remaining === 0) this.finish();
          break;
        }
        case CHUNK_SIZE: {
          const c = chunk[i++]!;
          if (c === LF) {
            if (this.chunkDigits === 0) throw new Error('chunk size line without digits');
            if (this.chunkSize === 0) { this.state = TRAILER; this.lineLength = 0; }
            else { this.state = CHUNK_DATA; this.remaining = this.chunkSize; }
          } else if (c === CR || this.inExtension) {
            // the CR before LF, or a chunk extension: skipped
          } else if (c === 59 /* ; */) {
            this.inExtension = true;
          } else {
            const h = hexValue(c);
            if (h < 0) throw new Error(`bad chunk size byte 0x${c.toString(16)}`);
            if (++this.chunkDigits > 8) throw new Error('chunk size too large');
            this.chunkSize = this.chunkSize * 16 + h;
          }
          break;
        }
        case CHUNK_DATA: {
          const take = Math.min(this.remaining, n - i);
          if (this.capture !== null) this.keep(chunk, i, take);
          this.remaining -= take;
          i += take;
          if (this.remaining === 0) { this.state = CHUNK_END; this.remaining = 2; }
          break;
        }
        case CHUNK_END: {
          const c = chunk[i++]!;
          if (c !== (this.remaining === 2 ? CR : LF)) throw new Error('chunk data not followed by CRLF');
          if (--this.remaining === 0) this.startChunk();
          break;
        }
        case TRAILER: {
          const c = chunk[i++]!;
          if (c === LF) {
            if (this.lineLength === 0) this.finish();
            else this.lineLength = 0;
          } else if (c !== CR) {
            this.lineLength++;
          }
          break;
        }
      }
    }
  }

  /** Reads the status line and headers starting at `from`; returns where the body starts. */
  private readHead(chunk: Buffer, from: number): number {
    let head: Buffer;
    let next: number;
    if (this.partial === null) {
      const end = chunk.indexOf(CRLFCRLF, from);
      if (end < 0) {
        if (chunk.length - from > MAX_HEAD_BYTES) throw new Error('response head too long');
        this.partial = Buffer.from(chunk.subarray(from));
        return chunk.length;
      }
      head = chunk.subarray(from, end + 4);
      next = end + 4;
    } else {
      const have = this.partial.length;
      const joined = Buffer.concat([this.partial, chunk.subarray(from, from + MAX_HEAD_BYTES)]);
      // The terminator may straddle the two parts: search from just before the join.
      const end = joined.indexOf(CRLFCRLF, Math.max(0, have - 3));
      if (end < 0) {
        if (joined.length > MAX_HEAD_BYTES) throw new Error('response head too long');
        this.partial = joined;
        return chunk.length;
      }
      this.partial = null;
      head = joined.subarray(0, end + 4);
      next = from + (end + 4 - have);
    }
    this.parseHead(head);
    return next;
  }

  private parseHead(head: Buffer): void {
    // "HTTP/1.x NNN": the status is the three digits at 9..11.
    if (head.length < 12 || head.toString('latin1', 0, 7) !== 'HTTP/1.' || head[8] !== 32) {
      throw new Error(`not an HTTP/1.x status line: ${JSON.stringify(head.toString('latin1', 0, 40))}`);
    }
    const status = (head[9]! - 48) * 100 + (head[10]! - 48) * 10 + (head[11]! - 48);
    if (!(status >= 100 && status <= 599)) throw new Error(`bad status: ${JSON.stringify(head.toString('latin1', 0, 40))}`);
    const text = head.toString('latin1');
    this.status = status;
    this.close = head[7] === 48 /* HTTP/1.0 */ ? !RE_KEEP_ALIVE.test(text) : RE_CLOSE.test(text);
    if (status < 200) { this.state = HEAD; return; } // interim (100 Continue): the final response follows
    this.capture = status >= 400 && this.wantErrorBody() ? [] : null;
    this.captured = 0;
    if (status === 204 || status === 304) { this.finish(); return; }
    if (RE_CHUNKED.test(text)) { this.startChunk(); return; }
    const length = RE_CONTENT_LENGTH.exec(text);
    if (length === null) throw new Error(`response ${status} has neither Content-Length nor chunked encoding`);
    this.remaining = Number(length[1]);
    if (this.remaining === 0) this.finish();
    else this.state = BODY;
  }

  private startChunk(): void {
    this.state = CHUNK_SIZE;
    this.chunkSize = 0;
    this.chunkDigits = 0;
    this.inExtension = false;
  }

  private keep(chunk: Buffer, from: number, length: number): void {
    const take = Math.min(length, ERROR_BODY_BYTES - this.captured);
    if (take <= 0) return;
    this.capture!.push(Buffer.from(chunk.subarray(from, from + take)));
    this.captured += take;
  }

  private finish(): void {
    this.state = HEAD;
    if (this.capture !== null) {
      this.onErrorBody(Buffer.concat(this.capture).toString('utf8'));
      this.capture = null;
    }
    this.onResponse(this.status, this.close);
  }
}

// ---------------------------------------------------------------- the child

interface Shared {
  measuring: boolean;
  /** Responses in the measured window, by status code (index). */
  readonly statuses: Uint32Array;
  readonly histogram: hdr.Histogram;
  /** When the current data chunk was read (one clock read per chunk). */
  now: number;
  dropped: number;
  parseErrors: number;
  firstParseError: string | undefined;
  firstErrorBody: string | undefined;
}

class LoadConnection {
  running = false;
  ended = false;
  closing = false;
  sent = 0;
  completed = 0;
  /** Send times of the requests in flight, oldest first (a ring of `pipeline` slots). */
  private readonly sentAt: Float64Array;
  private oldest = 0;
  private next: number;
  private drainWaiter: (() => void) | null = null;
  private readonly parser: ResponseParser;

  constructor(
    readonly socket: Socket,
    private readonly pool: RequestPool,
    start: number,
    private readonly pipeline: number,
    private readonly shared: Shared,
  ) {
    this.next = start % pool.requests;
    this.sentAt = new Float64Array(pipeline);
    this.parser = new ResponseParser(
      (status, close) => this.onResponse(status, close),
      () => shared.firstErrorBody === undefined,
      (body) => { shared.firstErrorBody ??= body; },
    );
  }

  get outstanding(): number { return this.sent - this.completed; }

  /** Writes requests up to the pipeline depth. Called at start and after every read. */
  fill(now: number): void {
    if (!this.running || this.ended) return;
    const room = this.pipeline - this.outstanding;
    if (room <= 0) return;
    const { bytes, offsets, requests } = this.pool;
    const from = this.next;
    const to = from + room;
    if (to <= requests) {
      this.socket.write(bytes.subarray(offsets[from]!, offsets[to]!));
    } else {
      this.socket.cork();
      this.socket.write(bytes.subarray(offsets[from]!, offsets[requests]!));
      this.socket.write(bytes.subarray(0, offsets[to - requests]!));
      this.socket.uncork();
    }
    for (let k = 0; k < room; k++) this.sentAt[(this.sent + k) % this.pipeline] = now;
    this.next = to % requests;
    this.sent += room;
  }

  onData(chunk: Buffer): void {
    const s = this.shared;
    s.now = performance.now();
    try {
      this.parser.push(chunk);
    } catch (err) {
      s.parseErrors++;
      s.firstParseError ??= (err as Error).message;
      this.socket.destroy();
      return;
    }
    this.fill(s.now);
    if (this.drainWaiter !== null && this.outstanding === 0) this.drainWaiter();
  }

  private onResponse(status: number, close: boolean): void {
    if (this.outstanding <= 0) throw new Error(`response ${status} to no request`);
    const s = this.shared;
    const sentAt = this.sentAt[this.oldest]!;
    this.oldest = (this.oldest + 1) % this.pipeline;
    this.completed++;
    if (s.measuring) {
      s.statuses[status]!++;
      s.histogram.recordValue(Math.max(1, Math.round((s.now - sentAt) * 1000)));
    }
    // The server will close after this response: what was pipelined behind it is lost.
    if (close) this.running = false;
  }

  drained(): Promise<void> {
    if (this.outstanding === 0 || this.ended) return Promise.resolve();
    return new Promise((resolve) => { this.drainWaiter = resolve; });
  }

  onEnd(): void {
    this.ended = true;
    if (!this.closing) this.shared.dropped++;
    this.drainWaiter?.();
  }
}

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, noDelay: true });
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`connect timed out after ${CONNECT_TIMEOUT_MS} ms`)); }, CONNECT_TIMEOUT_MS);
    socket.once('error', (err) => { clearTimeout(timer); reject(err); });
    socket.once('connect', () => { clearTimeout(timer); socket.removeAllListeners('error'); resolve(socket); });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ms = (us: number): number => Math.round(us) / 1000;

async function generate(o: HttpLoadOptions, phase: (p: 'measure-start' | 'measure-end') => void): Promise<HttpLoadResult> {
  if (!(o.pipeline >= 1 && Number.isInteger(o.pipeline))) throw new Error(`pipeline must be an integer >= 1, got ${o.pipeline}`);
  const t0 = performance.now();
  const pool = buildPool(o);
  const buildMs = performance.now() - t0;
  let minReq = Infinity;
  let maxReq = 0;
  for (let r = 0; r < pool.requests; r++) {
    const n = pool.offsets[r + 1]! - pool.offsets[r]!;
    if (n < minReq) minReq = n;
    if (n > maxReq) maxReq = n;
  }

  const shared: Shared = {
    measuring: false,
    statuses: new Uint32Array(600),
    histogram: hdr.build({
      useWebAssembly: false, bitBucketSize: 32, autoResize: false,
      lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_LATENCY_US, numberOfSignificantValueDigits: 3,
    }),
    now: 0, dropped: 0, parseErrors: 0, firstParseError: undefined, firstErrorBody: undefined,
  };
  const sockets = await Promise.all(Array.from({ length: o.connections }, () => openSocket(o.port)));
  const conns = sockets.map((socket, i) => {
    const c = new LoadConnection(socket, pool, Math.floor(i * pool.requests / o.connections), o.pipeline, shared);
    socket.on('data', (chunk: Buffer) => c.onData(chunk));
    socket.on('close', () => c.onEnd());
    socket.on('error', () => { /* 'close' follows and is counted there */ });
    return c;
  });

  const start = performance.now();
  for (const c of conns) { c.running = true; c.fill(start); }
  await sleep(o.warmupMs);
  phase('measure-start');
  const cpu0 = process.cpuUsage();
  shared.measuring = true;
  const m0 = performance.now();
  await sleep(o.durationMs);
  shared.measuring = false;
  const seconds = (performance.now() - m0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  phase('measure-end');

  for (const c of conns) c.running = false;
  await Promise.race([Promise.all(conns.map((c) => c.drained())), sleep(DRAIN_TIMEOUT_MS)]);
  let sent = 0;
  let completed = 0;
  for (const c of conns) { sent += c.sent; completed += c.completed; }

  const closed = conns.map((c) => new Promise<void>((resolve) => {
    if (c.ended) { resolve(); return; }
    c.socket.once('close', () => resolve());
    c.closing = true;
    c.socket.end();
  }));
  await Promise.race([Promise.all(closed), sleep(CLOSE_TIMEOUT_MS)]);
  for (const c of conns) if (!c.ended) { c.closing = true; c.socket.destroy(); }

  const byStatus: Record<string, number> = {};
  let ok = 0;
  let errors = 0;
  let measured = 0;
  shared.statuses.forEach((count, status) => {
    if (count === 0) return;
    byStatus[String(status)] = count;
    measured += count;
    if (status >= 200 && status < 400) ok += count; else errors += count;
  });
  const h = shared.histogram;
  return {
    kind: o.kind,
    connections: o.connections,
    pipeline: o.pipeline,
    buildMs: Math.round(buildMs),
    requestBytes: { min: minReq, mean: Math.round(pool.bytes.length / pool.requests), max: maxReq },
    measuredSeconds: seconds,
    requestsPerSecond: measured / seconds,
    ok,
    errors,
    byStatus,
    ...(shared.firstErrorBody === undefined ? {} : { firstErrorBody: shared.firstErrorBody }),
    latencyMs: {
      p50: ms(h.getValueAtPercentile(50)),
      p99: ms(h.getValueAtPercentile(99)),
      p999: ms(h.getValueAtPercentile(99.9)),
      max: ms(h.maxValue),
      mean: ms(h.mean),
    },
    sent,
    completed,
    unanswered: sent - completed,
    droppedConnections: shared.dropped,
    parseErrors: shared.parseErrors,
    ...(shared.firstParseError === undefined ? {} : { firstParseError: shared.firstParseError }),
    cpuCores: (cpu.user + cpu.system) / 1e6 / seconds,
  };
}

serveLoadChild(CHILD_FLAG, generate);
