import { Session } from 'chdb';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJsonEachRowEncoder, createRowBinaryEncoder } from '../../sinks/rows/index.js';
import { DEAD_LETTERS, EVENTS, IDENTITIES, SESSIONS } from '../../sinks/schema/tables.js';
import { capabilitiesOf, type LogicalType, type Row, type TableDef } from '../../sinks/schema/types.js';
import { deadLetterRows, eventRows, expectedReadBack, identityRows, readBackSelect, rowKey, sessionRows } from '../support/sink-rows.js';

/**
 * Both encoders against ClickHouse 26 (in-process chDB) with the modern
 * physical types: JSONEachRow bodies go in through session.insert;
 * RowBinary bodies are decoded by ClickHouse itself with the format() table
 * function (chDB's raw insert takes text formats only) and inserted with
 * INSERT … SELECT, so both end in real tables with LowCardinality,
 * DateTime64, Map and codecs, and are read back and compared exactly.
 */

const CAPS = capabilitiesOf('26.7.2.1');

/** Modern physical types (the real renderer is sinks/schema/render.ts; this test keeps its own). */
const MODERN_TYPE: Record<LogicalType, string> = {
  uuid: 'UUID', string: 'String', lc_string: 'LowCardinality(String)', text: 'String CODEC(ZSTD(3))',
  uint8: 'UInt8', uint16: 'UInt16', uint32: 'UInt32', uint64: 'UInt64', float64: 'Float64',
  ts_ms: "DateTime64(3, 'UTC')", date: 'Date', props: 'Map(String, String)',
};

function createTableSql(db: string, t: TableDef): string {
  const columns = t.columns.map((c) => `  ${c.name} ${MODERN_TYPE[c.type]}`).join(',\n');
  const engine = t.engine === 'ReplacingMergeTree' ? `ReplacingMergeTree(${t.version ?? ''})` : 'MergeTree';
  return `CREATE TABLE ${db}.${t.name} (\n${columns}\n) ENGINE = ${engine} PARTITION BY ${t.partitionBy} ORDER BY (${t.orderBy.join(', ')})`;
}

/** format()'s structure argument: the column types without codecs. */
function structureOf(t: TableDef): string {
  return t.columns.map((c) => `${c.name} ${MODERN_TYPE[c.type].replace(/ CODEC\(.*\)$/, '')}`).join(', ');
}

/** A ClickHouse string literal holding exactly `bytes`: every byte as \xHH. */
function bytesLiteral(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  let out = "'";
  for (let i = 0; i < hex.length; i += 2) out += `\\x${hex.slice(i, i + 2)}`;
  return `${out}'`;
}

const sqlString = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

let dir: string;
let session: Session;

async function run(sql: string): Promise<string> {
  return (await session.queryAsync(sql, { format: 'JSONEachRow' })).text();
}

async function readBack(db: string, t: TableDef): Promise<Record<string, unknown>[]> {
  const text = await run(`SELECT ${readBackSelect(t, true)} FROM ${db}.${t.name}`);
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

function expectStored(t: TableDef, stored: Record<string, unknown>[], rows: readonly Row[]): void {
  const expected = new Map(rows.map((r) => [rowKey(t, r), expectedReadBack(t, r, true)]));
  expect(expected.size).toBe(rows.length);
  expect(stored.length).toBe(rows.length);
  for (const row of stored) {
    const key = rowKey(t, row);
    expect(row, `${t.name} ${key}`).toEqual(expected.get(key));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flowstat-chdb-encoders-'));
  session = new Session(dir);
  // RowBinary bodies travel inside the SQL text as literals.
  await run('SET max_query_size = 1000000000');
  for (const db of ['enc_json', 'enc_rowbinary']) {
    await run(`CREATE DATABASE ${db}`);
    for (const t of [EVENTS, SESSIONS, IDENTITIES, DEAD_LETTERS]) await run(createTableSql(db, t));
  }
});

afterAll(() => {
  session?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

const BATCHES: readonly (readonly [TableDef, () => Row[]])[] = [
  [EVENTS, () => eventRows(1000)],
  [SESSIONS, () => sessionRows(200)],
  [IDENTITIES, () => identityRows(200)],
  [DEAD_LETTERS, () => deadLetterRows(200)],
];

describe('sink encoders on chDB (ClickHouse 26, modern types)', () => {
  it('sink encoders - the modern tables have the modern physical types', async () => {
    const text = await run("SELECT name, type, compression_codec FROM system.columns WHERE database = 'enc_json' AND table = 'events' AND name IN ('event_id', 'key', 'ts', 'ua', 'props')");
    const cols = text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { name: string; type: string; compression_codec: string });
    expect(Object.fromEntries(cols.map((c) => [c.name, `${c.type} ${c.compression_codec}`.trim()]))).toEqual({
      event_id: 'UUID', key: 'LowCardinality(String)', ts: "DateTime64(3, 'UTC')", ua: 'String CODEC(ZSTD(3))', props: 'Map(String, String)',
    });
  });

  for (const [table, make] of BATCHES) {
    it(`sink encoders - JSONEachRow rows of ${table.name} read back exactly`, async () => {
      const rows = make();
      const enc = createJsonEachRowEncoder(table, CAPS);
      const batch = enc.encode(rows);
      expect(batch.rejected).toEqual([]);
      await session.insert({ table: `enc_json.${table.name}`, values: batch.body, format: 'JSONEachRow', columns: enc.columns });
      expectStored(table, await readBack('enc_json', table), rows);
    });

    it(`sink encoders - RowBinary rows of ${table.name}, decoded by ClickHouse 26, read back exactly`, async () => {
      const rows = make();
      const enc = createRowBinaryEncoder(table, CAPS);
      const batch = enc.encode(rows);
      expect(batch.rejected).toEqual([]);
      await run(`INSERT INTO enc_rowbinary.${table.name} (${enc.columns.join(', ')})
        SELECT * FROM format(RowBinary, ${sqlString(structureOf(table))}, ${bytesLiteral(batch.body)})`);
      expectStored(table, await readBack('enc_rowbinary', table), rows);
    });
  }

  it('sink encoders - format(RowBinary) of a modern body reads every value as the JSON path stores it', async () => {
    // Straight from format(), no table in between: the decoded values themselves.
    const rows = eventRows(200, 11);
    const body = createRowBinaryEncoder(EVENTS, CAPS).encode(rows).body;
    const text = await run(`SELECT ${readBackSelect(EVENTS, true)} FROM format(RowBinary, ${sqlString(structureOf(EVENTS))}, ${bytesLiteral(body)})`);
    const decoded = text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(decoded).toEqual(rows.map((r) => expectedReadBack(EVENTS, r, true)));
  });

  it('sink encoders - a modern batch with bad rows stores only the good ones', async () => {
    await run('TRUNCATE TABLE enc_json.events');
    const rows = eventRows(300, 9);
    rows[3] = { ...rows[3], event_id: '0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4Z' };
    rows[4] = { ...rows[4], is_bot: 300 };
    rows[5] = { ...rows[5], props: [{ a: 1 }] };
    rows[6] = { ...rows[6], event_date: Date.UTC(2150, 0, 1) };
    const enc = createJsonEachRowEncoder(EVENTS, CAPS);
    const batch = enc.encode(rows);
    expect(batch.rejected.map((r) => r.index)).toEqual([3, 4, 5, 6]);
    expect(batch.rejected.map((r) => /column "(\w+)"/.exec(r.reason)?.[1])).toEqual(['event_id', 'is_bot', 'props', 'event_date']);
    await session.insert({ table: 'enc_json.events', values: batch.body, format: 'JSONEachRow', columns: enc.columns });
    expectStored(EVENTS, await readBack('enc_json', EVENTS), rows.filter((_, i) => i < 3 || i > 6));
  });

  it('sink encoders - DateTime64 and Date at the ends of their ranges', async () => {
    await run("CREATE TABLE enc_json.edges (ts DateTime64(3, 'UTC'), d Date) ENGINE = Memory");
    const table: TableDef = { ...DEAD_LETTERS, columns: [{ name: 'ts', type: 'ts_ms', since: 1 }, { name: 'd', type: 'date', since: 1 }] };
    const rows: Row[] = [
      { ts: 0, d: 0 },
      { ts: 1, d: 86_399_999 },
      { ts: Date.UTC(2149, 5, 6, 23, 59, 59, 999), d: Date.UTC(2149, 5, 6, 23, 59, 59, 999) },
      { ts: Date.UTC(2299, 11, 31, 23, 59, 59, 999), d: Date.UTC(2024, 1, 29) },
    ];
    const json = createJsonEachRowEncoder(table, CAPS).encode(rows);
    await session.insert({ table: 'enc_json.edges', values: json.body, format: 'JSONEachRow' });
    const rb = createRowBinaryEncoder(table, CAPS).encode(rows);
    await run(`INSERT INTO enc_json.edges SELECT * FROM format(RowBinary, 'ts DateTime64(3, \\'UTC\\'), d Date', ${bytesLiteral(rb.body)})`);
    const text = await run('SELECT toString(toUnixTimestamp64Milli(ts)) AS ts, toString(d) AS d FROM enc_json.edges');
    const got = text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as unknown);
    const want = [
      { ts: '0', d: '1970-01-01' },
      { ts: '1', d: '1970-01-01' },
      { ts: String(Date.UTC(2149, 5, 6, 23, 59, 59, 999)), d: '2149-06-06' },
      { ts: String(Date.UTC(2299, 11, 31, 23, 59, 59, 999)), d: '2024-02-29' },
    ];
    expect(got).toEqual([...want, ...want]);
  });
});
