/**
 * The logical schema: column types that mean the same on every backend, and
 * render to the best physical type each backend supports (schema/render.ts).
 *
 * | logical   | modern (chDB, ClickHouse >= 22.3) | legacy (Debian's 18.16) |
 * |-----------|-----------------------------------|-------------------------|
 * | uuid      | UUID                              | UUID                    |
 * | string    | String                            | String                  |
 * | lc_string | LowCardinality(String)            | String                  |
 * | text      | String CODEC(ZSTD(3))             | String                  |
 * | uint8/16/32/64 | UIntN                        | UIntN                   |
 * | float64   | Float64                           | Float64                 |
 * | ts_ms     | DateTime64(3, 'UTC') (Int64 ms in RowBinary) | UInt64 ms    |
 * | date      | Date                              | Date                    |
 * | props     | Map(String, String)               | String (a JSON object)  |
 */
export type LogicalType =
  | 'uuid' | 'string' | 'lc_string' | 'text'
  | 'uint8' | 'uint16' | 'uint32' | 'uint64' | 'float64'
  | 'ts_ms' | 'date' | 'props';

export interface Column {
  readonly name: string;
  readonly type: LogicalType;
  /** Schema version that added it (migrations add columns, never drop or retype). */
  readonly since: number;
  readonly comment?: string;
}

export interface TableDef {
  readonly name: TableName;
  readonly columns: readonly Column[];
  readonly engine: 'MergeTree' | 'ReplacingMergeTree';
  /** ReplacingMergeTree version column. */
  readonly version?: string;
  readonly partitionBy: string;
  readonly orderBy: readonly string[];
  readonly since: number;
}

export type TableName = 'events' | 'sessions' | 'identities' | 'dead_letters';

/** A row: logical column name → value (missing columns get their type's default). */
export type Row = Record<string, unknown>;

export interface Capabilities {
  /** Server version string, e.g. "18.16.1" or "26.7.2.1". */
  readonly version: string;
  /** LowCardinality, DateTime64, Map, codecs, insert_deduplication_token, query parameters. */
  readonly modern: boolean;
}

/** ClickHouse >= 22.3 has everything the modern rendering uses. */
export function capabilitiesOf(version: string): Capabilities {
  const [major = 0, minor = 0] = version.split('.').map((n) => Number(n));
  return { version, modern: major > 22 || (major === 22 && minor >= 3) };
}
