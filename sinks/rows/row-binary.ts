import type { Capabilities, Row, TableDef } from '../schema/types.js';
import { ByteBuffer, trimScratch } from './byte-buffer.js';
import { encodeRows, type RowEncoder, type RowWriter } from './encoder.js';
import { rowBinarySchemaId } from './row-binary-decoder.js';
import { writeJsonText } from './json-text.js';
import {
  HEX_VALUE, Kind, MAX_UINT16, MAX_UINT32, MAX_UINT8, UUID_PAIR_OFFSETS,
  isPropsValue, toDays, toFloat, toText, toTsMs, toUint, toUint64, valueRulesFor, createValueLoader,
} from './values.js';

/**
 * RowBinary: each row is its columns' values back to back, in the column
 * order of `INSERT INTO t (<columns>) FORMAT RowBinary`, no separators.
 *
 * - String, LowCardinality(String): varint byte length + UTF-8 bytes.
 * - UIntN, Float64: little-endian. DateTime64(3) and legacy ms: 8-byte LE ms.
 * - Date: UInt16 LE days since the epoch.
 * - UUID: two little-endian UInt64 halves — the 8-byte high half with its bytes
 *   reversed, then the low half likewise: 00112233-4455-6677-8899-aabbccddeeff
 *   is 77 66 55 44 33 22 11 00 ff ee dd cc bb aa 99 88 (checked against
 *   ClickHouse 18.16 and 26.7).
 * - Map(String, String): varint pair count, then key, value, key, value…
 *   Legacy props: a String holding the object's JSON text.
 *
 * Measured (eventRows(10_000, 42, false) from test/support/sink-rows.ts: 46
 * columns, a nested props object, ~870 bytes per row; 1,000-row batches, one
 * core of a shared, busy 2-core box, Node 20): about 340k rows/s (modern and
 * legacy alike), 550k without props.
 */
export interface RowBinaryEncoder extends RowEncoder {
  readonly format: 'RowBinary';
  /** Identifies the byte layout (see rowBinarySchemaId): a decoder with the same id reads these rows. */
  readonly schemaId: number;
  /** Written for a modern store (chDB, ClickHouse >= 22.3) or a legacy one: the decoder needs to know. */
  readonly modern: boolean;
  /**
   * One row, as a view of scratch space valid until the next encodeOne (the
   * caller copies it out at once), or null when the row is refused — the
   * batch encoders then refuse it too, with the reason.
   */
  encodeOne(row: Row): Buffer | null;
}

export function createRowBinaryEncoder(table: TableDef, caps: Capabilities): RowBinaryEncoder {
  const rules = valueRulesFor(table, caps);
  const names = rules.columns.map((c) => c.name);
  const kinds = Uint8Array.from(rules.columns.map((c) => c.kind));
  const count = names.length;
  const maxDays = rules.maxDateDays;
  const load = createValueLoader(rules.columns);
  const values: unknown[] = new Array<unknown>(count).fill(undefined);
  const out = new ByteBuffer();
  // Props JSON text is written here first: its length prefix comes before it.
  const scratch = new ByteBuffer(4096);

  const writeRow: RowWriter = (row: Row, out: ByteBuffer): number => {
    load(row, values);
    for (let c = 0; c < count; c++) {
      const v = values[c];
      switch (kinds[c]) {
        case Kind.string: {
          const s = typeof v === 'string' ? v : toText(v);
          if (s === undefined) return c;
          writeString(out, s);
          break;
        }
        case Kind.uuid:
          if (v === undefined || v === null) writeZeros(out, 16);
          else if (typeof v !== 'string' || !writeUuid(out, v)) return c;
          break;
        case Kind.uint8: {
          const n = toUint(v, MAX_UINT8);
          if (n < 0) return c;
          out.reserve(1);
          out.buf[out.pos++] = n;
          break;
        }
        case Kind.uint16: {
          const n = toUint(v, MAX_UINT16);
          if (n < 0) return c;
          writeUInt16(out, n);
          break;
        }
        case Kind.uint32: {
          const n = toUint(v, MAX_UINT32);
          if (n < 0) return c;
          writeUInt32(out, n);
          break;
        }
        case Kind.uint64: {
          const n = toUint64(v);
          if (typeof n === 'bigint') {
            out.reserve(8);
            out.view.setBigUint64(out.pos, n, true);
            out.pos += 8;
          } else {
            if (n < 0) return c;
            writeUInt64(out, n);
          }
          break;
        }
        case Kind.float64: {
          const n = toFloat(v);
          if (n !== n) return c; // NaN: refused
          out.reserve(8);
          out.view.setFloat64(out.pos, n, true);
          out.pos += 8;
          break;
        }
        case Kind.tsDateTime64:
        case Kind.tsUInt64: {
          // Int64 ms for DateTime64(3), UInt64 ms for legacy: the same bytes for ms >= 0.
          const ms = toTsMs(v);
          if (ms < 0) return c;
          writeUInt64(out, ms);
          break;
        }
        case Kind.date: {
          const days = toDays(v, maxDays);
          if (days < 0) return c;
          writeUInt16(out, days);
          break;
        }
        case Kind.propsMap:
          if (!isPropsValue(v)) return c;
          writeMap(out, scratch, v as Record<string, unknown> | null | undefined);
          break;
        case Kind.propsJson:
          if (!isPropsValue(v)) return c;
          if (v === undefined || v === null) {
            writeString(out, '{}');
          } else {
            scratch.pos = 0;
            if (!writeJsonText(scratch, v)) throw new TypeError('props have no JSON text');
            writeScratch(out, scratch);
          }
          break;
      }
    }
    return -1;
  };

  const one = new ByteBuffer(16 * 1024);

  return Object.freeze({
    format: 'RowBinary' as const,
    table,
    columns: Object.freeze(names),
    schemaId: rowBinarySchemaId(table, caps),
    modern: caps.modern,
    encodeOne(row: Row): Buffer | null {
      one.pos = 0;
      let ok: boolean;
      try {
        ok = typeof row === 'object' && row !== null && writeRow(row, one) < 0;
      } catch {
        ok = false;
      }
      trimScratch(scratch);
      return ok ? one.lend() : null;
    },
    encode(rows: readonly Row[]) {
      const batch = encodeRows(rows, out, rules, writeRow);
      trimScratch(scratch);
      return batch;
    },
    encodeLent(rows: readonly Row[]) {
      const batch = encodeRows(rows, out, rules, writeRow, true);
      trimScratch(scratch);
      return batch;
    },
  });
}

/** Bytes a varint of `n` takes. */
function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x20_0000 ? 3 : n < 0x1000_0000 ? 4 : 5;
}

/** LEB128, as ClickHouse's writeVarUInt; `n` < 2^31 (a V8 string is shorter than that). */
function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}

/**
 * Varint length + UTF-8, in one pass over the string: UTF-8 takes at most 3
 * bytes per UTF-16 unit, so the length's varint size is known up front for
 * strings under 43 units; for longer ones the bytes are written after a
 * worst-case header and moved back if the real length needs fewer varint bytes.
 */
function writeString(out: ByteBuffer, s: string): void {
  const len = s.length;
  out.reserve(len * 3 + 5);
  const buf = out.buf;
  const pos = out.pos;
  if (len < 43) {
    // Short ASCII (most dimension values: "Chrome", "desktop", "DE") is copied
    // in JS: cheaper than the native call for a handful of bytes.
    if (len < 24) {
      let i = 0;
      for (; i < len; i++) {
        const ch = s.charCodeAt(i);
        if (ch > 0x7f) break;
        buf[pos + 1 + i] = ch;
      }
      if (i === len) {
        buf[pos] = len;
        out.pos = pos + 1 + len;
        return;
      }
    }
    const n = out.utf8(s, pos + 1);
    buf[pos] = n;
    out.pos = pos + 1 + n;
    return;
  }
  const header = varintSize(len * 3);
  const n = out.utf8(s, pos + header);
  const size = varintSize(n);
  if (size !== header) buf.copyWithin(pos + size, pos + header, pos + header + n);
  writeVarint(buf, pos, n);
  out.pos = pos + size + n;
}

function writeZeros(out: ByteBuffer, n: number): void {
  out.reserve(n);
  out.buf.fill(0, out.pos, out.pos + n);
  out.pos += n;
}

function writeUInt16(out: ByteBuffer, n: number): void {
  out.reserve(2);
  out.view.setUint16(out.pos, n, true);
  out.pos += 2;
}

function writeUInt32(out: ByteBuffer, n: number): void {
  out.reserve(4);
  out.view.setUint32(out.pos, n, true);
  out.pos += 4;
}

/** A safe integer >= 0 as UInt64/Int64 LE, without going through BigInt. */
function writeUInt64(out: ByteBuffer, n: number): void {
  out.reserve(8);
  const lo = n >>> 0;
  out.view.setUint32(out.pos, lo, true);
  out.view.setUint32(out.pos + 4, (n - lo) / 4_294_967_296, true);
  out.pos += 8;
}

/** Validates and writes in one pass; false (nothing written) when `s` is not a UUID. */
function writeUuid(out: ByteBuffer, s: string): boolean {
  if (s.length !== 36 || s.charCodeAt(8) !== 45 || s.charCodeAt(13) !== 45 || s.charCodeAt(18) !== 45 || s.charCodeAt(23) !== 45) return false;
  out.reserve(16);
  const buf = out.buf;
  const pos = out.pos;
  for (let i = 0; i < 16; i++) {
    const o = UUID_PAIR_OFFSETS[i] as number;
    const a = s.charCodeAt(o);
    const b = s.charCodeAt(o + 1);
    if (a > 0x7f || b > 0x7f) return false;
    const hi = HEX_VALUE[a] as number;
    const lo = HEX_VALUE[b] as number;
    if ((hi | lo) < 0) return false;
    // Bytes 0-7 (high half) reversed into 0-7, bytes 8-15 (low half) reversed into 8-15.
    buf[pos + (i < 8 ? 7 - i : 23 - i)] = (hi << 4) | lo;
  }
  out.pos = pos + 16;
  return true;
}

/** The bytes in `scratch`, length-prefixed like a String. */
function writeScratch(out: ByteBuffer, scratch: ByteBuffer): void {
  const n = scratch.pos;
  out.reserve(n + 5);
  const pos = writeVarint(out.buf, out.pos, n);
  if (n < 32) {
    const buf = out.buf;
    const src = scratch.buf;
    for (let i = 0; i < n; i++) buf[pos + i] = src[i] as number;
  } else {
    scratch.buf.copy(out.buf, pos, 0, n);
  }
  out.pos = pos + n;
}

/** Map(String, String): the pair count goes first but is only known after skipping values without JSON text. */
function writeMap(out: ByteBuffer, scratch: ByteBuffer, props: Record<string, unknown> | null | undefined): void {
  if (props === undefined || props === null) {
    out.reserve(1);
    out.buf[out.pos++] = 0;
    return;
  }
  const keys = Object.keys(props);
  const header = varintSize(keys.length);
  out.reserve(header);
  const start = out.pos;
  out.pos += header;
  let pairs = 0;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    const v = props[key];
    if (typeof v === 'string') {
      writeString(out, key);
      writeString(out, v);
    } else {
      scratch.pos = 0;
      if (!writeJsonText(scratch, v)) continue;
      writeString(out, key);
      writeScratch(out, scratch);
    }
    pairs++;
  }
  const size = varintSize(pairs);
  const buf = out.buf;
  if (size !== header) {
    buf.copyWithin(start + size, start + header, out.pos);
    out.pos -= header - size;
  }
  writeVarint(buf, start, pairs);
}
