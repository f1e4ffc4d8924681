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

// The fixed parts of the default msgpack reply: {"jsonrpc":"2.0","id":…,"result":{"id":…,"key":…,"uid":…}}.
const MP_HEAD = Buffer.from([0x83, 0xa7, ...Buffer.from('jsonrpc'), 0xa3, ...Buffer.from('2.0'), 0xa2, ...Buffer.from('id')]);
const MP_RESULT = Buffer.from([0xa6, ...Buffer.from('result'), 0x83, 0xa2, ...Buffer.from('id')]);
const MP_KEY = Buffer.from([0xa3, ...Buffer.from('key')]);
const MP_UID = Buffer.from([0xa3, ...Buffer.from('uid')]);

/** Bytes of a msgpack str header for a string of `n` bytes (the shortest form). */
function strHeaderSize(n: number): number {
  return n < 32 ? 1 : n < 0x100 ? 2 : 3;
}

function writeStrHeader(buf: Buffer, at: number, n: number): number {
  if (n < 32) { buf[at] = 0xa0 | n; return at + 1; }
  if (n < 0x100) { buf[at] = 0xd9; buf[at + 1] = n; return at + 2; }
  buf[at] = 0xda; buf[at + 1] = n >>> 8; buf[at + 2] = n & 0xff;
  return at + 3;
}

/**
 * The default reply in msgpack, written into one buffer instead of packing two
 * objects (packr.pack was 7% of the gateway's CPU with msgpack frames). Plain
 * msgpack in its shortest forms (fixmap where msgpackr writes map16); the
 * event id, key and uid are ASCII by their grammars. Request ids msgpackr would encode otherwise (floats, negatives,
 * integers above 2^32, strings of 64 KB) go through packr.
 */
export function defaultResultMsgpack(id: RpcId, eventId: string, key: string, uid: string): RawMsgpack | Record<string, unknown> {
  let idBytes: number;
  let idLength = 0;
  if (typeof id === 'number') {
    if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) return resultResponse(id, { id: eventId, key, uid });
    idBytes = id < 0x80 ? 1 : id < 0x100 ? 2 : id < 0x10000 ? 3 : 5;
  } else if (typeof id === 'string') {
    idLength = Buffer.byteLength(id);
    if (idLength >= 0x10000) return resultResponse(id, { id: eventId, key, uid });
    idBytes = strHeaderSize(idLength) + idLength;
  } else {
    idBytes = 1; // nil
  }
  const size = MP_HEAD.length + idBytes + MP_RESULT.length + strHeaderSize(eventId.length) + eventId.length
    + MP_KEY.length + strHeaderSize(key.length) + key.length + MP_UID.length + strHeaderSize(uid.length) + uid.length;
  const buf = Buffer.allocUnsafe(size);
  let at = MP_HEAD.copy(buf, 0);
  if (typeof id === 'number') {
    if (id < 0x80) buf[at++] = id;
    else if (id < 0x100) { buf[at++] = 0xcc; buf[at++] = id; }
    else if (id < 0x10000) { buf[at++] = 0xcd; buf.writeUInt16BE(id, at); at += 2; }
    else { buf[at++] = 0xce; buf.writeUInt32BE(id, at); at += 4; }
  } else if (typeof id === 'string') {
    at = writeStrHeader(buf, at, idLength);
    at += buf.write(id, at, 'utf8');
  } else {
    buf[at++] = 0xc0;
  }
  at += MP_RESULT.copy(buf, at);
  at = writeStrHeader(buf, at, eventId.length);
  at += buf.write(eventId, at, 'latin1');
  at += MP_KEY.copy(buf, at);
  at = writeStrHeader(buf, at, key.length);
  at += buf.write(key, at, 'latin1');
  at += MP_UID.copy(buf, at);
  at = writeStrHeader(buf, at, uid.length);
  buf.write(uid, at, 'latin1');
  return new RawMsgpack(buf);
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
