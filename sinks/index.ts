/**
 * sinks — where events become data. Promises (the sink contract): every
 * record a sink accepts is acknowledged only once it is stored (or stored in
 * dead_letters); while the destination is unreachable records are kept on
 * disk (spool, and with durability: wal the write-ahead log), never dropped;
 * a retried batch is stored once (ReplacingMergeTree on event_id, and
 * insert deduplication tokens where the store supports them).
 */
export { createStorage, registerSinkTypes, webhookOptionsSchema } from './storage.js';
export type { Storage, WebhookOptions } from './storage.js';
export type { Sink, SinkRecord, SinkStats, AckTarget } from './contract.js';
export type { Pipeline, OutRecord } from './pipeline.js';
export { eventRow, deadLetterRow } from './records.js';
export { TABLES } from './schema/tables.js';
export type { Row, TableName, Capabilities } from './schema/types.js';
export { migrate } from './schema/migrate.js';
export { createChdbStore } from './clickhouse/chdb.js';
export { createServerStore } from './clickhouse/server.js';
export type { ClickHouseStore } from './clickhouse/store.js';
export type { StoreHandle } from './clickhouse/connect.js';
