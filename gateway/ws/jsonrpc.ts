import { Packr } from 'msgpackr';
import type { FlowError } from '../../engine/index.js';

/**
 * JSON-RPC 2.0 framing: text frames carry JSON, binary frames the same
 * objects in msgpack. A reply goes back in the encoding of its request.
 */

export type RpcId = string | number | null;

export interface RpcRequest {
  readonly jsonrpc: '2.0';
  readonly method: string;
  readonly params?: unknown;
  readonly id?: RpcId;
}

// useRecords: false keeps the wire plain msgpack any client library reads;
// copies are needed because the frame's memory is reused after the handler.
export const packr = new Packr({ useRecords: false, copyBuffers: true, mapsAsObjects: true });

/** JSON text built without JSON.stringify (the default reply is a template). Text frames only. */
export class RawJson {
  constructor(readonly text: string) {}
}

/** msgpack bytes built without packr (the default reply is a template). Binary frames only. */
export class RawMsgpack {
  constructor(readonly bytes: Buffer) {}
}

export function encode(message: unknown, binary: boolean): string | Uint8Array {
  if (message instanceof RawJson) return message.text;
  if (message instanceof RawMsgpack) return message.bytes;
  return binary ? packr.pack(message) : JSON.stringify(message);
}

/** A binary batch reply: a msgpack array of replies, templated ones copied in as they are. */
export function encodeMsgpackArray(items: readonly unknown[]): Buffer {
  const parts = items.map((r) => (r instanceof RawMsgpack ? r.bytes : packr.pack(r)));
  const n = parts.length;
  const head = n < 16 ? Buffer.of(0x90 | n) : n < 0x10000 ? Buffer.of(0xdc, n >>> 8, n & 0xff) : Buffer.of(0xdd, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  return Buffer.concat([head, ...parts]);
}

/**
 * The default reply as text, without building and stringifying two objects
 * (17% of the gateway's CPU went to replies). Safe to template: the event id
 * is a UUID, the key follows the key grammar and the uid matches
 * [A-Za-z0-9._:-] — none needs JSON escaping.
 */
export function defaultResultJson(id: RpcId, eventId: string, key: string, uid: string): RawJson {
  const idText = typeof id === 'number' ? String(id) : JSON.stringify(id);
  return new RawJson(`{"jsonrpc":"2.0","id":${idText},"result":{"id":"${eventId}","key":"${key}","uid":"${uid}"}}`);
}

// The fixed parts of the default msgpack reply, {"jsonrpc":"2.0","id":…,"result":{"id":…,"key":…,"uid":…}},
// as latin1 strings: one char per byte.
const MP_HEAD = latin1([0x83, 0xa7, ...Buffer.from('jsonrpc'), 0xa3, ...Buffer.from('2.0'), 0xa2, ...Buffer.from('id')]);
const MP_RESULT = latin1([0xa6, ...Buffer.from('result'), 0x83, 0xa2, ...Buffer.from('id')]);
const MP_KEY = latin1([0xa3, ...Buffer.from('key')]);
const MP_UID = latin1([0xa3, ...Buffer.from('uid')]);
const MP_NIL = latin1([0xc0]);

function latin1(bytes: readonly number[]): string {
  return Buffer.from(bytes).toString('latin1');
}

/** A msgpack str of `n` bytes: its header in the shortest form, as latin1 chars. */
function strHeader(n: number): string {
  if (n < 32) return String.fromCharCode(0xa0 | n);
  if (n < 0x100) return String.fromCharCode(0xd9, n);
  return String.fromCharCode(0xda, n >>> 8, n & 0xff);
}

/** A non-negative integer below 2^32 in the shortest msgpack form, as latin1 chars. */
function uintBytes(n: number): string {
  if (n < 0x80) return String.fromCharCode(n);
  if (n < 0x100) return String.fromCharCode(0xcc, n);
  if (n < 0x10000) return String.fromCharCode(0xcd, n >>> 8, n & 0xff);
  return String.fromCharCode(0xce, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/**
 * The default reply in msgpack without packing two objects (packr.pack was 7%
 * of the gateway's CPU with msgpack frames): the bytes are put together as a
 * latin1 string, one char per byte, and written by one Buffer.from — 30%
 * cheaper than writing the parts into a buffer one call each (measured:
 * ~200 vs ~310 ns a reply). Plain msgpack in its shortest forms (fixmap where
 * msgpackr writes map16); the event id, key and uid are ASCII by their
 * grammars. Request ids msgpackr would encode otherwise (floats, negatives,
 * integers above 2^32, strings of 64 KB) go through packr.
 */
export function defaultResultMsgpack(id: RpcId, eventId: string, key: string, uid: string): RawMsgpack | Record<string, unknown> {
  let idPart: string;
  if (typeof id === 'number') {
    if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) return resultResponse(id, { id: eventId, key, uid });
    idPart = uintBytes(id);
  } else if (typeof id === 'string') {
    const utf8 = Buffer.from(id, 'utf8');
    if (utf8.length >= 0x10000) return resultResponse(id, { id: eventId, key, uid });
    idPart = strHeader(utf8.length) + utf8.toString('latin1');
  } else {
    idPart = MP_NIL;
  }
  const bytes = MP_HEAD + idPart + MP_RESULT + strHeader(eventId.length) + eventId
    + MP_KEY + strHeader(key.length) + key + MP_UID + strHeader(uid.length) + uid;
  return new RawMsgpack(Buffer.from(bytes, 'latin1'));
}

export function errorResponse(id: RpcId, err: FlowError, rpcCode = err.rpcCode): Record<string, unknown> {
  const data: Record<string, unknown> = { code: err.code };
  if (err.params.retryAfter !== undefined) data.retryAfter = err.params.retryAfter;
  return { jsonrpc: '2.0', id, error: { code: rpcCode, message: err.message, data } };
}

export function resultResponse(id: RpcId, result: unknown): Record<string, unknown> {
  return { jsonrpc: '2.0', id, result };
}

/** The request's id if it has a usable one, for error replies to malformed requests. */
export function idOf(value: unknown): RpcId {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const id = (value as Record<string, unknown>).id;
    if (typeof id === 'string' || typeof id === 'number') return id;
  }
  return null;
}
