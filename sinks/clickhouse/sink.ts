import type { Clock, Logger } from '../../engine/index.js';
import { createBatchingSink, type DeadLetter, type Refused } from '../batch/index.js';
import type { AckTarget, Sink } from '../contract.js';
import {
  createJsonEachRowEncoder, createRowBinaryDecoder, createRowBinaryEncoder, type RowBinaryDecoder, type RowBinaryEncoder, type RowEncoder,
} from '../rows/index.js';
import { TABLES } from '../schema/tables.js';
import type { Capabilities, Row, TableDef, TableName } from '../schema/types.js';
import { Spool } from '../spool/index.js';
import { classifyStoreError } from './errors.js';
import { InsertBody, SlabPool } from './insert-body.js';
import type { StoreHandle } from './connect.js';
import type { ClickHouseStore } from './store.js';

/**
 * The ClickHouse sink: batches per table, encodes each batch once, as its
 * rows arrive (RowBinary unless configured otherwise, into pooled memory),
 * inserts with a deduplication token so a retried batch is stored once on
 * stores that support it, and hands rows the encoder refused to dead_letters.
 */

export interface ClickHouseSinkOptions {
  readonly store: StoreHandle;
  readonly format: 'RowBinary' | 'JSONEachRow';
  readonly spoolDir: string;
  readonly spoolMaxBytes: number;
  readonly maxRows: number;
  readonly maxBytes: number;
  readonly flushMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Refused rows go here (the pipeline writes them to dead_letters through this sink). */
  readonly deadLetter: (letters: readonly DeadLetter[]) => void;
  /** Load batches a previous run spooled (durability: memory) instead of discarding them. */
  readonly keepSpool: boolean;
}

/**
 * Rows are encoded this many at a time as they arrive: small enough that
 * one step holds the event loop ~10 ms (5 µs a row), large enough that the
 * per-call overhead stays out of sight.
 */
export const ENCODE_CHUNK_ROWS = 2_048;

/** A batch being encoded: the body so far and the rows the encoder refused. */
interface Encoding {
  readonly encoder: RowEncoder;
  readonly body: InsertBody;
  readonly refused: Refused[];
  /** Rows of the batch encoded so far. */
  done: number;
  /**
   * Rows the batch keeps only as their bytes in the body (addEncoded), as
   * triples: index in the batch, byte offset in the body, byte length.
   */
  readonly kept: number[];
}

function tokenOf(body: InsertBody): { dedupToken?: string } {
  const token = body.token();
  return token === undefined ? {} : { dedupToken: token };
}

export function createClickHouseSink(o: ClickHouseSinkOptions): Sink {
  // chDB takes RowBinary too (through a file: see chdb.ts), at half the CPU per row of JSONEachRow.
  const format = o.format;
  // Encoders depend on the store's capabilities, known once it is connected.
  let encoders: Map<TableName, RowEncoder> | null = null;
  /** The capabilities the encoders were made for: rows they wrote are read back with the same. */
  let encoderCaps: Capabilities | null = null;
  function encoderFor(table: TableName, store: ClickHouseStore): RowEncoder {
    if (encoders === null) {
      encoders = new Map();
      encoderCaps = store.capabilities;
      for (const def of Object.values(TABLES)) {
        encoders.set(def.name, format === 'RowBinary'
          ? createRowBinaryEncoder(def, store.capabilities)
          : createJsonEachRowEncoder(def, store.capabilities));
      }
    }
    return encoders.get(table)!;
  }
  const slabs = new SlabPool();
  const begin = (table: TableName, store: ClickHouseStore): Encoding => ({
    encoder: encoderFor(table, store),
    // Only modern stores use the token; skip the hash (~1.2 µs/row) elsewhere.
    body: new InsertBody(slabs, store.capabilities.modern),
    refused: [],
    done: 0,
    kept: [],
  });
  // Decoders for rows kept as bytes (made on first use: only a batch that is spooled or split needs one).
  const decoders = new Map<TableName, RowBinaryDecoder>();
  function decoderFor(table: TableDef): RowBinaryDecoder {
    let decoder = decoders.get(table.name);
    if (decoder === undefined) decoders.set(table.name, decoder = createRowBinaryDecoder(table, encoderCaps!));
    return decoder;
  }
  /** Encodes rows[e.done..end) into e's body, a chunk at a time (one chunk's bytes live in the encoder's scratch). */
  function encodeRest(e: Encoding, rows: readonly Row[], end = rows.length): void {
    for (let from = e.done; from < end; from += ENCODE_CHUNK_ROWS) {
      const to = Math.min(end, from + ENCODE_CHUNK_ROWS);
      const chunk = e.encoder.encodeLent(from === 0 && to === rows.length ? rows : rows.slice(from, to));
      for (const r of chunk.rejected) e.refused.push({ index: from + r.index, code: 'FLOW_ERR_FIELD_INVALID', reason: r.reason });
      if (chunk.rows > 0) e.body.append(chunk.body);
    }
    e.done = Math.max(e.done, end);
  }
  /**
   * A row the write-ahead log already encoded with rowEncoder(table): its
   * bytes go into the body as they are, and the batch need not keep the row
   * object (restore reads it back from the body if it is ever needed).
   */
  function addEncoded(e: Encoding, rows: readonly Row[], bytes: Buffer): boolean {
    encodeRest(e, rows, rows.length - 1);
    e.kept.push(rows.length - 1, e.body.bytes, bytes.length);
    e.body.append(bytes);
    e.done = rows.length;
    return true;
  }
  function restore(e: Encoding, rows: Row[]): void {
    const decoder = decoderFor(e.encoder.table);
    const { kept } = e;
    for (let i = 0; i < kept.length; i += 3) rows[kept[i]!] = decoder.decode(e.body.read(kept[i + 1]!, kept[i + 2]!));
  }

  const spool = new Spool<(AckTarget | null)[]>(o.spoolDir, o.spoolMaxBytes);
  if (o.keepSpool) {
    const n = spool.load();
    if (n > 0) o.logger.info({ batches: n, rows: spool.rows }, 'found spooled batches from the last run; delivering them first');
  } else {
    spool.discard();
  }

  const sink = createBatchingSink<Encoding>({
    name: `clickhouse:${o.store.kind}`,
    spool,
    clock: o.clock,
    logger: o.logger,
    maxRows: o.maxRows,
    maxBytes: o.maxBytes,
    flushMs: o.flushMs,
    deadLetter: o.deadLetter,
    delivery: {
      // Encoding a batch while it fills overlaps the insert in flight: on two
      // cores the sink then costs max(encode, insert) per batch, not the sum.
      prepare: {
        everyRows: ENCODE_CHUNK_ROWS,
        begin(table) {
          const store = o.store.peek();
          return store === null ? null : begin(table, store);
        },
        add: encodeRest,
        addEncoded,
        restore,
      },
      async deliver(table: TableName, rows: readonly Row[], prepared: Encoding | null): Promise<readonly Refused[]> {
        const store = await o.store.get();
        const e = prepared ?? begin(table, store);
        encodeRest(e, rows);
        if (e.body.bytes > 0) {
          try {
            await store.insert({
              table,
              columns: e.encoder.columns,
              format,
              body: e.body.parts(),
              // Same bytes, same token: a batch retried after an ambiguous failure is dropped by the store.
              ...tokenOf(e.body),
            });
          } catch (err) {
            e.body.abandon();
            throw err;
          }
          e.body.recycle();
        }
        return e.refused;
      },
      classify: classifyStoreError,
    },
  });
  return {
    ...sink,
    rowEncoder(table) {
      const store = format === 'RowBinary' ? o.store.peek() : null;
      return store === null ? null : encoderFor(table, store) as RowBinaryEncoder;
    },
  };
}
