/**
 * The seam between the gateway's logic and a server implementation
 * (uWebSockets.js or ws + node:http). Like nats.js's Transport: the protocol
 * code never touches a socket API directly, so both servers pass the same
 * tests. Everything a handler needs from a request is copied out
 * synchronously into a RequestHead (a uWS request is only valid until the
 * callback returns).
 */

export interface RequestHeaders {
  readonly cookie: string;
  readonly origin: string;
  readonly userAgent: string;
  readonly contentType: string;
  readonly forwardedFor: string;
  readonly realIp: string;
  readonly forwardedProto: string;
  readonly authorization: string;
  readonly accessControlRequestHeaders: string;
  /** Snowplow's server-side anonymisation header (`SP-Anonymous: *`): no network user id, no IP. */
  readonly spAnonymous: string;
}

export interface RequestHead {
  /** Upper case. */
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  /** Raw query string without the `?`. */
  readonly query: string;
  readonly headers: RequestHeaders;
  /** The socket peer's address, IPv4-mapped IPv6 turned into IPv4. */
  readonly peerIp: string;
  /** Receive time, ms. */
  readonly receivedAt: number;
}

export type Header = readonly [name: string, value: string];

export interface HttpResponseSink {
  /** True once the client went away; send() is then a no-op. */
  readonly aborted: boolean;
  /** Writes the whole response: status, headers, body. */
  send(status: number, headers: readonly Header[], body: string | Uint8Array): void;
}

/** A body the transport refused to buffer. */
export interface BodyTooLarge {
  readonly tooLarge: number;
}

export interface HttpHandler {
  /**
   * Called once per request, with the body for methods that carry one
   * (null otherwise) or a BodyTooLarge marker past the configured limit.
   */
  request(head: RequestHead, res: HttpResponseSink, body: Buffer | null | BodyTooLarge): void;
}

export interface WsSocket {
  /** Queues a frame; returns the bytes still waiting to be written (back-pressure). */
  send(data: string | Uint8Array, binary: boolean): number;
  /** Closes with a close frame. */
  end(code: number, reason: string): void;
  /** Batches several sends into one write. */
  cork(fn: () => void): void;
}

export type UpgradeResult<S> =
  | { readonly accept: true; readonly state: S }
  | { readonly accept: false; readonly status: number; readonly headers: readonly Header[]; readonly body: string };

export interface WsHandler<S> {
  upgrade(head: RequestHead): UpgradeResult<S>;
  open(socket: WsSocket, state: S): void;
  /** `data` is valid only during this call: decode before returning. */
  message(socket: WsSocket, state: S, data: Buffer, binary: boolean): void;
  /** Called when buffered bytes went down after back-pressure. */
  drain(socket: WsSocket, state: S): void;
  close(socket: WsSocket, state: S, code: number): void;
}

export interface TransportOptions<S> {
  readonly http: HttpHandler;
  readonly ws: WsHandler<S>;
  readonly wsPath: string;
  readonly maxBodyBytes: number;
  /** This request's body limit, when it differs from maxBodyBytes (a protocol endpoint with a larger documented limit). */
  readonly bodyLimit?: (head: RequestHead) => number;
  /** Frames above this close the connection with 1009 without being buffered. */
  readonly hardFrameBytes: number;
  readonly idleTimeoutSec: number;
  readonly now: () => number;
}

export interface Transport {
  readonly name: 'uws' | 'ws';
  /** Resolves with the bound port. */
  listen(host: string, port: number): Promise<number>;
  /** Stops accepting new connections; open ones stay. */
  closeListener(): Promise<void>;
  /** Closes every open WebSocket with `code` and resolves when they are gone. */
  closeWebSockets(code: number, reason: string): Promise<void>;
  /** Resolves when no HTTP request is in flight. */
  idle(): Promise<void>;
  /** Force-closes everything left (last shutdown step). */
  destroy(): void;
}

export const EMPTY_HEADERS: RequestHeaders = Object.freeze({
  cookie: '', origin: '', userAgent: '', contentType: '', forwardedFor: '', realIp: '',
  forwardedProto: '', authorization: '', accessControlRequestHeaders: '', spAnonymous: '',
});

export const METHODS_WITH_BODY = new Set(['POST', 'PUT', 'PATCH']);
