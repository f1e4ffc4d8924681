import type { Row, TableDef } from '../schema/types.js';
import type { ByteBuffer } from './byte-buffer.js';
import { rejectionReason, type ValueRules } from './values.js';

/** The result of encoding one batch. */
export interface EncodedBatch {
  /** The insert body. A fresh Buffer: later encodes never write into it. */
  readonly body: Buffer;
  /** Rows encoded into body. */
  readonly rows: number;
  /** Rows that could not be encoded: index in the input and why; they are NOT in body. */
  readonly rejected: readonly { index: number; reason: string }[];
  /**
   * Input indexes of the rows in body, in order, so a caller can split or
   * retry subsets. Always present (also when nothing was rejected): building
   * it costs well under 1% of an encode.
   */
  readonly included: readonly number[];
}

export interface RowEncoder {
  readonly format: 'RowBinary' | 'JSONEachRow';
  readonly table: TableDef;
  /** The column list for `INSERT INTO t (<columns>) FORMAT <format>`. */
  readonly columns: readonly string[];
  encode(rows: readonly Row[]): EncodedBatch;
  /**
   * Like encode, but `body` is a view of the encoder's scratch space, valid
   * only until its next encode: for callers that copy the bytes out at once
   * (the ClickHouse sink, into pooled buffers), it saves allocating a body.
   */
  encodeLent(rows: readonly Row[]): EncodedBatch;
}

/**
 * Writes one row into `out`; returns -1 when it was written, else the index of
 * the first column whose value was refused (the caller rewinds `out.pos`).
 */
export type RowWriter = (row: Row, out: ByteBuffer) => number;

/** The batch loop both formats share: a refused row is rewound out of the body and the rest carry on. */
export function encodeRows(rows: readonly Row[], out: ByteBuffer, rules: ValueRules, writeRow: RowWriter, lend = false): EncodedBatch {
  const rejected: { index: number; reason: string }[] = [];
  const included: number[] = [];
  out.pos = 0;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as Row;
    if (typeof row !== 'object' || row === null) {
      rejected.push({ index: i, reason: `row is not an object (${row === null ? 'null' : typeof row})` });
      continue;
    }
    const start = out.pos;
    let failed: number;
    let threw = false;
    let thrown: unknown;
    try {
      failed = writeRow(row, out);
    } catch (err) {
      // JSON.stringify of props throws (a bigint, a cycle); so could a getter or a Proxy on an odd row.
      threw = true;
      thrown = err;
      failed = rules.columns.findIndex((c) => c.type === 'props' && throwsJson(() => row[c.name]));
    }
    if (!threw && failed < 0) {
      included.push(i);
      continue;
    }
    out.pos = start;
    rejected.push({ index: i, reason: reasonFor(row, failed, rules, threw ? thrown : undefined) });
  }
  return { body: lend ? out.lend() : out.take(), rows: included.length, rejected, included };
}

function reasonFor(row: Row, failed: number, rules: ValueRules, thrown: unknown): string {
  const column = rules.columns[failed];
  try {
    if (column !== undefined) return rejectionReason(column, row[column.name], rules);
  } catch (err) {
    thrown = err;
  }
  return `row could not be read: ${thrown instanceof Error ? thrown.message : String(thrown)}`;
}

function throwsJson(get: () => unknown): boolean {
  try {
    JSON.stringify(get());
    return false;
  } catch {
    return true;
  }
}

