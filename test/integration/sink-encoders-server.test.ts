import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJsonEachRowEncoder, createRowBinaryEncoder, type RowEncoder } from '../../sinks/rows/index.js';
import { DEAD_LETTERS, EVENTS, IDENTITIES, SESSIONS } from '../../sinks/schema/tables.js';
import { capabilitiesOf, type LogicalType, type Row, type TableDef } from '../../sinks/schema/types.js';
import { startClickHouseServer, type ClickHouseServer } from '../support/clickhouse-server.js';
import { deadLetterRows, eventRows, expectedReadBack, identityRows, readBackSelect, rowKey, sessionRows } from '../support/sink-rows.js';

/**
 * Both encoders against Debian's ClickHouse 18.16 with the legacy physical
 * types: every column of every table is written, read back with FORMAT
 * JSONEachRow and compared exactly.
 */

const CAPS = capabilitiesOf('18.16.1');

/** Legacy physical types (the real renderer is sinks/schema/render.ts; this test keeps its own). */
const LEGACY_TYPE: Record<LogicalType, string> = {
  uuid: 'UUID', string: 'String', lc_string: 'String', text: 'String',
  uint8: 'UInt8', uint16: 'UInt16', uint32: 'UInt32', uint64: 'UInt64', float64: 'Float64',
  ts_ms: 'UInt64', date: 'Date', props: 'String',
};

function createTableSql(db: string, t: TableDef): string {
  const columns = t.columns.map((c) => `  ${c.name} ${LEGACY_TYPE[c.type]}`).join(',\n');
  const engine = t.engine === 'ReplacingMergeTree' ? `ReplacingMergeTree(${t.version ?? ''})` : 'MergeTree()';
  return `CREATE TABLE ${db}.${t.name} (\n${columns}\n) ENGINE = ${engine} PARTITION BY ${t.partitionBy} ORDER BY (${t.orderBy.join(', ')})`;
}

const FORMATS = {
  RowBinary: (t: TableDef) => createRowBinaryEncoder(t, CAPS),
  JSONEachRow: (t: TableDef) => createJsonEachRowEncoder(t, CAPS),
} as const;
type Format = keyof typeof FORMATS;
const DB: Record<Format, string> = { RowBinary: 'enc_rowbinary', JSONEachRow: 'enc_json' };

let server: ClickHouseServer;
let client: ClickHouseClient;

beforeAll(async () => {
  server = await startClickHouseServer();
  client = createClient({ url: server.url, log: { level: ClickHouseLogLevel.OFF } });
  for (const db of Object.values(DB)) {
    await client.command({ query: `CREATE DATABASE ${db}` });
    for (const t of [EVENTS, SESSIONS, IDENTITIES, DEAD_LETTERS]) await client.command({ query: createTableSql(db, t) });
  }
});

afterAll(async () => {
  await client?.close();
  if (server !== undefined) {
    await server.stop();
    server.remove();
  }
});

async function insert(db: string, enc: RowEncoder, body: Buffer): Promise<void> {
  const res = await client.exec({ query: `INSERT INTO ${db}.${enc.table.name} (${enc.columns.join(', ')}) FORMAT ${enc.format}`, values: Readable.from([body]) });
  for await (const _ of res.stream) { /* drain: the insert is done when the response ends */ }
}

async function readBack(db: string, t: TableDef): Promise<Record<string, unknown>[]> {
  const rs = await client.query({ query: `SELECT ${readBackSelect(t, false)} FROM ${db}.${t.name}`, format: 'JSONEachRow' });
  return rs.json<Record<string, unknown>>();
}

/** Every stored row equals what `rows` should read back as, and nothing else is stored. */
function expectStored(t: TableDef, stored: Record<string, unknown>[], rows: readonly Row[]): void {
  const expected = new Map(rows.map((r) => [rowKey(t, r), expectedReadBack(t, r, false)]));
  expect(expected.size).toBe(rows.length);
  expect(stored.length).toBe(rows.length);
  for (const row of stored) {
    const key = rowKey(t, row);
    expect(row, `${t.name} ${key}`).toEqual(expected.get(key));
  }
}

const BATCHES: readonly (readonly [TableDef, () => Row[]])[] = [
  [EVENTS, () => eventRows(1000)],
  [SESSIONS, () => sessionRows(200)],
  [IDENTITIES, () => identityRows(200)],
  [DEAD_LETTERS, () => deadLetterRows(200)],
];

describe('sink encoders on ClickHouse 18.16 (legacy types)', () => {
  for (const format of Object.keys(FORMATS) as Format[]) {
    for (const [table, make] of BATCHES) {
      it(`sink encoders - ${format} rows of ${table.name} read back exactly`, async () => {
        const rows = make();
        const enc = FORMATS[format](table);
        const batch = enc.encode(rows);
        expect(batch.rejected).toEqual([]);
        expect(batch.rows).toBe(rows.length);
        await insert(DB[format], enc, batch.body);
        expectStored(table, await readBack(DB[format], table), rows);
      });
    }

    it(`sink encoders - ${format}: bad rows are rejected with reasons, the rest are stored`, async () => {
      const db = DB[format];
      await client.command({ query: `TRUNCATE TABLE ${db}.events` });
      const rows = eventRows(300, 7);
      const bad: [number, Row, RegExp][] = [
        [10, { ...rows[10], event_id: 'not-a-uuid' }, /"event_id" \(uuid\)/],
        [11, { ...rows[11], project_id: -3 }, /"project_id" \(uint32\): negative/],
        [12, { ...rows[12], props: ['a', 'b'] }, /"props" \(props\): expected a plain object, got an array/],
        [200, { ...rows[200], seq: Number.NaN }, /"seq"/],
        [299, { ...rows[299], ts: -1 }, /"ts" \(ts_ms\)/],
      ];
      for (const [i, row] of bad) rows[i] = row;
      const enc = FORMATS[format](EVENTS);
      const batch = enc.encode(rows);
      expect(batch.rejected.map((r) => r.index)).toEqual(bad.map(([i]) => i));
      batch.rejected.forEach((r, n) => expect(r.reason).toMatch(bad[n]?.[2] ?? /never/));
      const good = rows.filter((_, i) => !bad.some(([j]) => j === i));
      expect(batch.included).toEqual(rows.flatMap((_, i) => (bad.some(([j]) => j === i) ? [] : [i])));
      expect(batch.rows).toBe(good.length);
      await insert(db, enc, batch.body);
      expectStored(EVENTS, await readBack(db, EVENTS), good);
    });
  }

  it('sink encoders - both formats store the same events', async () => {
    const read = async (db: string): Promise<unknown[]> => {
      const rs = await client.query({ query: `SELECT ${readBackSelect(EVENTS, false)} FROM ${db}.events ORDER BY event_id`, format: 'JSONEachRow' });
      return rs.json();
    };
    const viaRowBinary = await read(DB.RowBinary);
    expect(viaRowBinary.length).toBeGreaterThan(0);
    expect(await read(DB.JSONEachRow)).toEqual(viaRowBinary);
  });
});
