import type { Capabilities, Row, TableDef } from '../schema/types.js';
import { Kind, MS_PER_DAY, valueRulesFor } from './values.js';

/**
 * Reads back one row that createRowBinaryEncoder wrote, for the write-ahead
 * log: the log keeps an event's row as the RowBinary bytes the ClickHouse
 * sink stores (so the row is encoded once, not once for the log and once for
 * the store), and a replay after a crash turns them into a Row again.
 *
 * The row read back encodes to the same bytes. It is not always the object
 * that was written: a missing value comes back as its type's default, a Date
 * as midnight (ms), and a Map(String, String) of props as strings (a nested
 * value as its JSON text) — which is why the log keeps rows bound for other
 * sinks (webhooks) in msgpack instead.
 */
export interface RowBinaryDecoder {
  /** Equal for two tables only if their rows are the same bytes: the columns, in order, and each one's wire kind. */
  readonly schemaId: number;
  /** Decodes the row in bytes[offset..]; throws on bytes that do not hold one whole row. */
  decode(bytes: Uint8Array, offset?: number): Row;
}

/** FNV-1a over the table name and each column's name and wire kind. */
export function rowBinarySchemaId(table: TableDef, caps: Capabilities): number {
  const rules = valueRulesFor(table, caps);
  let h = 0x811c9dc5;
  const mix = (s: string): void => {
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
  };
  mix(table.name);
  for (const c of rules.columns) mix(`|${c.name}:${c.kind}`);
  return h >>> 0;
}

const TWO_32 = 4_294_967_296;
const utf8 = new TextDecoder('utf-8');

class Reader {
  pos: number;
  private readonly view: DataView;
  constructor(private readonly buf: Uint8Array, offset: number) {
    this.pos = offset;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new RangeError(`row ends early: ${n} more bytes needed at byte ${this.pos} of ${this.buf.length}`);
  }
  varint(): number {
    let n = 0;
    let shift = 0;
    for (;;) {
      this.need(1);
      const b = this.buf[this.pos++]!;
      n += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return n;
      shift += 7;
      if (shift > 35) throw new RangeError(`varint too long at byte ${this.pos}`);
    }
  }
  string(): string {
    const n = this.varint();
    this.need(n);
    const start = this.pos;
    this.pos += n;
    // Short ASCII (most dimension values) is cheaper to build in JS than through TextDecoder.
    if (n < 24) {
      let s = '';
      for (let i = start; i < start + n; i++) {
        const c = this.buf[i]!;
        if (c > 0x7f) return utf8.decode(this.buf.subarray(start, start + n));
        s += String.fromCharCode(c);
      }
      return s;
    }
    return utf8.decode(this.buf.subarray(start, start + n));
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  /** A UInt64 as a number when it is safe, else a bigint. */
  u64(): number | bigint {
    this.need(8);
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    this.pos += 8;
    if (hi < 0x20_0000) return hi * TWO_32 + lo;
    return (BigInt(hi) << 32n) | BigInt(lo);
  }
  f64(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  uuid(): string {
    this.need(16);
    const b = this.buf;
    const p = this.pos;
    this.pos += 16;
    let s = '';
    // The encoder wrote each 8-byte half reversed.
    for (let i = 0; i < 16; i++) {
      if (i === 4 || i === 6 || i === 8 || i === 10) s += '-';
      const byte = b[p + (i < 8 ? 7 - i : 23 - i)]!;
      s += HEX[byte]!;
    }
    return s;
  }
}

const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function createRowBinaryDecoder(table: TableDef, caps: Capabilities): RowBinaryDecoder {
  const rules = valueRulesFor(table, caps);
  const names = rules.columns.map((c) => c.name);
  const kinds = rules.columns.map((c) => c.kind);
  return {
    schemaId: rowBinarySchemaId(table, caps),
    decode(bytes, offset = 0) {
      const r = new Reader(bytes, offset);
      const row: Row = {};
      for (let c = 0; c < names.length; c++) {
        const name = names[c]!;
        switch (kinds[c]) {
          case Kind.string: row[name] = r.string(); break;
          case Kind.uuid: row[name] = r.uuid(); break;
          case Kind.uint8: row[name] = r.u8(); break;
          case Kind.uint16: row[name] = r.u16(); break;
          case Kind.uint32: row[name] = r.u32(); break;
          case Kind.uint64: row[name] = r.u64(); break;
          case Kind.float64: row[name] = r.f64(); break;
          case Kind.tsDateTime64:
          case Kind.tsUInt64: row[name] = Number(r.u64()); break;
          case Kind.date: row[name] = r.u16() * MS_PER_DAY; break;
          case Kind.propsMap: {
            const pairs = r.varint();
            const props: Record<string, string> = {};
            for (let i = 0; i < pairs; i++) {
              const key = r.string();
              props[key] = r.string();
            }
            row[name] = props;
            break;
          }
          case Kind.propsJson: row[name] = JSON.parse(r.string()) as unknown; break;
        }
      }
      if (r.pos !== bytes.length) throw new RangeError(`${bytes.length - r.pos} bytes left after the row`);
      return row;
    },
  };
}
