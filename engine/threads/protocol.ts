import { join } from 'node:path';
import type { Config } from '../config/index.js';
import type { Envelope } from '../envelope/index.js';
import { createError, type ErrorCode, type ErrorParams } from '../errors/index.js';
import type { Reply } from '../ingest/index.js';
import type { CoreStats } from '../core.js';

/**
 * What the main thread and the worker threads say to each other
 * (docs/threads.md). Events and replies travel in batches — one message per
 * event loop turn and direction, not one per event — as flat arrays of
 * primitives: structured clone copies a flat array of an envelope's fields
 * at ~1.2 µs per event for both ends together, against ~2.9 µs for the
 * envelope objects themselves (measured here, 1,000-event batches).
 */

/** Fields per event in an `events` batch: the reply ref, then the envelope's fields in ENVELOPE order. */
export const EVENT_STRIDE = 18;
/** Fields per reply in a `replies` batch: ref, kind, payload. */
export const REPLY_STRIDE = 3;

export interface WorkerInit {
  readonly config: Config;
  readonly index: number;
  readonly count: number;
  readonly storeKind: 'chdb' | 'server';
}

/** Where worker `index` keeps its write-ahead log and spools. */
export function shardDataDir(dataDir: string, index: number): string {
  return join(dataDir, 'threads', String(index));
}

/** Main → worker. */
export type ToWorker =
  /** EVENT_STRIDE values per event; ref 0: a notification, nobody waits for a reply. */
  | { readonly t: 'events'; readonly b: unknown[] }
  | { readonly t: 'store-reply'; readonly id: number; readonly ok: boolean; readonly value?: unknown; readonly error?: WireError }
  /** Post `stats` now. */
  | { readonly t: 'stats' }
  /** Run the worker's ordered shutdown (drain, passivate, flush), answer `stopped`, exit. */
  | { readonly t: 'stop'; readonly reason: string };

/** Worker → main. */
export type FromWorker =
  | { readonly t: 'ready' }
  /**
   * REPLY_STRIDE values per reply; `received`: events taken from the port so
   * far (the main thread's transit count); `refused`: [channel, error code]
   * pairs of events the thread refused since the last batch (the gateway
   * had counted them as accepted).
   */
  | { readonly t: 'replies'; readonly b: unknown[]; readonly received: number; readonly refused: string[] }
  | { readonly t: 'push'; readonly projectId: number; readonly uid: string; readonly params: unknown }
  | { readonly t: 'store'; readonly id: number; readonly op: StoreOp; readonly args: unknown[] }
  | { readonly t: 'stats'; readonly stats: CoreStats; readonly saturated: boolean; readonly loop: LoopTime }
  | { readonly t: 'stopped'; readonly ok: boolean }
  | { readonly t: 'failed'; readonly error: WireError };

/** A thread's event loop since it started, ms busy and ms idle (performance.eventLoopUtilization). */
export interface LoopTime {
  readonly active: number;
  readonly idle: number;
}

export type StoreOp = 'connect' | 'ping' | 'command' | 'query' | 'insert';

/** An error as it crosses threads: what classifyStoreError and the logs read of it. */
export interface WireError {
  readonly message: string;
  readonly name?: string;
  readonly code?: string;
  readonly clickhouseCode?: number;
  readonly statusCode?: number;
  readonly stack?: string;
}

export function toWireError(err: unknown): WireError {
  if (!(err instanceof Error)) return { message: String(err) };
  const e = err as Error & { code?: unknown; clickhouseCode?: unknown; statusCode?: unknown };
  return {
    message: e.message,
    name: e.name,
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
    ...(typeof e.clickhouseCode === 'number' ? { clickhouseCode: e.clickhouseCode } : {}),
    ...(typeof e.statusCode === 'number' ? { statusCode: e.statusCode } : {}),
    ...(e.stack === undefined ? {} : { stack: e.stack }),
  };
}

export function fromWireError(w: WireError): Error {
  const err = new Error(w.message) as Error & { code?: string; clickhouseCode?: number; statusCode?: number };
  if (w.name !== undefined) err.name = w.name;
  if (w.code !== undefined) err.code = w.code;
  if (w.clickhouseCode !== undefined) err.clickhouseCode = w.clickhouseCode;
  if (w.statusCode !== undefined) err.statusCode = w.statusCode;
  if (w.stack !== undefined) err.stack = w.stack;
  return err;
}

export function writeEvent(out: unknown[], ref: number, e: Envelope): void {
  out.push(ref, e.id, e.projectId, e.key, e.channel, e.service, e.name, e.uid, e.userId, e.ts, e.receivedAt, e.ip, e.userAgent, e.pageUrl, e.pageReferrer, e.pageTitle, e.data, e.idFromClient);
}

/** The envelope at `i` (a multiple of EVENT_STRIDE), in createEnvelope's field order (one hidden class). */
export function readEvent(b: readonly unknown[], i: number): Envelope {
  return {
    id: b[i + 1] as string,
    projectId: b[i + 2] as number,
    key: b[i + 3] as string,
    channel: b[i + 4] as string,
    service: b[i + 5] as string,
    name: b[i + 6] as string,
    uid: b[i + 7] as string,
    userId: b[i + 8] as string | null,
    ts: b[i + 9] as number,
    receivedAt: b[i + 10] as number,
    ip: b[i + 11] as string,
    userAgent: b[i + 12] as string,
    pageUrl: b[i + 13] as string,
    pageReferrer: b[i + 14] as string,
    pageTitle: b[i + 15] as string,
    data: b[i + 16] as Envelope['data'],
    idFromClient: b[i + 17] as boolean,
  };
}

const REPLY_JSON = 0;
const REPLY_PIXEL = 1;
const REPLY_REDIRECT = 2;
const REPLY_ERROR = 3;

export function writeReply(out: unknown[], ref: number, reply: Reply): void {
  switch (reply.kind) {
    case 'json': out.push(ref, REPLY_JSON, reply.data ?? null); break;
    case 'pixel': out.push(ref, REPLY_PIXEL, null); break;
    case 'redirect': out.push(ref, REPLY_REDIRECT, reply.location); break;
    case 'error': out.push(ref, REPLY_ERROR, [reply.error.code, reply.error.params]); break;
  }
}

const DEFAULT_JSON: Reply = Object.freeze({ kind: 'json' });
const PIXEL: Reply = Object.freeze({ kind: 'pixel' });

export function readReply(b: readonly unknown[], i: number): Reply {
  const payload = b[i + 2];
  switch (b[i + 1]) {
    case REPLY_JSON: return payload === null ? DEFAULT_JSON : { kind: 'json', data: payload as Record<string, unknown> };
    case REPLY_PIXEL: return PIXEL;
    case REPLY_REDIRECT: return { kind: 'redirect', location: payload as string };
    default: {
      const [code, params] = payload as [ErrorCode, ErrorParams];
      return { kind: 'error', error: createError(code, params) };
    }
  }
}
