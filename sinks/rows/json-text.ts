import type { ByteBuffer } from './byte-buffer.js';

/**
 * JSON text written straight into a ByteBuffer as UTF-8: string literals for
 * JSONEachRow, and JSON.stringify's exact output for props (plain objects,
 * arrays, strings, numbers, booleans, null). Node 20's JSON.stringify costs
 * about 400 ns even for a three-key object, which was half of an encode;
 * this writes the same bytes in JS. Anything else (toJSON, Dates, class
 * instances, deep or cyclic nesting, bigints) falls back to JSON.stringify
 * itself, so the output is always JSON.stringify's and its errors are its own.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const HEX = '0123456789abcdef';
/** Nesting beyond this goes to JSON.stringify, which also detects cycles. */
const MAX_DEPTH = 32;

/**
 * Strings at least this long are first checked with one regex and, when
 * nothing needs escaping, written by the native UTF-8 encoder.
 */
const LONG = 64;
// eslint-disable-next-line no-control-regex -- control characters are exactly what must be found
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;

/**
 * `s` as a JSON string literal, quotes included. A lone surrogate is written
 * as JSON.stringify does (`\ud800`) when `escapeLone`, else as U+FFFD — the
 * choice for top-level JSONEachRow values, because ClickHouse 18.16 refuses the
 * whole insert on a `\ud800` escape, and RowBinary's UTF-8 gives U+FFFD too.
 */
export function writeStringLiteral(out: ByteBuffer, s: string, escapeLone: boolean): void {
  const len = s.length;
  if (len >= LONG && !NEEDS_ESCAPE.test(s)) {
    out.reserve(len * 3 + 2);
    const pos = out.pos;
    out.buf[pos] = QUOTE;
    const n = out.utf8(s, pos + 1);
    out.buf[pos + 1 + n] = QUOTE;
    out.pos = pos + 2 + n;
    return;
  }
  // Worst case 6 bytes per UTF-16 unit (\u001f, \ud800).
  out.reserve(len * 6 + 2);
  const buf = out.buf;
  let pos = out.pos;
  buf[pos++] = QUOTE;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (c >= 0x20 && c !== QUOTE && c !== BACKSLASH) {
        buf[pos++] = c;
      } else {
        buf[pos++] = BACKSLASH;
        switch (c) {
          case QUOTE: buf[pos++] = QUOTE; break;
          case BACKSLASH: buf[pos++] = BACKSLASH; break;
          case 0x08: buf[pos++] = 0x62; break; // b
          case 0x09: buf[pos++] = 0x74; break; // t
          case 0x0a: buf[pos++] = 0x6e; break; // n
          case 0x0c: buf[pos++] = 0x66; break; // f
          case 0x0d: buf[pos++] = 0x72; break; // r
          default: pos = writeUnicodeEscape(buf, pos, c);
        }
      }
    } else if (c < 0x800) {
      buf[pos++] = 0xc0 | (c >> 6);
      buf[pos++] = 0x80 | (c & 0x3f);
    } else if (c < 0xd800 || c > 0xdfff) {
      buf[pos++] = 0xe0 | (c >> 12);
      buf[pos++] = 0x80 | ((c >> 6) & 0x3f);
      buf[pos++] = 0x80 | (c & 0x3f);
    } else {
      const d = c <= 0xdbff && i + 1 < len ? s.charCodeAt(i + 1) : 0;
      if (d >= 0xdc00 && d <= 0xdfff) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        buf[pos++] = 0xf0 | (cp >> 18);
        buf[pos++] = 0x80 | ((cp >> 12) & 0x3f);
        buf[pos++] = 0x80 | ((cp >> 6) & 0x3f);
        buf[pos++] = 0x80 | (cp & 0x3f);
        i++;
      } else if (escapeLone) {
        buf[pos++] = BACKSLASH;
        pos = writeUnicodeEscape(buf, pos, c);
      } else {
        buf[pos++] = 0xef; // U+FFFD
        buf[pos++] = 0xbf;
        buf[pos++] = 0xbd;
      }
    }
  }
  buf[pos++] = QUOTE;
  out.pos = pos;
}

/** `u` and four lower-case hex digits, after a backslash already written. */
function writeUnicodeEscape(buf: Buffer, pos: number, c: number): number {
  buf[pos] = 0x75; // u
  buf[pos + 1] = HEX.charCodeAt(c >> 12);
  buf[pos + 2] = HEX.charCodeAt((c >> 8) & 0xf);
  buf[pos + 3] = HEX.charCodeAt((c >> 4) & 0xf);
  buf[pos + 4] = HEX.charCodeAt(c & 0xf);
  return pos + 5;
}

/** ASCII text (numbers, literals). */
export function writeAscii(out: ByteBuffer, s: string): void {
  const n = s.length;
  out.reserve(n);
  const buf = out.buf;
  const pos = out.pos;
  for (let i = 0; i < n; i++) buf[pos + i] = s.charCodeAt(i);
  out.pos = pos + n;
}

/**
 * JSON.stringify(v)'s text, written at out.pos; false (nothing written) when
 * there is none (undefined, a function, a symbol, a toJSON returning
 * undefined). Throws what JSON.stringify throws (a bigint, a cycle).
 */
export function writeJsonText(out: ByteBuffer, v: unknown): boolean {
  const start = out.pos;
  if (writePlain(out, v, 0)) return true;
  out.pos = start;
  const text = JSON.stringify(v) as string | undefined;
  if (text === undefined) return false;
  out.reserve(text.length * 3);
  out.pos += out.utf8(text, out.pos);
  return true;
}

/** Plain data only; false (output to be discarded) for anything JSON.stringify treats specially. */
function writePlain(out: ByteBuffer, v: unknown, depth: number): boolean {
  switch (typeof v) {
    case 'string':
      writeStringLiteral(out, v, true);
      return true;
    case 'number':
      // String(-0) is "0", as in JSON.stringify.
      writeAscii(out, Number.isFinite(v) ? String(v) : 'null');
      return true;
    case 'boolean':
      writeAscii(out, v ? 'true' : 'false');
      return true;
    case 'object': {
      if (v === null) {
        writeAscii(out, 'null');
        return true;
      }
      if (depth >= MAX_DEPTH || (v as { toJSON?: unknown }).toJSON !== undefined) return false;
      const proto: unknown = Object.getPrototypeOf(v);
      if (Array.isArray(v)) return proto === Array.prototype && writeArray(out, v as unknown[], depth);
      if (proto !== Object.prototype && proto !== null) return false;
      return writeObject(out, v as Record<string, unknown>, depth);
    }
    default:
      return false;
  }
}

function writeArray(out: ByteBuffer, a: readonly unknown[], depth: number): boolean {
  writeByte(out, 0x5b); // [
  for (let i = 0; i < a.length; i++) {
    if (i > 0) writeByte(out, 0x2c);
    const e = a[i];
    if (e === undefined || typeof e === 'function' || typeof e === 'symbol') writeAscii(out, 'null');
    else if (!writePlain(out, e, depth + 1)) return false;
  }
  writeByte(out, 0x5d); // ]
  return true;
}

function writeObject(out: ByteBuffer, o: Record<string, unknown>, depth: number): boolean {
  writeByte(out, 0x7b); // {
  let first = true;
  for (const key of Object.keys(o)) {
    const e = o[key];
    if (e === undefined || typeof e === 'function' || typeof e === 'symbol') continue;
    if (!first) writeByte(out, 0x2c);
    first = false;
    writeStringLiteral(out, key, true);
    writeByte(out, 0x3a); // :
    if (!writePlain(out, e, depth + 1)) return false;
  }
  writeByte(out, 0x7d); // }
  return true;
}

function writeByte(out: ByteBuffer, b: number): void {
  out.reserve(1);
  out.buf[out.pos++] = b;
}

/**
 * The bytes `from` holds (JSON text: no raw control characters) as a JSON
 * string literal: only `"` and `\` need escaping.
 */
export function writeQuotedBytes(out: ByteBuffer, from: ByteBuffer): void {
  const src = from.buf;
  const n = from.pos;
  out.reserve(n * 2 + 2);
  const buf = out.buf;
  let pos = out.pos;
  buf[pos++] = QUOTE;
  for (let i = 0; i < n; i++) {
    const b = src[i] as number;
    if (b === QUOTE || b === BACKSLASH) buf[pos++] = BACKSLASH;
    buf[pos++] = b;
  }
  buf[pos++] = QUOTE;
  out.pos = pos;
}
