import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Chdb from 'chdb';
import { capabilitiesOf } from '../schema/types.js';
import { StoreCallError } from './server.js';
import type { ClickHouseStore, InsertRequest } from './store.js';

/**
 * The embedded store: ClickHouse 26 in this process (chDB), data under
 * `<dataDir>/chdb`. chDB allows one data directory per process, so the
 * engine opens it once. Queries and inserts run off the event loop
 * (queryAsync / insert are async in chdb 3).
 */

function wrap(err: unknown): Error {
  const code = (err as { clickhouseCode?: unknown } | null)?.clickhouseCode;
  const message = err instanceof Error ? err.message : String(err);
  return new StoreCallError(message, typeof code === 'number' ? code : undefined, { cause: err });
}

export async function createChdbStore(o: { path: string; database: string }): Promise<ClickHouseStore> {
  mkdirSync(o.path, { recursive: true });
  const require = createRequire(import.meta.url);
  const chdb = require('chdb') as typeof Chdb;
  const session = new chdb.Session(o.path);

  async function query<T>(sql: string): Promise<T[]> {
    let text: string;
    try {
      text = (await session.queryAsync(sql, { format: 'JSONEachRow' })).text();
    } catch (err) {
      throw wrap(err);
    }
    const rows: T[] = [];
    for (const line of text.split('\n')) if (line !== '') rows.push(JSON.parse(line) as T);
    return rows;
  }

  const version = (await query<{ v: string }>('SELECT version() AS v'))[0]?.v ?? '0';
  let closed = false;

  return {
    kind: 'chdb',
    database: o.database,
    capabilities: capabilitiesOf(version),
    async command(sql) {
      try {
        await session.queryAsync(sql, { format: 'CSV' });
      } catch (err) {
        throw wrap(err);
      }
    },
    query,
    async insert(req: InsertRequest) {
      if (req.format !== 'JSONEachRow') throw new Error('chDB inserts take JSONEachRow bodies');
      try {
        await session.insert({
          table: `${o.database}.${req.table}`,
          values: Array.isArray(req.body) ? Buffer.concat(req.body as Buffer[]) : req.body as Buffer,
          format: 'JSONEachRow',
          columns: req.columns,
          settings: req.dedupToken !== undefined ? { insert_deduplication_token: req.dedupToken } : {},
        });
      } catch (err) {
        throw wrap(err);
      }
    },
    async ping() {
      return !closed && session.open;
    },
    async close() {
      closed = true;
      session.close();
    },
  };
}
