import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import * as hdr from 'hdr-histogram-js';
import { Packr } from 'msgpackr';
import { createClickstream } from './clickstream.js';
import { runLoadChild, serveLoadChild, type LoadHooks } from './load-child.js';
import { mulberry32 } from './random.js';
import { workload } from './traffic.js';
import {
  acceptKey, encodeClientFrame, ServerFrameCounter,
  OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT,
} from './ws-frames.js';

/**
 * WebSocket load generator, run in a process of its own so it does not share
 * an event loop with the server it measures. It speaks WebSocket over raw
 * sockets (the `ws` client tops out near 100k messages/s and would measure
 * itself): every frame is built and masked before the clock starts, then
 * written as slices of one buffer, many frames per write.
 *
 * Closed loop: each connection keeps at most `window` events unacknowledged
 * and refills as replies arrive, so nothing buffers without bound and the
 * rate measured is the rate the server answers. Replies are counted, not
 * decoded; one in `sampleEvery` is decoded and checked to be a result.
 *
 * `runWsLoad(options)` forks this file and resolves with its report. The
 * child stops by itself: warm-up, measured window, drain, close.
 */

export interface WsLoadOptions {
  readonly port: number;
  /** Upgrade path; the connection index is appended as `uid=c<i>`. */
  readonly path: string;
  readonly connections: number;
  /**
   * `msgpack-sequential`: msgpackr records, one sequential stream per
   * connection (`/ws?msgpack=sequential` is added to the path): each
   * connection first sends the pool's frames that define record structures,
   * then pool frames that carry values only.
   */
  readonly encoding: 'json' | 'msgpack' | 'msgpack-sequential';
  /** 1: one request per frame; n > 1: JSON-RPC batches of n. */
  readonly batch: number;
  readonly users: number;
  readonly zipfS: number;
  readonly seed: number;
  /** Unacknowledged events allowed per connection. */
  readonly window: number;
  /** Distinct events built ahead; connections cycle through them from different offsets. */
  readonly poolEvents: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Decode one reply in this many and check it is a JSON-RPC result (0: never). */
  readonly sampleEvery: number;
  /**
   * What the frames carry: `clickstream` (page views and clicks, the
   * gateway scenario's mix) or `shop` (bench/lib/traffic.ts: real user agents
   * in each event, referrers, campaigns, scrolls, clicks and shop events).
   */
  readonly traffic?: 'clickstream' | 'shop';
  /**
   * Open loop: send this many events per second in all, on schedule, whatever
   * the replies do, and time each reply from when its frame was due (so a
   * stalled server shows in the latency). 0 or absent: closed loop at the
   * most the window allows.
   */
  readonly rate?: number;
  /** Send the pool exactly once, split over the connections, then drain (warm-up and duration are ignored); with `rate`, on schedule. */
  readonly once?: boolean;
  /** A pool of one event for each of this many new users (uids `${freshPrefix}${i}`), instead of the traffic mix. */
  readonly freshUsers?: number;
  readonly freshPrefix?: string;
  /** X-Forwarded-For of connection i: forwardedFor[i % length] (the server must trust 127.0.0.1). */
  readonly forwardedFor?: readonly string[];
}

export const WS_LOAD_DEFAULTS = Object.freeze({
  connections: 100,
  encoding: 'json',
  batch: 1,
  users: 100_000,
  zipfS: 1.0,
  seed: 20261124,
  window: 512,
  poolEvents: 100_000,
  warmupMs: 1_000,
  durationMs: 5_000,
  sampleEvery: 1_024,
} satisfies Omit<WsLoadOptions, 'port' | 'path'>);

export interface WsLoadResult {
  readonly connections: number;
  readonly buildMs: number;
  readonly frameBytes: { readonly min: number; readonly mean: number; readonly max: number };
  readonly measuredSeconds: number;
  /** Events acknowledged inside the measured window, per second. */
  readonly eventsPerSecond: number;
  readonly framesPerSecond: number;
  readonly eventsSent: number;
  readonly eventsAcked: number;
  readonly sampled: number;
  readonly sampleErrors: number;
  readonly firstSampleError?: string;
  /** Close frames received from the server, by code. */
  readonly serverCloses: Readonly<Record<string, number>>;
  /** Connections that ended before the generator closed them. */
  readonly droppedConnections: number;
  /** Events still unacknowledged when the drain gave up. */
  readonly unacked: number;
  /** Generator CPU (user + system) over the measured window, as a fraction of one core. */
  readonly cpuCores: number;
  /** Open loop only: reply latency of frames due inside the measured window, µs. */
  readonly latencyUs?: {
    readonly p50: number; readonly p99: number; readonly p999: number; readonly max: number; readonly samples: number;
    /** Frames due in the window with no reply by the end of the drain: in the histogram at the time they had waited (a lower bound). */
    readonly unanswered: number;
  };
  /** Open loop only: times a connection had a full window and skipped frames that were due (the server fell behind). */
  readonly stalls?: number;
}

export type WsLoadHooks = LoadHooks;

const CHILD_FLAG = '--ws-load-child';
const HANDSHAKE_TIMEOUT_MS = 5_000;
const DRAIN_TIMEOUT_MS = 2_000;
const CLOSE_TIMEOUT_MS = 1_000;

/** Forks the generator, runs it, and returns its report. Kills it if it overruns. */
export function runWsLoad(options: WsLoadOptions, hooks: WsLoadHooks = {}): Promise<WsLoadResult> {
  return runLoadChild<WsLoadOptions, WsLoadResult>('ws-load', import.meta.filename, CHILD_FLAG, options,
    // A once-through pool ends when every frame is answered, however long that takes (bounded all the same).
    options.once === true ? 30 * 60_000 : options.warmupMs + options.durationMs + 60_000, hooks);
}

// ---------------------------------------------------------------- the child

interface FramePool {
  /** Every frame, back to back. */
  readonly bytes: Buffer;
  /** msgpack-sequential: the frames each connection sends first, which define the record structures the pool's frames use. */
  readonly preamble: { readonly bytes: Buffer; readonly frames: number } | null;
  /** offsets[i] is where frame i starts; offsets[frames] is the end. */
  readonly offsets: Uint32Array;
  readonly frames: number;
}

/** The events of the pool, as `track` params. */
function trafficParams(o: WsLoadOptions): () => Record<string, unknown> {
  if (o.freshUsers !== undefined) {
    let i = 0;
    const prefix = o.freshPrefix ?? 'fresh-';
    return () => ({ service: 'track', name: 'page', uid: `${prefix}${i++}`, page: { url: 'https://shop.example.com/', title: 'Shop Example' } });
  }
  if (o.traffic !== 'shop') return createClickstream({ users: o.users, zipfS: o.zipfS, seed: o.seed }) as unknown as () => Record<string, unknown>;
  const w = workload({
    events: o.poolEvents, users: o.users, uas: 10_000, botShare: 0.03, ips: 10_000, ipv6Share: 0.1, zipfS: o.zipfS, seed: o.seed,
    followUpKeys: SHOP_FOLLOW_UPS,
  });
  const it = w.inputs()[Symbol.iterator]();
  return () => {
    const e = it.next().value!;
    const [, , service, name] = e.key.split('.');
    const page: Record<string, unknown> = { url: e.pageUrl, title: e.pageTitle };
    if (e.pageReferrer !== '') page.ref = e.pageReferrer;
    return { service, name, uid: e.uid, page, ua: e.userAgent };
  };
}

/** Follow-up events of the `shop` mix: scrolls and clicks, a form, and the steps of a checkout funnel. */
export const SHOP_FOLLOW_UPS: readonly string[] = [
  'in.gen.track.scroll', 'in.gen.track.scroll', 'in.gen.track.click', 'in.gen.track.click', 'in.gen.track.click',
  'in.gen.form.start', 'in.gen.form.submit',
  'in.gen.shop.view_item', 'in.gen.shop.view_item', 'in.gen.shop.add_to_cart', 'in.gen.shop.begin_checkout', 'in.gen.shop.purchase',
];

function buildPool(o: WsLoadOptions): FramePool {
  const next = trafficParams(o);
  const maskRand = mulberry32(o.seed ^ 0x5bd1e995);
  const packr = new Packr({ useRecords: false });
  const sequential = o.encoding === 'msgpack-sequential' ? new SequentialPool() : null;
  const events = o.freshUsers ?? o.poolEvents;
  const frames = Math.max(o.connections, Math.ceil(events / o.batch));
  const parts: Buffer[] = [];
  const mask = new Uint8Array(4);
  const view = new DataView(mask.buffer);
  let total = 0;
  for (let f = 0; f < frames; f++) {
    const requests = [];
    for (let b = 0; b < o.batch; b++) {
      requests.push({ jsonrpc: '2.0', method: 'track', params: next(), id: f * o.batch + b + 1 });
    }
    const message = o.batch === 1 ? requests[0] : requests;
    view.setUint32(0, Math.floor(maskRand() * 2 ** 32));
    const frame = o.encoding === 'json'
      ? encodeClientFrame(OP_TEXT, Buffer.from(JSON.stringify(message)), mask)
      : sequential !== null ? sequential.add(message)
      : encodeClientFrame(OP_BINARY, packr.pack(message), mask);
    parts.push(frame);
    total += frame.length;
  }
  if (sequential !== null) {
    // Packed again, now that every structure is defined: values only.
    parts.length = 0;
    total = 0;
    for (const frame of sequential.values(mask, view, maskRand)) { parts.push(frame); total += frame.length; }
  }
  const bytes = Buffer.allocUnsafe(total);
  const offsets = new Uint32Array(frames + 1);
  let at = 0;
  for (let f = 0; f < frames; f++) {
    offsets[f] = at;
    parts[f]!.copy(bytes, at);
    at += parts[f]!.length;
  }
  offsets[frames] = at;
  return { bytes, offsets, frames, preamble: sequential?.preamble ?? null };
}

/**
 * The pool for msgpack-sequential. One Packr({ sequential: true }) packs
 * every message twice: the first pass defines each structure where it first
 * appears (those frames, in order, are the preamble: a server that reads
 * them knows every structure), the second pass refers to them only. Any
 * connection may then start anywhere in the pool after its preamble.
 */
class SequentialPool {
  private readonly packr = new Packr({ sequential: true });
  private readonly messages: unknown[] = [];
  private readonly firstPass: number[] = [];
  private readonly defining: Uint8Array[] = [];
  preamble: { bytes: Buffer; frames: number } | null = null;

  /** First pass: returns an empty placeholder (the pool's frames come from values()). */
  add(message: unknown): Buffer {
    const bytes = this.packr.pack(message);
    this.messages.push(message);
    this.firstPass.push(bytes.length);
    // Copied: the Packr reuses its buffer.
    this.defining.push(Uint8Array.prototype.slice.call(bytes));
    return Buffer.alloc(0);
  }

  *values(mask: Uint8Array, view: DataView, rand: () => number): Generator<Buffer> {
    // msgpackr's next record id. Had the first pass met more shapes than the Packr keeps (64), it
    // would have cycled, and this pass would define the evicted ones again: the id would move.
    const nextId = (): number => (this.packr as unknown as { structures: { nextId?: number } }).structures.nextId ?? 0x40;
    const defined = nextId();
    const preamble: Buffer[] = [];
    for (let i = 0; i < this.messages.length; i++) {
      const bytes = this.packr.pack(this.messages[i]);
      if (bytes.length !== this.firstPass[i]) {
        view.setUint32(0, Math.floor(rand() * 2 ** 32));
        preamble.push(encodeClientFrame(OP_BINARY, Buffer.from(this.defining[i]!), mask));
      }
      view.setUint32(0, Math.floor(rand() * 2 ** 32));
      yield encodeClientFrame(OP_BINARY, bytes, mask);
    }
    if (nextId() !== defined) throw new Error('msgpack-sequential pool: the second pass defined structures again (more shapes than the 64 a Packr keeps)');
    this.defining.length = 0;
    this.preamble = { bytes: Buffer.concat(preamble), frames: preamble.length };
  }
}

function isResult(value: unknown): boolean {
  return value !== null && typeof value === 'object' && 'result' in value;
}

class LoadConnection {
  sentFrames = 0;
  running = false;
  ended = false;
  closing = false;
  readonly counter: ServerFrameCounter;
  private next: number;
  private drainWaiter: (() => void) | null = null;

  /** Open loop: when each unanswered frame was due (ms, performance.now()), oldest first. */
  private readonly due: Float64Array;
  private dueHead = 0;
  /** Frames this connection may still send (`once`); Infinity otherwise. */
  private left: number;

  constructor(
    readonly socket: Socket,
    private readonly pool: FramePool,
    start: number,
    private readonly windowFrames: number,
    private readonly refillFrames: number,
    readonly shared: SharedStats,
    quota = Infinity,
  ) {
    this.next = start % pool.frames;
    this.left = quota;
    this.due = new Float64Array(shared.latency === null ? 0 : windowFrames);
    this.counter = new ServerFrameCounter(
      (op, payload) => this.onFrame(op, payload),
      () => this.counter.messages % shared.sampleEvery === 0,
      shared.latency === null ? undefined : () => this.onReply(),
    );
  }

  get outstanding(): number { return this.sentFrames - this.counter.messages; }

  /** msgpack-sequential: the frames that define the pool's record structures, before any other. */
  sendPreamble(): void {
    const p = this.pool.preamble;
    if (p === null || p.frames === 0) return;
    // Their replies are not timed: due before any measured window.
    for (let k = 0; k < p.frames && this.due.length > 0; k++) this.due[(this.sentFrames + k) % this.windowFrames] = -Infinity;
    this.socket.write(p.bytes);
    this.sentFrames += p.frames;
  }

  /** Open loop: sends the frames due by now (`dueFrames` in all since the start, `period` ms apart from `t0`). */
  sendDue(dueFrames: number, t0: number, period: number): void {
    if (!this.running || this.ended) return;
    let n = dueFrames - this.sentFrames;
    if (n <= 0) return;
    const room = this.windowFrames - this.outstanding;
    if (n > room) { this.shared.stalls++; n = room; }
    if (n > this.left) n = this.left; // `once`: the connection's slice of the pool, and no more
    if (n <= 0) return;
    const first = this.sentFrames;
    for (let k = 0; k < n; k++) this.due[(first + k) % this.windowFrames] = t0 + (first + k) * period;
    this.write(n);
  }

  /**
   * Open loop, at the end: frames due inside the window and never answered
   * count with the time they had waited so far (a lower bound), so a stalled
   * server cannot look fast by not replying. Returns how many there were.
   */
  recordUnanswered(now: number): number {
    const s = this.shared;
    let n = 0;
    for (let k = 0; k < this.outstanding; k++) {
      const at = this.due[(this.dueHead + k) % this.windowFrames]!;
      if (at >= s.measureFrom && at < s.measureTo) {
        s.latency!.recordValue(Math.max(1, Math.round((now - at) * 1000)));
        n++;
      }
    }
    return n;
  }

  private onReply(): void {
    const at = this.due[this.dueHead]!;
    this.dueHead = (this.dueHead + 1) % this.windowFrames;
    const s = this.shared;
    if (at >= s.measureFrom && at < s.measureTo) s.latency!.recordValue(Math.max(1, Math.round((performance.now() - at) * 1000)));
  }

  private write(count: number): void {
    const { bytes, offsets, frames } = this.pool;
    const from = this.next;
    const to = from + count;
    if (to <= frames) {
      this.socket.write(bytes.subarray(offsets[from]!, offsets[to]!));
    } else {
      this.socket.cork();
      this.socket.write(bytes.subarray(offsets[from]!, offsets[frames]!));
      this.socket.write(bytes.subarray(0, offsets[to - frames]!));
      this.socket.uncork();
    }
    this.next = to % frames;
    this.sentFrames += count;
    this.left -= count;
  }

  /** Writes up to the window. Called at start and after every read. */
  fill(): void {
    if (!this.running || this.ended || this.shared.latency !== null) return;
    const room = Math.min(this.windowFrames - this.outstanding, this.left);
    if (room < Math.min(this.refillFrames, this.left) || room <= 0) return;
    this.write(room);
  }

  get finished(): boolean { return this.left <= 0 && this.outstanding <= 0; }

  onData(chunk: Buffer): void {
    this.counter.push(chunk);
    this.fill();
    if (this.drainWaiter !== null && this.outstanding === 0) this.drainWaiter();
  }

  /** Resolves when every frame sent has its reply (or the connection ended). */
  drained(): Promise<void> {
    if (this.outstanding === 0 || this.ended) return Promise.resolve();
    return new Promise((resolve) => { this.drainWaiter = resolve; });
  }

  onEnd(): void {
    this.ended = true;
    if (!this.closing) this.shared.dropped++;
    this.drainWaiter?.();
  }

  private onFrame(opcode: number, payload: Buffer): void {
    const s = this.shared;
    if (opcode === OP_CLOSE) {
      const code = payload.length >= 2 ? String(payload.readUInt16BE(0)) : 'none';
      s.closes[code] = (s.closes[code] ?? 0) + 1;
      return;
    }
    if (opcode === OP_PING) {
      const mask = randomBytes(4);
      this.socket.write(encodeClientFrame(OP_PONG, payload, mask));
      return;
    }
    if (opcode === OP_PONG) return;
    s.sampled++;
    try {
      const value: unknown = opcode === OP_TEXT ? JSON.parse(payload.toString('utf8')) : s.packr.unpack(payload);
      const ok = s.batch === 1 ? isResult(value) : Array.isArray(value) && value.length === s.batch && value.every(isResult);
      if (!ok) throw new Error(`not a result: ${JSON.stringify(value).slice(0, 300)}`);
    } catch (err) {
      s.sampleErrors++;
      s.firstSampleError ??= (err as Error).message;
    }
  }
}

interface SharedStats {
  /** Open loop: reply latency, µs; null in a closed loop. */
  readonly latency: hdr.Histogram | null;
  measureFrom: number;
  measureTo: number;
  stalls: number;
  readonly batch: number;
  readonly sampleEvery: number;
  readonly packr: Packr;
  readonly closes: Record<string, number>;
  dropped: number;
  sampled: number;
  sampleErrors: number;
  firstSampleError: string | undefined;
}

/** Opens a raw socket and performs the client side of the WebSocket handshake. */
function openWebSocket(port: number, path: string, forwardedFor?: string): Promise<{ socket: Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString('base64');
    const socket = connect({ host: '127.0.0.1', port, noDelay: true });
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new Error(`handshake timed out after ${HANDSHAKE_TIMEOUT_MS} ms`)), HANDSHAKE_TIMEOUT_MS);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once('error', fail);
    socket.once('connect', () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: flowstat-bench/ws-load\r\n` +
        `${forwardedFor === undefined ? '' : `X-Forwarded-For: ${forwardedFor}\r\n`}\r\n`,
      );
    });
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 16_384) fail(new Error('handshake response headers too long'));
        return;
      }
      socket.off('data', onData);
      socket.off('error', fail);
      clearTimeout(timer);
      const text = head.subarray(0, end).toString('latin1');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1];
      const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(text)?.[1];
      if (status !== '101') { socket.destroy(); reject(new Error(`upgrade refused: ${text.split('\r\n')[0]} ${head.subarray(end + 4).toString('utf8').slice(0, 200)}`)); return; }
      if (accept !== acceptKey(key)) { socket.destroy(); reject(new Error('bad Sec-WebSocket-Accept')); return; }
      resolve({ socket, rest: head.subarray(end + 4) });
    };
    socket.on('data', onData);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function generate(o: WsLoadOptions, phase: (p: 'measure-start' | 'measure-end') => void): Promise<WsLoadResult> {
  const t0 = performance.now();
  const pool = buildPool(o);
  const buildMs = performance.now() - t0;
  let minFrame = Infinity;
  let maxFrame = 0;
  for (let f = 0; f < pool.frames; f++) {
    const n = pool.offsets[f + 1]! - pool.offsets[f]!;
    if (n < minFrame) minFrame = n;
    if (n > maxFrame) maxFrame = n;
  }

  const rate = o.rate ?? 0;
  const windowFrames = Math.max(1, Math.ceil(o.window / o.batch));
  const refillFrames = Math.max(1, Math.floor(windowFrames / 4));
  const shared: SharedStats = {
    batch: o.batch, sampleEvery: o.sampleEvery > 0 ? o.sampleEvery : Number.MAX_SAFE_INTEGER,
    packr: new Packr({ useRecords: false }), closes: {},
    latency: rate > 0 ? hdr.build({ useWebAssembly: false, lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 }) : null,
    measureFrom: Infinity, measureTo: Infinity, stalls: 0,
    dropped: 0, sampled: 0, sampleErrors: 0, firstSampleError: undefined,
  };
  const sep = o.path.includes('?') ? '&' : '?';
  const mode = o.encoding === 'msgpack-sequential' ? '&msgpack=sequential' : '';
  const opened = await Promise.all(Array.from({ length: o.connections }, (_, i) => openWebSocket(
    o.port, `${o.path}${sep}uid=c${i}${mode}`, o.forwardedFor === undefined ? undefined : o.forwardedFor[i % o.forwardedFor.length],
  )));
  const sliceStart = (i: number): number => Math.floor(i * pool.frames / o.connections);
  const conns = opened.map(({ socket, rest }, i) => {
    const quota = o.once === true ? sliceStart(i + 1) - sliceStart(i) : Infinity;
    const c = new LoadConnection(socket, pool, sliceStart(i), windowFrames, refillFrames, shared, quota);
    socket.on('data', (chunk: Buffer) => c.onData(chunk));
    socket.on('close', () => c.onEnd());
    socket.on('error', () => { /* 'close' follows and is counted there */ });
    if (rest.length > 0) c.counter.push(rest);
    return c;
  });
  const acked = (): number => { let n = 0; for (const c of conns) n += c.counter.messages; return n; };

  let ticker: NodeJS.Timeout | null = null;
  if (rate > 0) {
    // One timer for all connections; each sends what fell due since its last turn.
    const period = 1000 * o.connections * o.batch / rate;
    const t0 = performance.now();
    ticker = setInterval(() => {
      const dueFrames = Math.floor((performance.now() - t0) / period) + 1;
      for (const c of conns) c.sendDue(dueFrames, t0, period);
    }, 1);
  }
  for (const c of conns) { c.sendPreamble(); c.running = true; c.fill(); }
  if (o.once !== true) await sleep(o.warmupMs);
  phase('measure-start');
  const cpu0 = process.cpuUsage();
  const a0 = acked();
  const m0 = performance.now();
  shared.measureFrom = m0;
  if (o.once === true) {
    while (!conns.every((c) => c.finished || c.ended)) await sleep(20);
  } else {
    await sleep(o.durationMs);
  }
  const m1 = performance.now();
  shared.measureTo = m1;
  const a1 = acked();
  const seconds = (m1 - m0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  phase('measure-end');
  if (ticker !== null) clearInterval(ticker);

  for (const c of conns) c.running = false;
  await Promise.race([Promise.all(conns.map((c) => c.drained())), sleep(DRAIN_TIMEOUT_MS)]);
  let unackedFrames = 0;
  let sentFrames = 0;
  let unanswered = 0;
  const drainedAt = performance.now();
  for (const c of conns) {
    unackedFrames += Math.max(0, c.outstanding);
    sentFrames += c.sentFrames;
    if (shared.latency !== null) unanswered += c.recordUnanswered(drainedAt);
  }
  const ackedFrames = acked();

  // A clean close: close frame (1000), then wait for the server to end the TCP connection.
  const closed = conns.map((c) => new Promise<void>((resolve) => {
    if (c.ended) { resolve(); return; }
    c.socket.once('close', () => resolve());
    c.closing = true;
    const payload = Buffer.from([0x03, 0xe8]);
    c.socket.end(encodeClientFrame(OP_CLOSE, payload, randomBytes(4)));
  }));
  await Promise.race([Promise.all(closed), sleep(CLOSE_TIMEOUT_MS)]);
  for (const c of conns) if (!c.ended) c.socket.destroy();

  const framesPerSecond = (a1 - a0) / seconds;
  return {
    connections: o.connections,
    buildMs: Math.round(buildMs),
    frameBytes: { min: minFrame, mean: Math.round(pool.bytes.length / pool.frames), max: maxFrame },
    measuredSeconds: seconds,
    eventsPerSecond: framesPerSecond * o.batch,
    framesPerSecond,
    eventsSent: sentFrames * o.batch,
    eventsAcked: ackedFrames * o.batch,
    sampled: shared.sampled,
    sampleErrors: shared.sampleErrors,
    ...(shared.firstSampleError === undefined ? {} : { firstSampleError: shared.firstSampleError }),
    serverCloses: shared.closes,
    droppedConnections: shared.dropped,
    unacked: unackedFrames * o.batch,
    cpuCores: (cpu.user + cpu.system) / 1e6 / seconds,
    ...(shared.latency === null ? {} : {
      latencyUs: {
        p50: shared.latency.getValueAtPercentile(50),
        p99: shared.latency.getValueAtPercentile(99),
        p999: shared.latency.getValueAtPercentile(99.9),
        max: shared.latency.maxValue,
        samples: shared.latency.totalCount,
        unanswered,
      },
      stalls: shared.stalls,
    }),
  };
}

serveLoadChild(CHILD_FLAG, generate);
