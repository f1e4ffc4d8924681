import { randomUUID } from 'node:crypto';
import {
  createEnvelope, createError, isFlowError, isValidUid, tellError, toFlowError, TELL_ACCEPTED,
  RPC_INVALID_PARAMS, RPC_INVALID_REQUEST, RPC_PARSE_ERROR,
  type Envelope, type FlowError, type IngestMessage, type Reply, type Responder,
} from '../../engine/index.js';
import type { GatewayContext } from '../context.js';
import { createKeyResolver, projectIdOf, strictEvent } from '../events.js';
import { readCookie } from '../http/cookies.js';
import { queryObject } from '../http/payload.js';
import { exceedsDepth } from '../limits/depth.js';
import { bump } from '../metrics.js';
import type { RequestHead, UpgradeResult, WsHandler, WsSocket } from '../transport/index.js';
import type { Connection, ConnectionRegistry } from './connections.js';
import { countRecordDefinitions, MAX_RECORD_DEFINITIONS_PER_FRAME, MsgpackStream } from './msgpack-stream.js';
import {
  defaultResultJson, defaultResultMsgpack, encode, encodeMsgpackArray, errorResponse, idOf, packr, RawJson, RawMsgpack, resultResponse, type RpcId,
} from './jsonrpc.js';

/**
 * WebSocket `/ws?projectId=…&uid=…`: JSON-RPC 2.0 over text (JSON) and binary
 * (msgpack) frames. Methods: track, identify, ping; batches; notifications
 * get no reply. A bad frame gets a JSON-RPC error and the connection stays
 * open; too many bad frames in a window close it (1008); a client that does
 * not read its replies is closed (1013) before its buffer grows further.
 */

export interface ConnState extends Connection {
  readonly ip: string;
  readonly userAgent: string;
  badFrames: number;
  badWindowStart: number;
  /** Inside the message callback: sends are already corked. */
  inHandler: boolean;
  closed: boolean;
  /** Frames sent outside a socket callback, written together (one cork) at the end of the tick. */
  outbox: Outgoing[] | null;
  /** With `msgpack=sequential`: this connection's binary frames as one msgpackr stream; null for plain msgpack. */
  readonly stream: MsgpackStream | null;
}

interface Outgoing {
  readonly frame: string | Uint8Array;
  readonly binary: boolean;
}

/** One WebSocket frame in this many has its reply latency observed (a power of two). */
export const LATENCY_SAMPLE = 8;

const IDENTIFY_FIELDS = new Set(['userId', 'traits', 'uid', 'projectId', 'id', 'ts']);
const IDENTIFY_KEY = 'in.gen.user.identify';

export interface WsEndpoint {
  readonly handler: WsHandler<ConnState>;
  /** Sends a `push` notification to every open connection of the user; returns how many got it. */
  push(projectId: number, uid: string, params: unknown): number;
}

export function createWsHandler(ctx: GatewayContext, connections: ConnectionRegistry): WsEndpoint {
  const { gateway: gw, metrics } = ctx;
  const limits = gw.limits;
  const resolveKey = createKeyResolver(gw.pathAliases);
  let frameCount = 0;

  /**
   * Replies released by one write-ahead-log commit arrive together, outside
   * any socket callback; each corked on its own cost a socket write per
   * reply (~6% of the engine's CPU end to end). They wait in their
   * connection's outbox until the end of the tick instead, and each
   * connection's frames go out in one cork.
   */
  let waiting: ConnState[] = [];
  const flushOutboxes = (): void => {
    const conns = waiting;
    waiting = [];
    for (const state of conns) {
      const out = state.outbox!;
      state.outbox = null;
      if (state.closed) continue;
      let buffered = 0;
      state.socket.cork(() => {
        for (const o of out) buffered = state.socket.send(o.frame, o.binary);
      });
      checkBackpressure(state, buffered);
    }
  };

  function send(state: ConnState, message: unknown, binary: boolean): void {
    if (state.closed) return;
    const frame = encode(message, binary);
    // Frames already waiting go first, so a connection's replies keep their order.
    if (state.inHandler && state.outbox === null) {
      checkBackpressure(state, state.socket.send(frame, binary));
      return;
    }
    if (state.outbox === null) {
      state.outbox = [];
      if (waiting.push(state) === 1) queueMicrotask(flushOutboxes);
    }
    state.outbox.push({ frame, binary });
  }

  function checkBackpressure(state: ConnState, buffered: number): void {
    if (buffered > limits.maxBackpressureBytes && !state.closed) {
      const err = createError('FLOW_ERR_SLOW_READER', { buffered });
      bump(metrics.counters.rejected, err.code);
      state.closed = true;
      state.socket.end(err.wsClose!, 'slow reader');
    }
  }

  function strike(state: ConnState, err: FlowError): void {
    bump(metrics.counters.rejected, err.code);
    const now = ctx.clock.now();
    if (now - state.badWindowStart > limits.badFrameWindowMs) {
      state.badWindowStart = now;
      state.badFrames = 0;
    }
    if (++state.badFrames > limits.maxBadFrames && !state.closed) {
      state.closed = true;
      const abuse = createError('FLOW_ERR_ABUSE');
      state.socket.end(abuse.wsClose!, 'too many invalid messages');
    }
  }

  /** Collects a batch's replies and sends them as one array when the last arrives. */
  class Batch {
    /** Replies by request position, so the array comes back in request order. */
    readonly replies: unknown[];
    pending: number;
    constructor(readonly state: ConnState, readonly binary: boolean, readonly started: number, size: number) {
      this.replies = new Array<unknown>(size);
      this.pending = size;
    }
    /** `undefined` marks an item with no reply (a notification). */
    add(index: number, reply: unknown): void {
      this.replies[index] = reply;
      if (--this.pending === 0) this.flush();
    }
    flush(): void {
      const out = this.replies.filter((r) => r !== undefined);
      if (out.length > 0) {
        if (this.binary) send(this.state, new RawMsgpack(encodeMsgpackArray(out)), true);
        else send(this.state, new RawJson(`[${out.map((r) => (r instanceof RawJson ? r.text : JSON.stringify(r))).join(',')}]`), false);
      }
      if (this.started >= 0) metrics.observeReply((performance.now() - this.started) / 1000);
    }
  }

  /**
   * One call awaiting its actor's reply. It is also the message the actor
   * receives (its own responder): one allocation per event, not two.
   */
  class Call implements Responder, IngestMessage {
    private done = false;
    readonly responder: Responder = this;
    constructor(
      readonly envelope: Envelope, readonly state: ConnState, readonly id: RpcId, readonly binary: boolean,
      readonly batch: Batch | null, readonly index: number, readonly started: number,
    ) {}
    respond(envelope: Envelope, reply: Reply): void {
      if (reply.kind === 'json' && reply.data === undefined) {
        this.deliver(this.binary
          ? defaultResultMsgpack(this.id, envelope.id, envelope.key, envelope.uid)
          : defaultResultJson(this.id, envelope.id, envelope.key, envelope.uid));
      } else {
        this.deliver(renderReply(envelope, reply, this.id));
      }
    }
    deliver(response: unknown): void {
      if (this.done) return;
      this.done = true;
      if (this.batch !== null) { this.batch.add(this.index, response); return; }
      send(this.state, response, this.binary);
      if (this.started >= 0) metrics.observeReply((performance.now() - this.started) / 1000);
    }
  }

  function renderReply(envelope: Envelope, reply: Reply, id: RpcId): unknown {
    switch (reply.kind) {
      case 'json': return resultResponse(id, { id: envelope.id, key: envelope.key, uid: envelope.uid, ...reply.data });
      case 'pixel': return resultResponse(id, { id: envelope.id, key: envelope.key, uid: envelope.uid });
      case 'redirect': {
        const verdict = ctx.redirect(reply.location);
        return verdict.ok
          ? resultResponse(id, { id: envelope.id, key: envelope.key, uid: envelope.uid, redirect: verdict.url })
          : errorResponse(id, createError('FLOW_ERR_REDIRECT_FORBIDDEN', { host: verdict.host }));
      }
      case 'error': return errorResponse(id, reply.error);
    }
  }

  function params(value: unknown): Record<string, unknown> {
    if (value === undefined) return {};
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw createError('FLOW_ERR_FIELD_INVALID', { field: 'params', reason: 'must be an object' });
    }
    return value as Record<string, unknown>;
  }

  function uidOf(value: unknown, fallback: string): string {
    if (value === undefined || value === null || value === '') return fallback;
    if (!isValidUid(value)) throw createError('FLOW_ERR_FIELD_INVALID', { field: 'uid', reason: 'must be 1-64 characters of [A-Za-z0-9._:-]' });
    return value;
  }

  function buildEnvelope(state: ConnState, method: string, p: Record<string, unknown>, receivedAt: number): Envelope {
    if (method === 'track') {
      return strictEvent(p, {
        key: resolveKey(p),
        projectId: projectIdOf(p.projectId, state.projectId) as number,
        uid: uidOf(p.uid, state.uid),
        ip: state.ip, userAgent: state.userAgent, receivedAt,
      });
    }
    for (const k in p) if (!IDENTIFY_FIELDS.has(k)) throw createError('FLOW_ERR_FIELD_INVALID', { field: k, reason: 'unknown field' });
    if (p.userId === undefined || p.userId === null || p.userId === '') throw createError('FLOW_ERR_FIELD_INVALID', { field: 'userId', reason: 'is required' });
    return createEnvelope({
      key: IDENTIFY_KEY,
      projectId: projectIdOf(p.projectId, state.projectId),
      uid: uidOf(p.uid, state.uid),
      receivedAt, ip: state.ip, userAgent: state.userAgent,
      id: p.id, ts: p.ts, userId: p.userId, data: p.traits,
    });
  }

  /** Handles one request object; replies through `batch` or directly. */
  function dispatch(state: ConnState, req: unknown, binary: boolean, batch: Batch | null, index: number, started: number, receivedAt: number): void {
    const reply = (response: unknown): void => {
      if (batch !== null) batch.add(index, response);
      else send(state, response, binary);
    };
    if (req === null || typeof req !== 'object' || Array.isArray(req)) {
      const err = createError('FLOW_ERR_INVALID_REQUEST', { reason: 'a request must be an object' });
      strike(state, err);
      return reply(errorResponse(null, err));
    }
    const r = req as Record<string, unknown>;
    const id = r.id;
    const isNotification = id === undefined;
    if (r.jsonrpc !== '2.0' || typeof r.method !== 'string' || (!isNotification && id !== null && typeof id !== 'string' && typeof id !== 'number')) {
      const err = createError('FLOW_ERR_INVALID_REQUEST', { reason: 'expected {"jsonrpc":"2.0","method":string,"params"?,"id"?}' });
      strike(state, err);
      return reply(errorResponse(idOf(r), err));
    }
    const rpcId = isNotification ? null : (id as RpcId);
    const method = r.method;
    if (method === 'ping') {
      if (!isNotification) reply(resultResponse(rpcId, 'pong'));
      else if (batch !== null) batch.add(index, undefined);
      return;
    }
    if (method !== 'track' && method !== 'identify') {
      const err = createError('FLOW_ERR_METHOD_NOT_FOUND', { method: method.slice(0, 64) });
      bump(metrics.counters.rejected, err.code);
      if (!isNotification) reply(errorResponse(rpcId, err));
      else if (batch !== null) batch.add(index, undefined);
      return;
    }
    let envelope: Envelope;
    try {
      envelope = buildEnvelope(state, method, params(r.params), receivedAt);
    } catch (err) {
      const flow = toFlowError(err, 'FLOW_ERR_INVALID_REQUEST');
      strike(state, flow);
      if (!isNotification) reply(errorResponse(rpcId, flow, flow.rpcCode === RPC_PARSE_ERROR ? RPC_INVALID_PARAMS : flow.rpcCode));
      else if (batch !== null) batch.add(index, undefined);
      return;
    }
    bump(metrics.counters.received, envelope.channel);
    const call = isNotification ? null : new Call(envelope, state, rpcId, binary, batch, index, started);
    const message: IngestMessage = call ?? { envelope, responder: null };
    const result = ctx.system.tell(envelope.projectId, envelope.uid, message);
    if (result !== TELL_ACCEPTED) {
      const err = tellError(result)!;
      bump(metrics.counters.rejected, err.code);
      if (call !== null) call.deliver(errorResponse(rpcId, err));
      else if (batch !== null) batch.add(index, undefined);
      return;
    }
    bump(metrics.counters.accepted, envelope.channel);
    if (call === null && batch !== null) batch.add(index, undefined);
  }

  function push(projectId: number, uid: string, params: unknown): number {
    const conns = connections.of(projectId, uid);
    if (conns === undefined) return 0;
    let delivered = 0;
    const notification = { jsonrpc: '2.0', method: 'push', params };
    for (const conn of conns) {
      const state = conn as ConnState;
      if (state.closed) continue;
      send(state, notification, state.binary);
      delivered++;
    }
    return delivered;
  }

  const handler: WsHandler<ConnState> = {
    upgrade(head: RequestHead): UpgradeResult<ConnState> {
      const refuse = (err: FlowError): UpgradeResult<ConnState> => {
        bump(metrics.counters.rejected, err.code);
        const headers: [string, string][] = [['content-type', 'application/json']];
        if (err.params.retryAfter !== undefined) headers.push(['retry-after', String(err.params.retryAfter)]);
        return { accept: false, status: err.status, headers, body: JSON.stringify(err.toJSON()) };
      };
      if (ctx.closing) return refuse(createError('FLOW_ERR_SHUTTING_DOWN'));
      if (!ctx.cors.allowsWebSocket(head.headers.origin)) return refuse(createError('FLOW_ERR_ORIGIN_FORBIDDEN', { origin: head.headers.origin.slice(0, 100) }));
      const client = ctx.clientInfo(head);
      const retryAfter = ctx.limiter.take(client.ip, 1, head.receivedAt);
      if (retryAfter > 0) return refuse(createError('FLOW_ERR_RATE_LIMITED', { retryAfter }));
      const q = queryObject(head.query);
      let uid: string;
      let projectId: number;
      try {
        const fromCookie = readCookie(head.headers.cookie, gw.cookie.name);
        uid = uidOf(q.uid, fromCookie !== undefined && isValidUid(fromCookie) ? fromCookie : randomUUID());
        const p = projectIdOf(q.projectId, ctx.config.defaultProjectId);
        if (typeof p !== 'number' || p > 2 ** 31 - 1) throw createError('FLOW_ERR_FIELD_INVALID', { field: 'projectId', reason: 'must be a non-negative integer' });
        projectId = p;
        if (q.msgpack !== undefined && q.msgpack !== 'plain' && q.msgpack !== 'sequential') {
          throw createError('FLOW_ERR_FIELD_INVALID', { field: 'msgpack', reason: 'must be plain or sequential' });
        }
      } catch (err) {
        return refuse(toFlowError(err));
      }
      return {
        accept: true,
        state: {
          socket: null as unknown as WsSocket, projectId, uid, binary: q.encoding === 'msgpack',
          ip: client.ip, userAgent: head.headers.userAgent,
          badFrames: 0, badWindowStart: 0, inHandler: false, closed: false, outbox: null,
          stream: q.msgpack === 'sequential' ? new MsgpackStream() : null,
        },
      };
    },

    open(socket, state) {
      (state as { socket: WsSocket }).socket = socket;
      connections.add(state);
      metrics.counters.connections++;
    },

    message(_socket, state, data, binary) {
      if (state.closed) return;
      // Latency is sampled on one frame in LATENCY_SAMPLE: two clock reads per frame were measurable here.
      const started = (++frameCount & (LATENCY_SAMPLE - 1)) === 0 ? performance.now() : -1;
      const receivedAt = ctx.clock.now();
      metrics.counters.bytes += data.length;
      state.binary = binary;
      state.inHandler = true;
      try {
        if (ctx.closing) {
          const err = createError('FLOW_ERR_SHUTTING_DOWN');
          bump(metrics.counters.rejected, err.code);
          return send(state, errorResponse(null, err), binary);
        }
        if (data.length > limits.maxFrameBytes) {
          const err = createError('FLOW_ERR_PAYLOAD_TOO_LARGE', { size: data.length, limit: limits.maxFrameBytes });
          strike(state, err);
          return send(state, errorResponse(null, err), binary);
        }
        const definitions = binary ? countRecordDefinitions(data) : 0;
        if (definitions > MAX_RECORD_DEFINITIONS_PER_FRAME) {
          const err = createError('FLOW_ERR_INVALID_REQUEST', {
            reason: `more than ${MAX_RECORD_DEFINITIONS_PER_FRAME} msgpack record definitions in one frame`,
          });
          strike(state, err);
          return send(state, errorResponse(null, err), binary);
        }
        // Decode now: the frame's memory is only valid during this call.
        let decoded: unknown;
        try {
          decoded = !binary ? JSON.parse(data.toString('utf8')) : state.stream === null ? packr.unpack(data) : state.stream.decode(data, definitions);
        } catch (err) {
          if (isFlowError(err)) {
            strike(state, err);
            return send(state, errorResponse(null, err), binary);
          }
          const flow = createError('FLOW_ERR_PARSE', { reason: (err as Error).message.slice(0, 200) });
          strike(state, flow);
          return send(state, errorResponse(null, flow, RPC_PARSE_ERROR), binary);
        }
        if (exceedsDepth(decoded, limits.maxDepth + 1)) {
          const err = createError('FLOW_ERR_TOO_DEEP', { limit: limits.maxDepth });
          strike(state, err);
          return send(state, errorResponse(idOf(decoded), err, RPC_INVALID_REQUEST), binary);
        }
        const items = Array.isArray(decoded) ? decoded : null;
        const cost = items === null ? 1 : items.length;
        if (items !== null && items.length === 0) {
          const err = createError('FLOW_ERR_INVALID_REQUEST', { reason: 'empty batch' });
          strike(state, err);
          return send(state, errorResponse(null, err), binary);
        }
        if (cost > limits.maxBatch) {
          const err = createError('FLOW_ERR_BATCH_TOO_LARGE', { size: cost, limit: limits.maxBatch });
          strike(state, err);
          return send(state, errorResponse(null, err), binary);
        }
        if (ctx.saturated()) {
          const err = createError('FLOW_ERR_OVERLOADED', { reason: 'storage backlog', retryAfter: 5 });
          bump(metrics.counters.rejected, err.code, cost);
          return send(state, errorResponse(items === null ? idOf(decoded) : null, err), binary);
        }
        // A record definition costs a reader compiled by msgpackr: charged like an event.
        const retryAfter = ctx.limiter.take(state.ip, cost + definitions, receivedAt);
        if (retryAfter > 0) {
          const err = createError('FLOW_ERR_RATE_LIMITED', { retryAfter });
          bump(metrics.counters.rejected, err.code, cost);
          return send(state, errorResponse(items === null ? idOf(decoded) : null, err), binary);
        }
        if (items === null) {
          dispatch(state, decoded, binary, null, 0, started, receivedAt);
          return;
        }
        const batch = new Batch(state, binary, started, items.length);
        for (let i = 0; i < items.length; i++) dispatch(state, items[i], binary, batch, i, started, receivedAt);
      } finally {
        state.inHandler = false;
      }
    },

    drain() { /* replies are never held back for back-pressure: slow readers are closed instead */ },

    close(_socket, state) {
      state.closed = true;
      connections.remove(state);
      metrics.counters.connections--;
    },
  };
  return { handler, push };
}

