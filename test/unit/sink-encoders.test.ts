import { describe, expect, it } from 'vitest';
import {
  createJsonEachRowEncoder,
  createRowBinaryEncoder,
  MAX_TS_MS,
  type RowEncoder,
} from '../../sinks/rows/index.js';
import { createHash } from 'node:crypto';
import { InsertBody, SlabPool, SLAB_BYTES } from '../../sinks/clickhouse/insert-body.js';
import { EVENTS, TABLES } from '../../sinks/schema/tables.js';
import { capabilitiesOf, type Column, type Row, type TableDef } from '../../sinks/schema/types.js';

const MODERN = capabilitiesOf('26.7.2.1');
const LEGACY = capabilitiesOf('18.16.1');
const DAY = 86_400_000;

const col = (name: string, type: Column['type']): Column => ({ name, type, since: 1 });

/** One column of every logical type. */
const ALL: TableDef = {
  ...EVENTS,
  columns: [
    col('id', 'uuid'), col('s', 'string'), col('lc', 'lc_string'), col('t', 'text'),
    col('u8', 'uint8'), col('u16', 'uint16'), col('u32', 'uint32'), col('u64', 'uint64'),
    col('f', 'float64'), col('ts', 'ts_ms'), col('d', 'date'), col('p', 'props'),
  ],
};

type Format = 'RowBinary' | 'JSONEachRow';
const FORMATS: readonly Format[] = ['RowBinary', 'JSONEachRow'];

function encoderFor(format: Format, table: TableDef, modern: boolean): RowEncoder {
  const caps = modern ? MODERN : LEGACY;
  return format === 'RowBinary' ? createRowBinaryEncoder(table, caps) : createJsonEachRowEncoder(table, caps);
}

/**
 * A RowBinary reader for the test: each value in the same shape the
 * JSONEachRow body has after JSON.parse, so both formats are checked against
 * one expectation.
 */
class RowBinaryReader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}
  get done(): boolean { return this.pos >= this.buf.length; }
  varint(): number {
    let n = 0;
    for (let shift = 0; ; shift += 7) {
      const b = this.buf[this.pos++] as number;
      n += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return n;
    }
  }
  string(): string {
    const n = this.varint();
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  uuid(): string {
    const hi = Buffer.from(this.buf.subarray(this.pos, this.pos + 8)).reverse().toString('hex');
    const lo = Buffer.from(this.buf.subarray(this.pos + 8, this.pos + 16)).reverse().toString('hex');
    this.pos += 16;
    const h = hi + lo;
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  value(type: Column['type'], modern: boolean): unknown {
    const b = this.buf;
    const p = this.pos;
    switch (type) {
      case 'uuid': return this.uuid();
      case 'string': case 'lc_string': case 'text': return this.string();
      case 'uint8': this.pos += 1; return b.readUInt8(p);
      case 'uint16': this.pos += 2; return b.readUInt16LE(p);
      case 'uint32': this.pos += 4; return b.readUInt32LE(p);
      case 'uint64': this.pos += 8; return b.readBigUInt64LE(p).toString();
      case 'float64': this.pos += 8; return b.readDoubleLE(p);
      case 'ts_ms': this.pos += 8; return Number(b.readBigInt64LE(p));
      case 'date': this.pos += 2; return new Date(b.readUInt16LE(p) * DAY).toISOString().slice(0, 10);
      case 'props': {
        if (!modern) return this.string();
        const map: Record<string, string> = {};
        for (let n = this.varint(); n > 0; n--) {
          const k = this.string();
          map[k] = this.string();
        }
        return map;
      }
    }
  }
}

/** Decodes a body of either format into rows shaped alike (see the normalisations below). */
function decode(format: Format, table: TableDef, modern: boolean, body: Buffer): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  if (format === 'JSONEachRow') {
    const text = body.toString('utf8');
    if (text === '') return rows;
    expect(text.endsWith('\n')).toBe(true);
    const uint64 = table.columns.filter((c) => c.type === 'uint64').map((c) => c.name);
    for (let line of text.slice(0, -1).split('\n')) {
      // Keep uint64 digits exact: JSON.parse would round them to a double.
      for (const name of uint64) line = line.replace(new RegExp(`"${name}":(\\d+)`), `"${name}":"$1"`);
      const raw = JSON.parse(line) as Record<string, unknown>;
      expect(Object.keys(raw)).toEqual(table.columns.map((c) => c.name));
      const row: Record<string, unknown> = {};
      for (const c of table.columns) {
        const v = raw[c.name];
        if (c.type === 'ts_ms' && modern) row[c.name] = Date.parse(`${String(v).replace(' ', 'T')}Z`);
        else if (c.type === 'uint64') row[c.name] = String(v);
        else row[c.name] = v;
      }
      rows.push(row);
    }
    return rows;
  }
  const r = new RowBinaryReader(body);
  while (!r.done) {
    const row: Record<string, unknown> = {};
    for (const c of table.columns) row[c.name] = r.value(c.type, modern);
    rows.push(row);
  }
  expect(r.pos).toBe(body.length);
  return rows;
}

function encodeOne(format: Format, modern: boolean, row: Row, table: TableDef = ALL): { value: Record<string, unknown> | undefined; reason: string | undefined } {
  const batch = encoderFor(format, table, modern).encode([row]);
  const rows = decode(format, table, modern, batch.body);
  expect(rows.length).toBe(batch.rows);
  return { value: rows[0], reason: batch.rejected[0]?.reason };
}

/** The value `v` of column `name` (a column of ALL) encodes to, in every format. */
function expectValue(name: string, v: unknown, expected: unknown, modern = true): void {
  for (const format of FORMATS) {
    const { value, reason } = encodeOne(format, modern, { [name]: v });
    expect(reason, `${format}: ${String(reason)}`).toBeUndefined();
    expect(value?.[name], format).toEqual(expected);
  }
}

/** `v` in column `name` is refused, in every format, with a reason naming the column and matching `why`. */
function expectRejected(name: string, v: unknown, why: RegExp, modern = true): void {
  for (const format of FORMATS) {
    const batch = encoderFor(format, ALL, modern).encode([{ [name]: v }]);
    expect(batch.rows, format).toBe(0);
    expect(batch.body.length, format).toBe(0);
    expect(batch.included).toEqual([]);
    expect(batch.rejected.length, format).toBe(1);
    const reason = batch.rejected[0]?.reason ?? '';
    expect(reason).toContain(`"${name}"`);
    expect(reason).toMatch(why);
  }
}

describe('sink encoders - defaults', () => {
  for (const modern of [true, false]) {
    it(`sink encoders - a missing or null value is its type's default (${modern ? 'modern' : 'legacy'})`, () => {
      const expected = {
        id: '00000000-0000-0000-0000-000000000000', s: '', lc: '', t: '',
        u8: 0, u16: 0, u32: 0, u64: '0', f: 0, ts: 0, d: '1970-01-01', p: modern ? {} : '{}',
      };
      const nulls = Object.fromEntries(ALL.columns.map((c) => [c.name, null]));
      for (const format of FORMATS) {
        expect(encodeOne(format, modern, {}).value).toEqual(expected);
        expect(encodeOne(format, modern, nulls).value).toEqual(expected);
      }
    });
  }

  it('sink encoders - columns are the table columns in order, for both formats', () => {
    for (const table of Object.values(TABLES)) {
      for (const format of FORMATS) {
        const enc = encoderFor(format, table, true);
        expect(enc.format).toBe(format);
        expect(enc.table).toBe(table);
        expect(enc.columns).toEqual(table.columns.map((c) => c.name));
      }
    }
  });
});

describe('sink encoders - uuid', () => {
  it('sink encoders - a UUID in any case is stored lower-case', () => {
    expectValue('id', '0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D', '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d');
  });

  it('sink encoders - RowBinary writes a UUID as two little-endian 64-bit halves', () => {
    const batch = encoderFor('RowBinary', { ...ALL, columns: [col('id', 'uuid')] }, true).encode([{ id: '00112233-4455-6677-8899-aabbccddeeff' }]);
    expect(batch.body.toString('hex')).toBe('7766554433221100ffeeddccbbaa9988');
  });

  it('sink encoders - a value that is not a UUID string refuses the row, naming the column', () => {
    for (const bad of ['not-a-uuid', '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4', '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4g', '0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d0000', '0a1b2c3d_4e5f-4a6b-8c7d-9e0f1a2b3c4d', '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3cé4']) {
      expectRejected('id', bad, /expected a UUID string/);
    }
    expectRejected('id', 12, /expected a UUID string, got number 12/);
    expectRejected('id', { id: 1 }, /an object/);
  });
});

describe('sink encoders - strings', () => {
  it('sink encoders - strings are kept as they are; numbers, booleans and bigints are stringified', () => {
    for (const name of ['s', 'lc', 't']) {
      expectValue(name, 'plain', 'plain');
      expectValue(name, 42.5, '42.5');
      expectValue(name, false, 'false');
      expectValue(name, 12345678901234567890n, '12345678901234567890');
    }
  });

  it('sink encoders - objects and arrays refuse the row', () => {
    expectRejected('s', { a: 1 }, /expected a string, number or boolean, got an object/);
    expectRejected('lc', ['a'], /got an array/);
    expectRejected('t', new Date(0), /got a Date/);
  });

  it('sink encoders - quotes, backslashes, control characters, emoji and U+2028 survive both formats', () => {
    const nasty = [
      'quote " apostrophe \' backslash \\ slash /',
      'new\nline\r\ttab \u0000 nul \u0001\u001f controls \u007f del',
      'Café ☕ 日本語 👨‍👩‍👧 👍🏽',
      'separators \u2028\u2029',
      '\\u0041 is not an escape',
    ];
    for (const s of nasty) expectValue('t', s, s);
  });

  it('sink encoders - a lone surrogate becomes U+FFFD in both formats', () => {
    expectValue('s', 'a\ud800b', 'a\ufffdb');
    expectValue('s', 'end \udc00', 'end \ufffd');
    expectValue('s', `${'x'.repeat(30)}\ud83d`, `${'x'.repeat(30)}\ufffd`);
  });

  it('sink encoders - RowBinary string lengths cross varint boundaries correctly', () => {
    for (const s of ['', 'x'.repeat(42), 'x'.repeat(43), 'x'.repeat(127), 'x'.repeat(128), 'é'.repeat(42), 'é'.repeat(43), 'é'.repeat(64), '😀'.repeat(21), '😀'.repeat(32), 'y'.repeat(16_383), 'y'.repeat(16_384), 'z'.repeat(2_097_152)]) {
      const { value } = encodeOne('RowBinary', true, { s });
      expect(value?.s).toBe(s);
    }
  });
});

describe('sink encoders - integers and floats', () => {
  it('sink encoders - finite numbers are truncated; booleans are 0/1', () => {
    expectValue('u8', 3.9, 3);
    expectValue('u8', 255, 255);
    expectValue('u16', 65_535.5, 65_535);
    expectValue('u32', 4_294_967_295, 4_294_967_295);
    expectValue('u32', -0, 0);
    expectValue('u8', true, 1);
    expectValue('u8', false, 0);
  });

  it('sink encoders - negative, too large, NaN and non-number integers refuse the row', () => {
    expectRejected('u8', -1, /negative value number -1/);
    expectRejected('u32', -0.5, /negative/);
    expectRejected('u8', 256, /larger than 255/);
    expectRejected('u16', 65_536, /larger than 65535/);
    expectRejected('u32', 4_294_967_296, /larger than 4294967295/);
    expectRejected('u32', NaN, /expected a finite number/);
    expectRejected('u32', Infinity, /expected a finite number/);
    expectRejected('u32', '5', /got string "5"/);
    expectRejected('u32', 5n, /got bigint 5n/);
  });

  it('sink encoders - uint64 takes numbers, bigints and decimal strings, exact to 2^64-1', () => {
    expectValue('u64', 18_446_744_073_709_551_615n, '18446744073709551615');
    expectValue('u64', '18446744073709551615', '18446744073709551615');
    expectValue('u64', '00042', '42');
    expectValue('u64', 9_007_199_254_740_993n, '9007199254740993');
    expectValue('u64', 2 ** 53 + 2, '9007199254740994');
    expectValue('u64', 2 ** 63, '9223372036854775808');
    expectValue('u64', 1_715_679_000_123.9, '1715679000123');
  });

  it('sink encoders - uint64 out of range or not decimal refuses the row', () => {
    expectRejected('u64', 18_446_744_073_709_551_616n, /expected a number, bigint or decimal string/);
    expectRejected('u64', '18446744073709551616', /decimal string/);
    expectRejected('u64', 2 ** 64, /larger than 18446744073709551615/);
    expectRejected('u64', -1n, /negative value bigint -1n/);
    expectRejected('u64', '-1', /got string "-1"/);
    expectRejected('u64', '1e3', /got string "1e3"/);
    expectRejected('u64', ' 1', /got string " 1"/);
    expectRejected('u64', NaN, /decimal string/);
  });

  it('sink encoders - float64 takes finite numbers, -0 included', () => {
    expectValue('f', 52.520008, 52.520008);
    expectValue('f', -46.6333, -46.6333);
    expectValue('f', 1e300, 1e300);
    expectValue('f', 5e-324, 5e-324);
    for (const format of FORMATS) expect(Object.is(encodeOne(format, true, { f: -0 }).value?.f, -0)).toBe(true);
  });

  it('sink encoders - NaN, infinities and non-numbers refuse a float64 row', () => {
    expectRejected('f', NaN, /expected a finite number, got number NaN/);
    expectRejected('f', -Infinity, /expected a finite number/);
    expectRejected('f', '1.5', /got string "1.5"/);
    expectRejected('f', true, /got boolean true/);
  });
});

describe('sink encoders - timestamps and dates', () => {
  it('sink encoders - ts_ms keeps whole milliseconds, fractions truncated (modern and legacy)', () => {
    for (const modern of [true, false]) {
      expectValue('ts', 1_715_679_000_123.9, 1_715_679_000_123, modern);
      expectValue('ts', 0, 0, modern);
      expectValue('ts', 999, 999, modern);
      expectValue('ts', MAX_TS_MS, MAX_TS_MS, modern);
    }
  });

  it('sink encoders - modern JSONEachRow writes DateTime64 as UTC text, legacy as integer ms', () => {
    const table = { ...ALL, columns: [col('ts', 'ts_ms')] };
    expect(encoderFor('JSONEachRow', table, true).encode([{ ts: Date.UTC(2024, 1, 29, 23, 59, 59, 7) }]).body.toString())
      .toBe('{"ts":"2024-02-29 23:59:59.007"}\n');
    expect(encoderFor('JSONEachRow', table, false).encode([{ ts: Date.UTC(2024, 1, 29, 23, 59, 59, 7) }]).body.toString())
      .toBe('{"ts":1709251199007}\n');
  });

  it('sink encoders - negative, too late or non-number timestamps refuse the row', () => {
    expectRejected('ts', -1, /expected milliseconds since the epoch/);
    expectRejected('ts', MAX_TS_MS + 1, /expected milliseconds since the epoch/);
    expectRejected('ts', NaN, /got number NaN/);
    expectRejected('ts', '2024-05-14T09:30:00Z', /got string/);
    expectRejected('ts', new Date(0), /got a Date/);
  });

  it('sink encoders - date is the UTC day of a ms timestamp', () => {
    expectValue('d', DAY - 1, '1970-01-01');
    expectValue('d', DAY, '1970-01-02');
    expectValue('d', Date.UTC(2024, 1, 29, 23, 59, 59, 999), '2024-02-29');
    expectValue('d', Date.UTC(2024, 2, 1), '2024-03-01');
    expectValue('d', Date.UTC(2000, 1, 29, 12), '2000-02-29');
    expectValue('d', Date.UTC(2100, 1, 28, 12), '2100-02-28');
    expectValue('d', Date.UTC(2100, 2, 1), '2100-03-01');
  });

  it('sink encoders - date range: 2149-06-06 on modern backends, 2105-12-31 on 18.16', () => {
    expectValue('d', Date.UTC(2149, 5, 6, 23, 59, 59, 999), '2149-06-06', true);
    expectRejected('d', Date.UTC(2149, 5, 7), /from 1970-01-01 to 2149-06-06 UTC/, true);
    expectValue('d', Date.UTC(2105, 11, 31, 12), '2105-12-31', false);
    expectRejected('d', Date.UTC(2106, 0, 1), /from 1970-01-01 to 2105-12-31 UTC/, false);
    expectRejected('d', -1, /expected a ms timestamp/);
  });
});

describe('sink encoders - props', () => {
  const props = {
    s: 'text "q"\n',
    n: 12.5,
    b: true,
    z: null,
    nested: { list: [1, 'two', { three: 3 }], deep: { x: null } },
    u: undefined,
    f: () => 1,
    emoji: '😀',
  };

  it('sink encoders - modern props flatten to Map(String, String): strings as-is, the rest as JSON', () => {
    expectValue('p', props, {
      s: 'text "q"\n',
      n: '12.5',
      b: 'true',
      z: 'null',
      nested: '{"list":[1,"two",{"three":3}],"deep":{"x":null}}',
      emoji: '😀',
    });
    expectValue('p', Object.assign(Object.create(null) as object, { a: 'null prototype' }), { a: 'null prototype' });
  });

  it('sink encoders - legacy props are the whole object as JSON text', () => {
    expectValue('p', props, JSON.stringify(props), false);
    expectValue('p', undefined, '{}', false);
  });

  it('sink encoders - props JSON text is exactly JSON.stringify\'s, for random nested values', () => {
    let seed = 12345;
    const rand = (): number => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
      return seed / 4_294_967_296;
    };
    const units = [0x41, 0x7a, 0x22, 0x5c, 0x2f, 0x00, 0x08, 0x0a, 0x1f, 0x7f, 0xe9, 0x2028, 0x4e2d, 0xd83d, 0xde00, 0xd800, 0xdc00, 0xfffd];
    const str = (): string => {
      let out = '';
      for (let n = Math.floor(rand() * 12); n > 0; n--) out += String.fromCharCode(units[Math.floor(rand() * units.length)] ?? 0x41);
      return rand() < 0.1 ? out.repeat(20) : out;
    };
    class Point { constructor(readonly x: number) {} }
    const leaf = (): unknown => [
      str(), rand() * 1e6 - 5e5, Math.floor(rand() * 100), -0, NaN, Infinity, 1e21, 5e-324, true, false, null, undefined,
      () => 1, new Date(Math.floor(rand() * 1e12)), new Point(1), Object.create(null) as object, { toJSON: () => 'custom' },
    ][Math.floor(rand() * 17)];
    const value = (depth: number): unknown => {
      const r = rand();
      if (depth > 3 || r < 0.4) return leaf();
      if (r < 0.7) return Array.from({ length: Math.floor(rand() * 4) }, () => value(depth + 1));
      const o: Record<string, unknown> = {};
      for (let n = Math.floor(rand() * 4); n > 0; n--) o[rand() < 0.2 ? String(Math.floor(rand() * 10)) : str()] = value(depth + 1);
      return o;
    };
    for (let i = 0; i < 300; i++) {
      const props: Record<string, unknown> = {};
      for (let n = 1 + Math.floor(rand() * 5); n > 0; n--) props[str()] = value(0);
      const wellFormed = (x: string): string => (x as unknown as { toWellFormed(): string }).toWellFormed();
      // Modern: each non-string value's JSON text; keys and string values lone-surrogate-free.
      const map: Record<string, string> = {};
      for (const [k, v] of Object.entries(props)) {
        const text = typeof v === 'string' ? v : JSON.stringify(v) as string | undefined;
        if (text !== undefined) map[wellFormed(k)] = wellFormed(text);
      }
      expectValue('p', props, map, true);
      expectValue('p', props, JSON.stringify(props), false);
    }
  });

  it('sink encoders - a Map with more than 127 pairs, some skipped, has the right pair count', () => {
    const many: Record<string, unknown> = {};
    for (let i = 0; i < 300; i++) many[`k${i}`] = i % 3 === 0 ? undefined : `v${i}`;
    const expected: Record<string, string> = {};
    for (let i = 0; i < 300; i++) if (i % 3 !== 0) expected[`k${i}`] = `v${i}`;
    expectValue('p', many, expected);
    const few: Record<string, unknown> = {};
    for (let i = 0; i < 200; i++) few[`k${i}`] = i < 5 ? i : undefined;
    expectValue('p', few, { k0: '0', k1: '1', k2: '2', k3: '3', k4: '4' });
  });

  it('sink encoders - props that are not a plain object refuse the row', () => {
    for (const modern of [true, false]) {
      expectRejected('p', ['a', 'b'], /expected a plain object, got an array/, modern);
      expectRejected('p', 'string', /expected a plain object, got string/, modern);
      expectRejected('p', 7, /expected a plain object/, modern);
      expectRejected('p', new Map([['a', '1']]), /got a Map/, modern);
    }
  });

  it('sink encoders - props JSON cannot hold (a bigint, a cycle) refuse the row', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = { back: cyclic };
    for (const modern of [true, false]) {
      expectRejected('p', { n: 1n }, /cannot be serialized as JSON \(.*BigInt/, modern);
      expectRejected('p', { nested: { n: 1n } }, /cannot be serialized as JSON/, modern);
      expectRejected('p', cyclic, /cannot be serialized as JSON \(.*circular/i, modern);
    }
  });
});

describe('sink encoders - batches', () => {
  const good = (i: number): Row => ({ id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, s: `row ${i}`, u64: i, p: { i } });

  it('sink encoders - refused rows are reported and left out; the rest are encoded in order', () => {
    for (const format of FORMATS) {
      for (const modern of [true, false]) {
        const rows: Row[] = [good(0), { ...good(1), id: 'nope' }, good(2), { ...good(3), u64: -5 }, { ...good(4), p: [1] }, good(5), null as unknown as Row, good(6)];
        const batch = encoderFor(format, ALL, modern).encode(rows);
        expect(batch.rows).toBe(4);
        expect(batch.included).toEqual([0, 2, 5, 7]);
        expect(batch.rejected.map((r) => r.index)).toEqual([1, 3, 4, 6]);
        expect(batch.rejected[0]?.reason).toMatch(/"id"/);
        expect(batch.rejected[1]?.reason).toMatch(/"u64".*negative/);
        expect(batch.rejected[2]?.reason).toMatch(/"p".*array/);
        expect(batch.rejected[3]?.reason).toMatch(/not an object/);
        expect(decode(format, ALL, modern, batch.body).map((r) => r.s)).toEqual(['row 0', 'row 2', 'row 5', 'row 6']);
      }
    }
  });

  it('sink encoders - a row whose property getter throws is refused, not the batch', () => {
    const odd = Object.defineProperty({ ...good(1) }, 'u32', { enumerable: true, get: () => { throw new Error('boom'); } }) as Row;
    for (const format of FORMATS) {
      const batch = encoderFor(format, ALL, true).encode([good(0), odd, good(2)]);
      expect(batch.included).toEqual([0, 2]);
      expect(batch.rejected).toEqual([{ index: 1, reason: 'row could not be read: boom' }]);
      expect(decode(format, ALL, true, batch.body).map((r) => r.s)).toEqual(['row 0', 'row 2']);
    }
  });

  it('sink encoders - a row refused after a long value leaves no bytes behind', () => {
    for (const format of FORMATS) {
      const batch = encoderFor(format, ALL, true).encode([{ t: 'x'.repeat(200_000), p: 'bad' }, good(1)]);
      expect(batch.included).toEqual([1]);
      expect(decode(format, ALL, true, batch.body)).toHaveLength(1);
    }
  });

  it('sink encoders - a body is not overwritten by the next encode', () => {
    for (const format of FORMATS) {
      const enc = encoderFor(format, ALL, true);
      const first = enc.encode([good(1), good(2)]);
      const copy = Buffer.from(first.body);
      enc.encode([{ ...good(3), t: 'y'.repeat(100_000) }, good(4), good(5)]);
      enc.encode([]);
      expect(first.body.equals(copy)).toBe(true);
    }
  });

  it('sink encoders - a lent body holds the same bytes as encode() until the next encode', () => {
    for (const format of FORMATS) {
      const rows = [good(1), { ...good(2), id: 'nope' }, good(3)];
      const copied = encoderFor(format, ALL, true).encode(rows);
      const lent = encoderFor(format, ALL, true).encodeLent(rows);
      expect(lent.body.equals(copied.body)).toBe(true);
      expect(lent.rejected).toEqual(copied.rejected);
      expect(lent.included).toEqual(copied.included);
    }
  });

  it('sink encoders - a batch encoded in chunks into pooled slabs is the one-shot body, with its SHA-1 as token', () => {
    for (const format of FORMATS) {
      // Long values, so the body spans several 1 MiB slabs and chunks cross slab ends.
      const rows = Array.from({ length: 300 }, (_, i) => ({ ...good(i), t: `${i}:`.padEnd(9_000 + i, 'é') }));
      const whole = encoderFor(format, ALL, true).encode(rows).body;
      const pool = new SlabPool();
      const enc = encoderFor(format, ALL, true);
      for (let round = 0; round < 2; round++) {
        const body = new InsertBody(pool, true);
        for (let from = 0; from < rows.length; from += 7) body.append(enc.encodeLent(rows.slice(from, from + 7)).body);
        expect(Buffer.concat(body.parts()).equals(whole)).toBe(true);
        expect(body.parts().length).toBe(Math.ceil(whole.length / SLAB_BYTES));
        expect(body.token()).toBe(createHash('sha1').update(whole).digest('hex'));
        body.recycle();
        // The second round reuses the first round's slabs instead of allocating.
        expect(pool.pooledBytes).toBe(Math.ceil(whole.length / SLAB_BYTES) * SLAB_BYTES);
      }
      expect(new InsertBody(pool, false).token()).toBeUndefined();
    }
  });

  it('sink encoders - an empty batch is an empty body', () => {
    for (const format of FORMATS) {
      const batch = encoderFor(format, ALL, true).encode([]);
      expect(batch).toEqual({ body: Buffer.alloc(0), rows: 0, rejected: [], included: [] });
    }
  });

  it('sink encoders - the same rows decode to the same values from both formats', () => {
    const rows: Row[] = [];
    for (let i = 0; i < 200; i++) {
      rows.push({
        id: `0a1b2c3d-4e5f-4a6b-8c7d-${String(i).padStart(12, '0')}`,
        s: `s${i} ${'é'.repeat(i % 50)}`, lc: i % 2 ? 'a' : '', t: 'x'.repeat(i * 7),
        u8: i % 256, u16: i * 300, u32: i * 21_000_000, u64: BigInt(i) * 90_000_000_000_000_001n,
        f: i / 7, ts: Date.UTC(2024, 0, 1) + i * 3_600_123, d: Date.UTC(2024, 0, 1) + i * DAY, p: { i, s: `v${i}` },
      });
    }
    for (const modern of [true, false]) {
      const a = decode('RowBinary', ALL, modern, encoderFor('RowBinary', ALL, modern).encode(rows).body);
      const b = decode('JSONEachRow', ALL, modern, encoderFor('JSONEachRow', ALL, modern).encode(rows).body);
      expect(a).toHaveLength(200);
      expect(a).toEqual(b);
    }
  });
});
