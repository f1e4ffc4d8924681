import { createRequire } from 'node:module';
import type * as UwsTypes from 'uWebSockets.js';
import { formatIp } from './ip.js';
import { statusLine } from './status-text.js';
import {
  METHODS_WITH_BODY,
  type BodyTooLarge, type Header, type HttpResponseSink, type RequestHead, type RequestHeaders,
  type Transport, type TransportOptions, type WsSocket,
} from './types.js';

/**
 * The uWebSockets.js server. Rules this file keeps: a request's headers are
 * read before the callback returns; a message's ArrayBuffer is decoded by the
 * handler before it returns (it is neutered afterwards); every response and
 * every async send is corked; send() reports back-pressure to the caller.
 */

type Uws = typeof UwsTypes;

/** Loads the native module; throws if the binary does not fit this platform. */
export function loadUws(): Uws {
  const require = createRequire(import.meta.url);
  return require('uWebSockets.js') as Uws;
}

function readHeaders(req: UwsTypes.HttpRequest): RequestHeaders {
  return {
    cookie: req.getHeader('cookie'),
    origin: req.getHeader('origin'),
    userAgent: req.getHeader('user-agent'),
    contentType: req.getHeader('content-type'),
    forwardedFor: req.getHeader('x-forwarded-for'),
    realIp: req.getHeader('x-real-ip'),
    forwardedProto: req.getHeader('x-forwarded-proto'),
    authorization: req.getHeader('authorization'),
    accessControlRequestHeaders: req.getHeader('access-control-request-headers'),
    spAnonymous: req.getHeader('sp-anonymous'),
  };
}

function readHead(req: UwsTypes.HttpRequest, res: UwsTypes.HttpResponse, now: number): RequestHead {
  return {
    method: req.getCaseSensitiveMethod().toUpperCase(),
    path: req.getUrl(),
    query: req.getQuery() ?? '',
    headers: readHeaders(req),
    peerIp: formatIp(new Uint8Array(res.getRemoteAddress())),
    receivedAt: now,
  };
}

class UwsResponse implements HttpResponseSink {
  aborted = false;
  done = false;
  constructor(private readonly res: UwsTypes.HttpResponse, private readonly onFinish: () => void) {}

  send(status: number, headers: readonly Header[], body: string | Uint8Array): void {
    if (this.aborted || this.done) return;
    this.done = true;
    const res = this.res;
    res.cork(() => {
      res.writeStatus(statusLine(status));
      for (const [name, value] of headers) res.writeHeader(name, value);
      res.end(body);
    });
    this.onFinish();
  }
}

interface ConnData<S> {
  state: S;
  socket: UwsSocket | null;
}

class UwsSocket implements WsSocket {
  closed = false;
  constructor(private readonly ws: UwsTypes.WebSocket<ConnData<unknown>>) {}
  send(data: string | Uint8Array, binary: boolean): number {
    if (this.closed) return 0;
    // 1: written without back-pressure — skip the second call into the binding.
    if (this.ws.send(data, binary, false) === 1) return 0;
    return this.ws.getBufferedAmount();
  }
  end(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.end(code, reason);
  }
  cork(fn: () => void): void {
    if (this.closed) return;
    this.ws.cork(fn);
  }
  forceClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.close();
  }
}

export function createUwsTransport<S>(o: TransportOptions<S>, uws: Uws = loadUws()): Transport {
  const app = uws.App();
  let listenSocket: UwsTypes.us_listen_socket | null = null;
  const sockets = new Set<ConnData<S>>();
  let inFlight = 0;
  let idleWaiters: (() => void)[] = [];
  const finished = (): void => {
    inFlight--;
    if (inFlight === 0 && idleWaiters.length > 0) { const w = idleWaiters; idleWaiters = []; for (const r of w) r(); }
  };
  let closeWaiters: (() => void)[] = [];

  app.ws<ConnData<S>>(o.wsPath, {
    maxPayloadLength: o.hardFrameBytes,
    // uWS counts idle time in 4 s steps and needs at least 8 s.
    idleTimeout: o.idleTimeoutSec === 0 ? 0 : Math.max(8, o.idleTimeoutSec),
    sendPingsAutomatically: true,
    // The gateway closes slow readers itself, with a close code; uWS must not drop replies first.
    maxBackpressure: 64 * 1024 * 1024,
    closeOnBackpressureLimit: 0,
    compression: uws.DISABLED,
    upgrade(res, req, context) {
      const head = readHead(req, res, o.now());
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      const decision = o.ws.upgrade(head);
      if (!decision.accept) {
        res.cork(() => {
          res.writeStatus(statusLine(decision.status));
          for (const [name, value] of decision.headers) res.writeHeader(name, value);
          res.end(decision.body);
        });
        return;
      }
      res.upgrade<ConnData<S>>({ state: decision.state, socket: null }, key, protocol, extensions, context);
    },
    open(ws) {
      const data = ws.getUserData();
      const socket = new UwsSocket(ws as unknown as UwsTypes.WebSocket<ConnData<unknown>>);
      data.socket = socket;
      sockets.add(data);
      o.ws.open(socket, data.state);
    },
    message(ws, message, isBinary) {
      const data = ws.getUserData();
      // A view, not a copy: the handler decodes it before returning.
      o.ws.message(data.socket!, data.state, Buffer.from(message), isBinary);
    },
    drain(ws) {
      const data = ws.getUserData();
      o.ws.drain(data.socket!, data.state);
    },
    close(ws, code) {
      const data = ws.getUserData();
      data.socket!.closed = true;
      sockets.delete(data);
      o.ws.close(data.socket!, data.state, code);
      if (sockets.size === 0 && closeWaiters.length > 0) { const w = closeWaiters; closeWaiters = []; for (const r of w) r(); }
    },
  });

  app.any('/*', (res, req) => {
    inFlight++;
    const head = readHead(req, res, o.now());
    const sink = new UwsResponse(res, finished);
    res.onAborted(() => {
      if (!sink.done) { sink.aborted = true; finished(); }
    });
    if (!METHODS_WITH_BODY.has(head.method)) {
      o.http.request(head, sink, null);
      return;
    }
    const limit = o.bodyLimit?.(head) ?? o.maxBodyBytes;
    const declared = Number(req.getHeader('content-length') || '0');
    if (declared > limit) {
      o.http.request(head, sink, { tooLarge: declared } satisfies BodyTooLarge);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    res.onData((chunk, isLast) => {
      if (refused || sink.aborted) return;
      size += chunk.byteLength;
      if (size > limit) {
        refused = true;
        o.http.request(head, sink, { tooLarge: size });
        return;
      }
      // uWS neuters the chunk after this callback: copy it.
      chunks.push(Buffer.copyBytesFrom(new Uint8Array(chunk)));
      if (isLast) o.http.request(head, sink, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
  });

  return {
    name: 'uws',
    listen(host, port) {
      return new Promise((resolve, reject) => {
        app.listen(host, port, (token) => {
          if (token === false) { reject(new Error(`uWebSockets.js could not listen on ${host}:${port}`)); return; }
          listenSocket = token;
          resolve(uws.us_socket_local_port(token as unknown as UwsTypes.us_socket));
        });
      });
    },
    async closeListener() {
      if (listenSocket !== null) { uws.us_listen_socket_close(listenSocket); listenSocket = null; }
    },
    closeWebSockets(code, reason) {
      if (sockets.size === 0) return Promise.resolve();
      const done = new Promise<void>((resolve) => closeWaiters.push(resolve));
      for (const data of [...sockets]) data.socket?.end(code, reason);
      return done;
    },
    idle() {
      if (inFlight === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    destroy() {
      for (const data of [...sockets]) data.socket?.forceClose();
      // uWS has no "close all keep-alive sockets" call: the app is dropped and
      // idle HTTP connections close on their own timeout or at process exit.
    },
  };
}
