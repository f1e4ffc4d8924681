/**
 * sinks/rows — turns logical rows (schema/tables.ts) into ClickHouse insert
 * bodies, RowBinary or JSONEachRow, for a backend's capabilities (modern
 * physical types on chDB and ClickHouse >= 22.3, legacy ones on 18.16).
 *
 * Promises: both formats apply the same value rules (values.ts), so a row
 * means the same whichever is used; a row that breaks them is left out of the
 * body and reported in `rejected` with its index and a reason naming the
 * column, and never spoils the rest of the batch; the returned body belongs to
 * the caller (later encodes do not touch it).
 */
export { createRowBinaryEncoder, type RowBinaryEncoder } from './row-binary.js';
export { createRowBinaryDecoder, rowBinarySchemaId, type RowBinaryDecoder } from './row-binary-decoder.js';
export { createJsonEachRowEncoder } from './json-each-row.js';
export type { EncodedBatch, RowEncoder } from './encoder.js';
export {
  MAX_DATE_DAYS_LEGACY, MAX_DATE_DAYS_MODERN, MAX_TS_MS, MAX_UINT64, ZERO_UUID,
} from './values.js';
