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
}

/**
 * Writes one row into `out`; returns -1 when it was written, else the index of
 * the first column whose value was refused (the caller rewinds `out.pos`).
 */
export type RowWriter = (row: Row, out: ByteBuffer) => number;

/** The batch loop both formats share: a refused row is rewound out of the body and the rest carry on. */
export function encodeRows(rows: readonly Row[], out: ByteBuffer, rules: ValueRules, writeRow: RowWriter): EncodedBatch {
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
    try {
      failed = writeRow(row, out);
    } catch (err) {
      // Only a JSON.stringify of props throws (bigint, cycle); the reason is rebuilt below.
      failed = rules.columns.findIndex((c) => c.type === 'props' && throwsJson(row[c.name]));
      if (failed < 0) throw err;
    }
    if (failed < 0) {
      included.push(i);
    } else {
      out.pos = start;
      const column = rules.columns[failed];
      rejected.push({ index: i, reason: column === undefined ? 'unknown column' : rejectionReason(column, row[column.name], rules) });
    }
  }
  return { body: out.take(), rows: included.length, rejected, included };
}

function throwsJson(v: unknown): boolean {
  try {
    JSON.stringify(v);
    return false;
  } catch {
    return true;
  }
}

