import { timingSafeEqual } from 'node:crypto';
import {
  createError, isValidUid, keyFromPath, tellError, toFlowError, TELL_ACCEPTED,
  type Envelope, type FlowError, type IngestMessage, type Reply, type Responder,
} from '../../engine/index.js';
import type { GatewayContext } from '../context.js';
import { lenientEvent, projectIdOf } from '../events.js';
import { exceedsDepth } from '../limits/depth.js';
import { bump } from '../metrics.js';
import type { BodyTooLarge, Header, HttpHandler, HttpResponseSink, RequestHead } from '../transport/index.js';
import type { ConnectionRegistry } from '../ws/connections.js';
import { createCookieSync } from './cookie-sync.js';
import { resolveUid, uidCookie } from './cookies.js';
import { bodyObject, queryObject } from './payload.js';
import { PIXEL_GIF, PIXEL_HEADERS } from './pixel.js';
import { createQueryRoutes, QUERY_PREFIX } from './query-routes.js';
import type { QueryService } from '../../query/index.js';
import type { Protocols } from '../protocols/index.js';

/**
 * HTTP routes: events at /{service}/{name}[/{projectId}][.json|.gif], the
 * /redir redirect, cookie-sync under /sync/ (cookie-sync.ts), health,
 * readiness, metrics, the SDK protocol endpoints (../protocols/: Segment's
 * /v1/…), and the admin API behind the bearer token: push and the query
 * reports under /api/v1/query (query-routes.ts).
 */

const JSON_TYPE: Header = ['content-type', 'application/json'];
const NO_STORE: Header = ['cache-control', 'no-store'];

export interface HttpRoutesOptions {
  readonly push: (projectId: number, uid: string, params: unknown) => number;
  readonly connections: ConnectionRegistry;
  /** The query reports (/api/v1/query); absent: those paths are 404. */
  readonly query?: QueryService;
  /** SDK protocol endpoints (Segment, …): they answer their own paths before the generic routes. */
  readonly protocols?: Protocols;
}

function sendError(res: HttpResponseSink, err: FlowError, extra: readonly Header[]): void {
  const headers: Header[] = [JSON_TYPE, NO_STORE, ...extra];
  const retryAfter = err.params.retryAfter;
  if (retryAfter !== undefined) headers.push(['retry-after', String(retryAfter)]);
  res.send(err.status, headers, JSON.stringify(err.toJSON()));
}

/** Answers one event request when the actor replies. */
class HttpEventResponder implements Responder {
  constructor(
    private readonly ctx: GatewayContext,
    private readonly res: HttpResponseSink,
    private readonly gif: boolean,
    private readonly headers: readonly Header[],
    private readonly started: number,
  ) {}

  respond(envelope: Envelope, reply: Reply): void {
    const { res } = this;
    switch (reply.kind) {
      case 'json':
        if (this.gif) res.send(200, [...PIXEL_HEADERS, ...this.headers], PIXEL_GIF);
        else if (reply.data === undefined) res.send(200, [JSON_TYPE, NO_STORE, ...this.headers], `{"id":"${envelope.id}","key":"${envelope.key}","uid":"${envelope.uid}"}`);
        else res.send(200, [JSON_TYPE, NO_STORE, ...this.headers], JSON.stringify({ id: envelope.id, key: envelope.key, uid: envelope.uid, ...reply.data }));
        break;
      case 'pixel':
        res.send(200, [...PIXEL_HEADERS, ...this.headers], PIXEL_GIF);
        break;
      case 'redirect': {
        const verdict = this.ctx.redirect(reply.location);
        if (verdict.ok) res.send(302, [['location', verdict.url], NO_STORE, ...this.headers], '');
        else sendError(res, createError('FLOW_ERR_REDIRECT_FORBIDDEN', { host: verdict.host }), this.headers);
        break;
      }
      case 'error':
        sendError(res, reply.error, this.headers);
        break;
    }
    this.ctx.metrics.observeReply((performance.now() - this.started) / 1000);
  }
}

export function createHttpHandler(ctx: GatewayContext, options: HttpRoutesOptions): HttpHandler {
  const { gateway: gw, metrics } = ctx;
  const adminToken = ctx.config.adminToken === undefined ? null : Buffer.from(`Bearer ${ctx.config.adminToken}`);

  function reject(res: HttpResponseSink, err: FlowError, headers: readonly Header[]): void {
    bump(metrics.counters.rejected, err.code);
    sendError(res, err, headers);
  }

  const cookieSync = createCookieSync(ctx, reject);
  const queryRoutes = options.query === undefined ? null : createQueryRoutes(options.query, reject);

  function authorized(head: RequestHead): boolean {
    if (adminToken === null) return false;
    const given = Buffer.from(head.headers.authorization);
    return given.length === adminToken.length && timingSafeEqual(given, adminToken);
  }

  function handleEvent(
    head: RequestHead, res: HttpResponseSink, body: Buffer | null | BodyTooLarge,
    cors: readonly Header[], key: string, pathProject: number | undefined, gif: boolean, extra?: Record<string, unknown>,
  ): void {
    const started = performance.now();
    if (ctx.saturated()) return reject(res, createError('FLOW_ERR_OVERLOADED', { reason: 'storage backlog', retryAfter: 5 }), cors);
    const client = ctx.clientInfo(head);
    const retryAfter = ctx.limiter.take(client.ip, 1, head.receivedAt);
    if (retryAfter > 0) return reject(res, createError('FLOW_ERR_RATE_LIMITED', { retryAfter }), cors);
    const headers: Header[] = [...cors];
    let envelope: Envelope;
    try {
      const payload = { ...bodyObject(body, head.headers.contentType, gw.limits.maxBodyBytes), ...queryObject(head.query), ...extra };
      if (body instanceof Buffer) metrics.counters.bytes += body.length;
      if (exceedsDepth(payload, gw.limits.maxDepth)) throw createError('FLOW_ERR_TOO_DEEP', { limit: gw.limits.maxDepth });
      const uid = resolveUid(payload.uid, head.headers.cookie, gw.cookie.name);
      const projectId = pathProject ?? projectIdOf(payload.projectId, ctx.config.defaultProjectId);
      envelope = lenientEvent(payload, {
        key, projectId: projectId as number, uid: uid as string, ip: client.ip,
        userAgent: head.headers.userAgent, receivedAt: head.receivedAt,
      });
    } catch (err) {
      return reject(res, toFlowError(err, 'FLOW_ERR_INVALID_REQUEST'), cors);
    }
    headers.push(['set-cookie', uidCookie(envelope.uid, gw.cookie, client.https)]);
    const channel = envelope.channel;
    bump(metrics.counters.received, channel);
    const responder = new HttpEventResponder(ctx, res, gif, headers, started);
    const message: IngestMessage = { envelope, responder };
    const result = ctx.system.tell(envelope.projectId, envelope.uid, message);
    if (result !== TELL_ACCEPTED) {
      const err = tellError(result)!;
      bump(metrics.counters.rejected, err.code);
      responder.respond(envelope, { kind: 'error', error: err });
      return;
    }
    bump(metrics.counters.accepted, channel);
  }

  function handleAdminPush(head: RequestHead, res: HttpResponseSink, body: Buffer | null | BodyTooLarge): void {
    if (!authorized(head)) return reject(res, createError('FLOW_ERR_UNAUTHORIZED'), []);
    let payload: Record<string, unknown>;
    try {
      payload = bodyObject(body, head.headers.contentType, gw.limits.maxBodyBytes);
      if (!isValidUid(payload.uid)) throw createError('FLOW_ERR_FIELD_INVALID', { field: 'uid', reason: 'must be 1-64 characters of [A-Za-z0-9._:-]' });
      const projectId = projectIdOf(payload.projectId, ctx.config.defaultProjectId);
      if (typeof projectId !== 'number' || !Number.isInteger(projectId) || projectId < 0) throw createError('FLOW_ERR_FIELD_INVALID', { field: 'projectId', reason: 'must be a non-negative integer' });
      const delivered = options.push(projectId, payload.uid, payload.params ?? null);
      res.send(200, [JSON_TYPE, NO_STORE], JSON.stringify({ delivered }));
    } catch (err) {
      reject(res, toFlowError(err, 'FLOW_ERR_INVALID_REQUEST'), []);
    }
  }

  return {
    request(head, res, body) {
      const cors = ctx.cors.headers(head.headers.origin);
      if (head.method === 'OPTIONS') {
        const pre = ctx.cors.preflight(head.headers.origin, head.headers.accessControlRequestHeaders);
        if (pre === null) return reject(res, createError('FLOW_ERR_ORIGIN_FORBIDDEN', { origin: head.headers.origin.slice(0, 100) }), []);
        res.send(204, pre, '');
        return;
      }
      const { path } = head;
      if (path === '/healthz') return res.send(200, [JSON_TYPE, NO_STORE], '{"status":"ok"}');
      if (path === '/readyz') {
        const r = ctx.ready();
        return res.send(r.ready ? 200 : 503, [JSON_TYPE, NO_STORE], JSON.stringify(r));
      }
      if (path === '/metrics') {
        metrics.render().then(
          (text) => res.send(200, [['content-type', metrics.registry.contentType]], text),
          (err: unknown) => sendError(res, toFlowError(err), []),
        );
        return;
      }
      if (cors === null) return reject(res, createError('FLOW_ERR_ORIGIN_FORBIDDEN', { origin: head.headers.origin.slice(0, 100) }), []);
      if (ctx.closing) return reject(res, createError('FLOW_ERR_SHUTTING_DOWN'), cors);
      if (head.method !== 'GET' && head.method !== 'POST') {
        return reject(res, createError('FLOW_ERR_NOT_FOUND', { method: head.method, path: path.slice(0, 100) }), cors);
      }
      if (path === '/api/v1/push' && head.method === 'POST') return handleAdminPush(head, res, body);
      if (queryRoutes !== null && head.method === 'GET' && (path === QUERY_PREFIX || path.startsWith(`${QUERY_PREFIX}/`))) {
        if (!authorized(head)) return reject(res, createError('FLOW_ERR_UNAUTHORIZED'), []);
        return queryRoutes.request(head, res);
      }
      const adapter = options.protocols?.match(head) ?? null;
      if (adapter !== null) return adapter.handle({ head, res, body, cors, client: ctx.clientInfo(head) });
      // Under /sync/ every path is cookie-sync's (a 404 there, never an in.gen.sync.* event).
      if (path.startsWith('/sync/')) return cookieSync.request(head, res, cors);
      if (path === '/redir') {
        const to = new URLSearchParams(head.query).get('to') ?? '';
        const verdict = ctx.redirect(to);
        if (!verdict.ok) return reject(res, createError('FLOW_ERR_REDIRECT_FORBIDDEN', { host: verdict.host }), cors);
        // Recorded as in.gen.redir.click; the default reply becomes the 302.
        return handleEvent(head, new RedirectSink(res, verdict.url), body, cors, 'in.gen.redir.click', undefined, false, { to: verdict.url });
      }
      let route;
      try {
        route = keyFromPath(path, { aliases: gw.pathAliases });
      } catch (err) {
        return reject(res, toFlowError(err), cors);
      }
      if (route === null) return reject(res, createError('FLOW_ERR_NOT_FOUND', { method: head.method, path: path.slice(0, 100) }), cors);
      handleEvent(head, res, body, cors, route.key, route.projectId, route.format === 'gif');
    },
  };
}

/** Turns the default JSON reply of a /redir event into the 302 (errors pass through). */
class RedirectSink implements HttpResponseSink {
  constructor(private readonly inner: HttpResponseSink, private readonly location: string) {}
  get aborted(): boolean { return this.inner.aborted; }
  send(status: number, headers: readonly Header[], body: string | Uint8Array): void {
    if (status !== 200) { this.inner.send(status, headers, body); return; }
    const kept = headers.filter(([name]) => name === 'set-cookie' || name.startsWith('access-control-') || name === 'vary');
    this.inner.send(302, [['location', this.location], NO_STORE, ...kept], '');
  }
}
