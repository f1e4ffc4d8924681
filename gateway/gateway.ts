import type { ActorMessage, Engine } from '../engine/index.js';
import type { Pipeline } from '../sinks/index.js';
import type { QueryService } from '../query/index.js';
import type { GatewayContext } from './context.js';
import { createClientIp } from './http/client-ip.js';
import { createCors } from './http/cors.js';
import { createHttpHandler } from './http/handler.js';
import { createRedirectPolicy } from './http/redirect.js';
import { createRateLimiter } from './limits/rate-limiter.js';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.js';
import { createProtocols } from './protocols/index.js';
import { createTransport, type Transport } from './transport/index.js';
import { createConnectionRegistry } from './ws/connections.js';
import { createWsHandler } from './ws/handler.js';

/**
 * createGateway: the HTTP + WebSocket front door on one port. It decodes,
 * applies limits, resolves uid / project / client ip, builds the Envelope and
 * tells the user's actor; the actor's Reply is rendered back on the wire the
 * request came from. It never waits on storage.
 *
 * Shutdown (hooked into the engine's order): close the listen socket, finish
 * in-flight requests, close WebSockets with 1001 — then the engine drains.
 */

export interface Gateway {
  readonly transport: Transport['name'];
  readonly metrics: GatewayMetrics;
  listen(): Promise<number>;
  /** Sends a `push` notification to every open connection of the user; returns how many. */
  push(projectId: number, uid: string, params: unknown): number;
  /** Adds a readiness check shown on /readyz (the store, the spool). */
  addReadinessCheck(name: string, check: () => { ok: boolean; detail?: unknown }): void;
}

export interface GatewayOptions {
  /** Where cookie-sync stores the identities it learns (the storage pipeline). */
  readonly pipeline: Pick<Pipeline, 'emit' | 'deadLetter'>;
  /** True when storage cannot take more: new events are refused with 503 instead of growing memory. */
  readonly saturated?: () => boolean;
  /** The query reports served under /api/v1/query (behind the admin token). */
  readonly query?: QueryService;
}

/** What the gateway uses of the engine (in-process, or the worker threads' pool). */
export type GatewayEngine = Pick<Engine<ActorMessage>, 'config' | 'logger' | 'clock' | 'system' | 'shutdown'>;

export function createGateway(engine: GatewayEngine, options: GatewayOptions): Gateway {
  const { config, logger } = engine;
  const gw = config.gateway;
  const metrics = createGatewayMetrics();
  const connections = createConnectionRegistry();
  const checks = new Map<string, () => { ok: boolean; detail?: unknown }>();
  let listening = false;

  const ctx: GatewayContext = {
    config,
    gateway: gw,
    system: engine.system,
    logger,
    clock: engine.clock,
    metrics,
    limiter: createRateLimiter(gw.limits.ratePerSecond, gw.limits.rateBurst),
    cors: createCors(gw.cors),
    clientInfo: createClientIp(gw.trustedProxies),
    redirect: createRedirectPolicy(gw.redirectHosts),
    pipeline: options.pipeline,
    closing: false,
    saturated: options.saturated ?? (() => false),
    ready() {
      const out: Record<string, unknown> = { gateway: listening && !ctx.closing };
      let ok = listening && !ctx.closing;
      for (const [name, check] of checks) {
        let r: { ok: boolean; detail?: unknown };
        try { r = check(); } catch (err) { r = { ok: false, detail: (err as Error).message }; }
        out[name] = r.detail ?? r.ok;
        ok &&= r.ok;
      }
      return { ready: ok, checks: out };
    },
  };

  const ws = createWsHandler(ctx, connections);
  const push = ws.push;

  const protocols = createProtocols(ctx);

  const transport = createTransport(gw.server, {
    http: createHttpHandler(ctx, { push, connections, protocols, ...(options.query ? { query: options.query } : {}) }),
    ws: ws.handler,
    wsPath: '/ws',
    maxBodyBytes: gw.limits.maxBodyBytes,
    // A protocol endpoint takes bodies up to its vendor's documented limit (Segment: 500 KB per batch).
    bodyLimit: (head) => Math.max(gw.limits.maxBodyBytes, protocols.match(head)?.maxBodyBytes ?? 0),
    hardFrameBytes: Math.max(gw.limits.maxFrameBytes, 1024 * 1024),
    idleTimeoutSec: gw.limits.idleTimeoutSec,
    now: engine.clock.now,
  }, logger);

  metrics.addGauge('flowstat_actors_live', 'Session actors in memory', () => engine.system.stats().live);
  metrics.addGauge('flowstat_actor_queue', 'Events waiting in actor mailboxes', () => engine.system.stats().queued);

  engine.shutdown.on('stop-accepting', 'gateway', async () => {
    ctx.closing = true;
    await transport.closeListener();
    await transport.idle();
    await transport.closeWebSockets(1001, 'server shutting down');
  });
  engine.shutdown.on('close', 'gateway sockets', () => transport.destroy());

  return {
    transport: transport.name,
    metrics,
    async listen() {
      const port = await transport.listen(config.server.host, config.server.port);
      listening = true;
      logger.info({ port, host: config.server.host, server: transport.name }, 'gateway listening');
      return port;
    },
    push,
    addReadinessCheck(name, check) { checks.set(name, check); },
  };
}
