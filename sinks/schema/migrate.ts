import type { Logger } from '../../engine/index.js';
import { ident, literal, type ClickHouseStore } from '../clickhouse/store.js';
import { addColumnSql, createTableSql, reportedType } from './render.js';
import { SCHEMA_VERSION, TABLES } from './tables.js';
import type { TableDef } from './types.js';

/**
 * The schema manager. At start it creates the database and the tables, then
 * applies the versioned migrations not yet recorded in `schema_migrations`,
 * in order, recording each. A migration only ever adds what a version
 * introduced (tables, columns); nothing is dropped or retyped. A column whose
 * stored type differs from the schema is reported, not changed.
 */

export const MIGRATIONS_TABLE = 'schema_migrations';

export interface Migration {
  readonly version: number;
  readonly description: string;
}

/** One entry per SCHEMA_VERSION; what each adds is read from the `since` fields in tables.ts. */
export const MIGRATIONS: readonly Migration[] = [
  { version: 1, description: 'events, sessions, identities, dead_letters' },
  { version: 2, description: 'events: enrichment columns (browser major, page query, referrer host, source name, search keyword)' },
  { version: 3, description: 'events: page_seq (page views so far in the session)' },
  { version: 4, description: 'events: arrival (the order the user\'s actor processed each event)' },
];

export interface MigrationReport {
  readonly applied: readonly number[];
  readonly version: number;
  /** Columns present with another type than the schema says (left alone). */
  readonly mismatches: readonly string[];
}

export async function migrate(store: ClickHouseStore, logger: Logger, tables: readonly TableDef[] = Object.values(TABLES), migrations: readonly Migration[] = MIGRATIONS): Promise<MigrationReport> {
  const db = store.database;
  const caps = store.capabilities;
  await store.command(`CREATE DATABASE IF NOT EXISTS ${ident(db)}`);
  await store.command(
    `CREATE TABLE IF NOT EXISTS ${ident(db)}.${ident(MIGRATIONS_TABLE)} (version UInt32, description String, applied_at DateTime) ENGINE = MergeTree ORDER BY version`,
  );
  const done = new Set(
    (await store.query<{ version: number | string }>(`SELECT version FROM ${ident(db)}.${ident(MIGRATIONS_TABLE)}`)).map((r) => Number(r.version)),
  );
  const present = async (): Promise<Map<string, Map<string, string>>> => {
    const rows = await store.query<{ table: string; name: string; type: string }>(
      `SELECT table, name, type FROM system.columns WHERE database = ${literal(db)}`,
    );
    const byTable = new Map<string, Map<string, string>>();
    for (const r of rows) {
      let m = byTable.get(r.table);
      if (m === undefined) { m = new Map(); byTable.set(r.table, m); }
      m.set(r.name, r.type);
    }
    return byTable;
  };
  const applied: number[] = [];
  const pending = [...migrations].sort((a, b) => a.version - b.version).filter((m) => !done.has(m.version));
  if (pending.length > 0) {
    const existing = await present();
    for (const m of pending) {
      for (const table of tables) {
        const cols = existing.get(table.name);
        if (cols === undefined) {
          // A new table is created as the schema stands today; later versions find their columns there.
          if (table.since <= m.version) {
            await store.command(createTableSql(db, table, caps));
            existing.set(table.name, new Map(table.columns.map((c) => [c.name, reportedType(c.type, caps)])));
          }
          continue;
        }
        for (const col of table.columns) {
          if (col.since !== m.version || cols.has(col.name)) continue;
          await store.command(addColumnSql(db, table.name, col, caps));
          cols.set(col.name, reportedType(col.type, caps));
        }
      }
      // INSERT … SELECT, not VALUES: chDB reads a VALUES insert's data from the
      // process's stdin when stdin is a file or a device (`flowstat start < file`,
      // stdin from /dev/zero), and the migration then fails on every attempt.
      await store.command(`INSERT INTO ${ident(db)}.${ident(MIGRATIONS_TABLE)} (version, description, applied_at) SELECT ${m.version}, ${literal(m.description)}, now()`);
      applied.push(m.version);
      logger.info({ version: m.version, description: m.description, database: db }, 'schema migration applied');
    }
  }

  // Reconcile: a column can go missing (dropped by hand, or a table created by
  // an older build that recorded a version it did not fully apply). Add it back.
  const mismatches: string[] = [];
  const byTable = await present();
  for (const table of tables) {
    const cols = byTable.get(table.name);
    if (cols === undefined) {
      await store.command(createTableSql(db, table, caps));
      continue;
    }
    for (const col of table.columns) {
      const type = cols.get(col.name);
      if (type === undefined) {
        await store.command(addColumnSql(db, table.name, col, caps));
        logger.warn({ table: table.name, column: col.name }, 'added a missing column');
      } else if (type !== reportedType(col.type, caps)) {
        mismatches.push(`${table.name}.${col.name}: stored as ${type}, schema says ${reportedType(col.type, caps)}`);
      }
    }
  }
  for (const m of mismatches) logger.warn({ mismatch: m }, 'column type differs from the schema; left as is');
  return { applied, version: Math.max(SCHEMA_VERSION, ...done, ...applied), mismatches };
}
