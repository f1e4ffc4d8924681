import { describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import { createRowBinaryDecoder, createRowBinaryEncoder } from '../../sinks/rows/index.js';
import { TABLES } from '../../sinks/schema/tables.js';
import type { Row, TableDef, TableName } from '../../sinks/schema/types.js';
import { LogRecordCodec } from '../../sinks/wal/log-record.js';
import { deadLetterRows, eventRows, identityRows, sessionRows } from '../support/sink-rows.js';

/**
 * The write-ahead log keeps rows that only the store takes as the store's
 * RowBinary bytes (sinks/wal/log-record.ts) and reads them back after a
 * crash: what is read back must encode to the very same bytes, on modern and
 * legacy stores, and a record the build cannot read must say why.
 */

const ROWS: Record<TableName, Row[]> = {
  events: eventRows(300, 7),
  sessions: sessionRows(100),
  identities: identityRows(100),
  dead_letters: deadLetterRows(100),
};

const caps = (modern: boolean): { version: string; modern: boolean } => ({ version: modern ? '26.1' : '18.16.1', modern });

describe('write-ahead log records', () => {
  for (const modern of [true, false]) {
    for (const table of Object.keys(ROWS) as TableName[]) {
      it(`log records - a ${table} row read back from RowBinary encodes to the same bytes (${modern ? 'modern' : 'legacy'} store)`, () => {
        const def = TABLES[table];
        const encoder = createRowBinaryEncoder(def, caps(modern));
        const decoder = createRowBinaryDecoder(def, caps(modern));
        expect(decoder.schemaId).toBe(encoder.schemaId);
        for (const row of ROWS[table]) {
          const bytes = Buffer.from(encoder.encodeOne(row)!);
          const back = decoder.decode(bytes);
          expect(Buffer.from(encoder.encodeOne(back)!).equals(bytes)).toBe(true);
          // And the batch encoder, which the sink uses when it encodes itself, agrees.
          expect(encoder.encode([back]).body.equals(bytes)).toBe(true);
        }
      });
    }
  }

  it('log records - values come back as the types the encoders take (uuid text, ms, numbers, props)', () => {
    const def = TABLES.events;
    const row = { ...eventRows(1, 3)[0]!, event_id: '0192f0e4-5c1a-7abc-8def-0123456789ab', ts: 1_733_000_000_123, event_date: 1_733_000_000_123, props: { plan: 'pro', n: 3, tags: ['a'] } };
    const modern = createRowBinaryDecoder(def, caps(true)).decode(createRowBinaryEncoder(def, caps(true)).encodeOne(row)!);
    expect(modern.event_id).toBe(row.event_id);
    expect(modern.ts).toBe(row.ts);
    expect(modern.event_date).toBe(Math.floor(row.ts / 86_400_000) * 86_400_000);
    // Map(String, String): a non-string value is its JSON text.
    expect(modern.props).toEqual({ plan: 'pro', n: '3', tags: '["a"]' });
    const legacy = createRowBinaryDecoder(def, caps(false)).decode(createRowBinaryEncoder(def, caps(false)).encodeOne(row)!);
    // Legacy props are one JSON string: they come back as the object.
    expect(legacy.props).toEqual(row.props);
  });

  it('log records - truncated or overlong bytes are refused, not misread', () => {
    const def: TableDef = TABLES.sessions;
    const encoder = createRowBinaryEncoder(def, caps(true));
    const decoder = createRowBinaryDecoder(def, caps(true));
    const bytes = Buffer.from(encoder.encodeOne(sessionRows(1)[0]!)!);
    expect(() => decoder.decode(bytes.subarray(0, bytes.length - 3))).toThrow(/ends early/);
    expect(() => decoder.decode(Buffer.concat([bytes, Buffer.from([0])]))).toThrow(/bytes left/);
  });

  it('log records - rows for the store alone go in RowBinary, the rest (and refused rows) in msgpack', () => {
    const codec = new LogRecordCodec();
    const encoder = createRowBinaryEncoder(TABLES.events, caps(true));
    const row = eventRows(1, 9)[0]!;

    const binary = Buffer.from(codec.encode('events', row, false, encoder));
    expect(binary[0]).toBe(0x01);
    expect(codec.rowBytes!.equals(encoder.encodeOne(row)!)).toBe(true);
    const back = codec.decode(binary);
    expect(back.table).toBe('events');
    expect(back.storeOnly).toBe(false);
    expect(back.rowBinary!.schemaId).toBe(encoder.schemaId);
    expect(Buffer.from(encoder.encodeOne(back.row)!).equals(back.rowBinary!.bytes)).toBe(true);

    // No encoder (other sinks take the row too, or the store is not connected yet): msgpack, exactly the row.
    const packed = Buffer.from(codec.encode('events', row, true, null));
    expect(codec.rowBytes).toBeNull();
    expect(codec.decode(packed)).toEqual({ table: 'events', row, storeOnly: true, rowBinary: null });

    // A row the encoder refuses (ts out of range) is kept in msgpack, for the sink to dead-letter with its reason.
    const bad = { ...row, ts: -5 };
    const refused = Buffer.from(codec.encode('events', bad, false, encoder));
    expect(refused[0]).toBe(0x93);
    expect(codec.decode(refused).row).toEqual(bad);
  });

  it('log records - a log written before the RowBinary layout (msgpack [table, row, storeOnly]) still replays', () => {
    const row = eventRows(1, 11)[0]!;
    const old = new Packr({ useRecords: false, mapsAsObjects: true }).pack(['events', row, 0]);
    expect(new LogRecordCodec().decode(old)).toEqual({ table: 'events', row, storeOnly: false, rowBinary: null });
  });

  it('log records - a record from another column layout or an unknown table is refused with the reason', () => {
    const codec = new LogRecordCodec();
    const encoder = createRowBinaryEncoder(TABLES.events, caps(true));
    const record = Buffer.from(codec.encode('events', eventRows(1, 5)[0]!, false, encoder));
    const otherLayout = Buffer.from(record);
    otherLayout.writeUInt32LE((encoder.schemaId ^ 1) >>> 0, 3);
    expect(() => codec.decode(otherLayout)).toThrow(/another column layout/);
    const otherTable = Buffer.from(record);
    otherTable[2] = 200;
    expect(() => codec.decode(otherTable)).toThrow(/table #200/);
  });
});
