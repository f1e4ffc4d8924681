import type { Capabilities } from '../schema/types.js';

/**
 * What the sinks and the schema manager need from a ClickHouse: the embedded
 * chDB and a server look the same through this. Errors thrown are classified
 * by classifyStoreError (errors.ts).
 */
export interface ClickHouseStore {
  readonly kind: 'chdb' | 'server';
  readonly database: string;
  /** Detected at connect. */
  readonly capabilities: Capabilities;
  /** Runs a statement that returns nothing (DDL, INSERT … SELECT). */
  command(sql: string): Promise<void>;
  /**
   * Runs a SELECT and returns its rows (JSONEachRow). Values are either bound
   * as `{name:Type}` query parameters (`options.params`, modern stores only)
   * or inlined by the caller, escaped with `literal`.
   */
  query<T = Record<string, unknown>>(sql: string, options?: QueryOptions): Promise<T[]>;
  /** Inserts an encoded body into `table` (unqualified; the store's database). */
  insert(request: InsertRequest): Promise<void>;
  /** True when the store answers right now. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export interface QueryOptions {
  /** Values for the query's `{name:Type}` placeholders (ClickHouse >= 19.x and chDB; not 18.16). */
  readonly params?: Readonly<Record<string, unknown>>;
  /** Per-query settings, e.g. max_execution_time (seconds). */
  readonly settings?: Readonly<Record<string, string | number>>;
}

export interface InsertRequest {
  readonly table: string;
  readonly columns: readonly string[];
  readonly format: 'RowBinary' | 'JSONEachRow';
  /** The encoded rows, in one buffer or in consecutive chunks (sent as one body). */
  readonly body: Buffer | readonly Buffer[];
  /** Same token, same batch: a retried insert is dropped by the store (modern stores only). */
  readonly dedupToken?: string;
}

/**
 * Settings for every insert into a modern store (ClickHouse >= 22.3, chDB).
 *
 * optimize_on_insert = 0: by default ClickHouse runs the table engine's merge
 * over each inserted block (for ReplacingMergeTree: collapsing rows with the
 * same sort key within the block). Nothing here relies on it: a repeated
 * event within a block collapses like one across blocks, on merge and under
 * SELECT … FINAL, which is how stored counts are read. Turning it off halved
 * chDB's CPU per row (17–18 → 10–11 µs, 100k-row RowBinary batches of
 * realistic events). 18.16 has no such setting (nor the cost).
 */
export const MODERN_INSERT_SETTINGS = Object.freeze({ optimize_on_insert: 0 });

/** A SQL string literal for ClickHouse (old servers have no query parameters). */
export function literal(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** Identifiers come from config and are validated there; quote them anyway. */
export function ident(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`not a plain identifier: ${name}`);
  return `\`${name}\``;
}
