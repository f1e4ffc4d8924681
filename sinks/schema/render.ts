import { ident } from '../clickhouse/store.js';
import type { Capabilities, Column, LogicalType, TableDef } from './types.js';

/** Renders the logical schema as DDL for a store's capabilities (see types.ts). */

const MODERN: Record<LogicalType, string> = {
  uuid: 'UUID',
  string: 'String',
  lc_string: 'LowCardinality(String)',
  text: 'String CODEC(ZSTD(3))',
  uint8: 'UInt8',
  uint16: 'UInt16',
  uint32: 'UInt32',
  uint64: 'UInt64',
  float64: 'Float64',
  ts_ms: "DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1))",
  date: 'Date',
  props: 'Map(String, String) CODEC(ZSTD(3))',
};

const LEGACY: Record<LogicalType, string> = {
  uuid: 'UUID',
  string: 'String',
  lc_string: 'String',
  text: 'String',
  uint8: 'UInt8',
  uint16: 'UInt16',
  uint32: 'UInt32',
  uint64: 'UInt64',
  float64: 'Float64',
  ts_ms: 'UInt64',
  date: 'Date',
  props: 'String',
};

export function columnType(type: LogicalType, caps: Capabilities): string {
  return (caps.modern ? MODERN : LEGACY)[type];
}

/** The type as ClickHouse reports it in system.columns (codecs are not part of it). */
export function reportedType(type: LogicalType, caps: Capabilities): string {
  return columnType(type, caps).replace(/\s+CODEC\(.*\)$/, '');
}

function columnDdl(col: Column, caps: Capabilities): string {
  // ClickHouse wants: name type [COMMENT '…'] [CODEC(…)].
  const full = columnType(col.type, caps);
  const at = full.indexOf(' CODEC(');
  const type = at < 0 ? full : full.slice(0, at);
  const codec = at < 0 ? '' : full.slice(at);
  const comment = col.comment !== undefined && caps.modern ? ` COMMENT '${col.comment.replace(/'/g, "\\'")}'` : '';
  return `${ident(col.name)} ${type}${comment}${codec}`;
}

export function createTableSql(database: string, table: TableDef, caps: Capabilities): string {
  const cols = table.columns.map((c) => `  ${columnDdl(c, caps)}`).join(',\n');
  const engine = table.engine === 'ReplacingMergeTree' ? `ReplacingMergeTree(${ident(table.version!)})` : 'MergeTree';
  // Modern stores drop an identical retried batch at insert time (insert_deduplication_token).
  const settings = caps.modern ? '\nSETTINGS non_replicated_deduplication_window = 1000' : '';
  return `CREATE TABLE IF NOT EXISTS ${ident(database)}.${ident(table.name)}\n(\n${cols}\n)\nENGINE = ${engine}\nPARTITION BY ${table.partitionBy}\nORDER BY (${table.orderBy.map(ident).join(', ')})${settings}`;
}

export function addColumnSql(database: string, table: string, col: Column, caps: Capabilities): string {
  // 18.16 has no IF NOT EXISTS here; the schema manager only adds columns it found missing.
  return `ALTER TABLE ${ident(database)}.${ident(table)} ADD COLUMN${caps.modern ? ' IF NOT EXISTS' : ''} ${columnDdl(col, caps)}`;
}
