import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { normalizeIp } from './ip.js';
import { statusLine } from './status-text.js';
import {
  METHODS_WITH_BODY,
  type Header, type HttpResponseSink, type RequestHead, type RequestHeaders,
  type Transport, type TransportOptions, type WsSocket,
} from './types.js';

/**
 * The fallback server on node:http and `ws`, for platforms where the
 * uWebSockets.js binary does not load. Same contract, same tests.
 */

/** How long an idle connection may take to answer our close frame before it is dropped. */
const IDLE_CLOSE_GRACE_MS = 2_000;

function header(req: IncomingMessage, name: string): string {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v ?? '';
}

function readHead(req: IncomingMessage, now: number): RequestHead {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const headers: RequestHeaders = {
    cookie: header(req, 'cookie'),
    origin: header(req, 'origin'),
    userAgent: header(req, 'user-agent'),
    contentType: header(req, 'content-type'),
    forwardedFor: header(req, 'x-forwarded-for'),
    realIp: header(req, 'x-real-ip'),
    forwardedProto: header(req, 'x-forwarded-proto'),
    authorization: header(req, 'authorization'),
    accessControlRequestHeaders: header(req, 'access-control-request-headers'),
    spAnonymous: header(req, 'sp-anonymous'),
  };
  return {
    method: (req.method ?? 'GET').toUpperCase(),
    path: q < 0 ? url : url.slice(0, q),
    query: q < 0 ? '' : url.slice(q + 1),
    headers,
    peerIp: normalizeIp(req.socket.remoteAddress),
    receivedAt: now,
  };
}

class NodeResponse implements HttpResponseSink {
  done = false;
  constructor(private readonly res: ServerResponse, private readonly onFinish: () => void) {}
  get aborted(): boolean {
    return this.res.destroyed || this.res.writableEnded;
  }
  send(status: number, headers: readonly Header[], body: string | Uint8Array): void {
    if (this.done) return;
    this.done = true;
    if (!this.aborted) {
      const h: Record<string, string | string[]> = {};
      for (const [name, value] of headers) {
        const prev = h[name];
        h[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
      }
      this.res.writeHead(status, h);
      this.res.end(body);
    }
    this.onFinish();
  }
}

class NodeSocket implements WsSocket {
  closed = false;
  lastActivity: number;
  constructor(readonly ws: WebSocket, now: number) {
    this.lastActivity = now;
  }
  send(data: string | Uint8Array, binary: boolean): number {
    if (this.closed) return 0;
    this.ws.send(data, { binary });
    return this.ws.bufferedAmount;
  }
  end(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.close(code, reason);
  }
  cork(fn: () => void): void {
    const raw = (this.ws as unknown as { _socket?: Duplex })._socket;
    if (raw === undefined) { fn(); return; }
    raw.cork();
    try { fn(); } finally { raw.uncork(); }
  }
}

function rejectUpgrade(socket: Duplex, status: number, headers: readonly Header[], body: string): void {
  const lines = [`HTTP/1.1 ${statusLine(status)}`, 'Connection: close', `Content-Length: ${Buffer.byteLength(body)}`];
  for (const [name, value] of headers) lines.push(`${name}: ${value}`);
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

export function createNodeTransport<S>(o: TransportOptions<S>): Transport {
  let inFlight = 0;
  let idleWaiters: (() => void)[] = [];
  const finished = (): void => {
    inFlight--;
    if (inFlight === 0 && idleWaiters.length > 0) { const w = idleWaiters; idleWaiters = []; for (const r of w) r(); }
  };
  const sockets = new Map<NodeSocket, S>();
  let closeWaiters: (() => void)[] = [];

  const server = createServer((req, res) => {
    inFlight++;
    const head = readHead(req, o.now());
    const sink = new NodeResponse(res, finished);
    res.on('close', () => { if (!sink.done) { sink.done = true; finished(); } });
    if (!METHODS_WITH_BODY.has(head.method)) {
      req.resume();
      o.http.request(head, sink, null);
      return;
    }
    const limit = o.bodyLimit?.(head) ?? o.maxBodyBytes;
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > limit) {
      res.shouldKeepAlive = false;
      o.http.request(head, sink, { tooLarge: declared });
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > limit) {
        refused = true;
        res.shouldKeepAlive = false;
        o.http.request(head, sink, { tooLarge: size });
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!refused) o.http.request(head, sink, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    req.on('error', () => { if (!sink.done) { sink.done = true; finished(); } });
  });
  server.keepAliveTimeout = 10_000;

  const wss = new WebSocketServer({ noServer: true, maxPayload: o.hardFrameBytes, perMessageDeflate: false });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, headBuf: Buffer) => {
    const head = readHead(req, o.now());
    if (head.path !== o.wsPath) {
      rejectUpgrade(socket, 404, [['content-type', 'application/json']], JSON.stringify({ error: { code: 'FLOW_ERR_NOT_FOUND', message: `no route for ${head.method} ${head.path}` } }));
      return;
    }
    const decision = o.ws.upgrade(head);
    if (!decision.accept) {
      rejectUpgrade(socket, decision.status, decision.headers, decision.body);
      return;
    }
    wss.handleUpgrade(req, socket, headBuf, (ws) => {
      const conn = new NodeSocket(ws, o.now());
      sockets.set(conn, decision.state);
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        conn.lastActivity = o.now();
        o.ws.message(conn, decision.state, data, isBinary);
      });
      ws.on('pong', () => { conn.lastActivity = o.now(); });
      (ws as unknown as { _socket: Duplex })._socket.on('drain', () => o.ws.drain(conn, decision.state));
      ws.on('close', (code: number) => {
        conn.closed = true;
        sockets.delete(conn);
        o.ws.close(conn, decision.state, code);
        if (sockets.size === 0 && closeWaiters.length > 0) { const w = closeWaiters; closeWaiters = []; for (const r of w) r(); }
      });
      ws.on('error', () => { /* 'close' follows; the handler learns of it there */ });
      o.ws.open(conn, decision.state);
    });
  });

  // Idle connections: ping at half the timeout (a pong counts as activity),
  // close at the timeout — what uWS does with sendPingsAutomatically. uWS
  // drops the socket at once; ws would wait 30 s for the close frame to be
  // answered, which a peer that answered no ping for the whole timeout will
  // not do, so it is dropped after a short grace.
  let sweeper: NodeJS.Timeout | null = null;
  if (o.idleTimeoutSec > 0) {
    const timeoutMs = o.idleTimeoutSec * 1000;
    sweeper = setInterval(() => {
      const now = o.now();
      for (const conn of sockets.keys()) {
        const idle = now - conn.lastActivity;
        if (idle >= timeoutMs + IDLE_CLOSE_GRACE_MS) conn.ws.terminate();
        else if (idle >= timeoutMs) conn.end(1001, 'idle timeout');
        else if (idle >= timeoutMs / 2) conn.ws.ping();
      }
    }, Math.min(1000, timeoutMs / 4));
    sweeper.unref();
  }

  return {
    name: 'ws',
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const addr = server.address();
          resolve(typeof addr === 'object' && addr !== null ? addr.port : port);
        });
      });
    },
    async closeListener() {
      // Stop accepting; don't wait for open connections here — upgraded
      // WebSockets count as open until closeWebSockets() runs next.
      if (server.listening) server.close();
      server.closeIdleConnections();
    },
    closeWebSockets(code, reason) {
      if (sockets.size === 0) return Promise.resolve();
      const done = new Promise<void>((resolve) => closeWaiters.push(resolve));
      for (const conn of [...sockets.keys()]) conn.end(code, reason);
      return done;
    },
    idle() {
      if (inFlight === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    destroy() {
      if (sweeper !== null) clearInterval(sweeper);
      for (const conn of sockets.keys()) conn.ws.terminate();
      server.closeAllConnections();
    },
  };
}
