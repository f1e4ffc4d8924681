import { createError, type Logger } from '../engine/index.js';
import type { Sink, SinkRecord } from './contract.js';
import type { RowBinaryEncoder } from './rows/row-binary.js';
import type { Row, TableName } from './schema/types.js';
import type { Durable, Wal } from './wal/index.js';
import { LogRecordCodec, type DecodedLogRecord } from './wal/log-record.js';
import { deadLetterRow, type DeadLetterInput } from './records.js';

/**
 * Where the engine hands over what it processed. With `durability: wal` each
 * record is first appended to the write-ahead log and the client's reply is
 * held until that append is fsync'd; every record then goes to every sink that
 * takes it, and its log entry is released once all of them have stored it.
 * With `durability: memory` replies go out at once and records exist only in
 * sink buffers (and their spools) — faster, but a crash loses what was not
 * yet written.
 */

export interface OutRecord {
  readonly table: TableName;
  readonly row: Row;
}

export interface PipelineSink {
  readonly sink: Sink;
  /** Which records this sink takes (all when absent). */
  readonly accepts?: (record: OutRecord) => boolean;
  /** The store that also takes dead letters (the ClickHouse sink). */
  readonly primary?: boolean;
}

export interface Pipeline {
  /** Hands records over; `reply.durable()` runs once they are safe per the durability mode. */
  emit(records: readonly OutRecord[], reply: Durable | null): void;
  /** Records something that could not be accepted or processed. */
  deadLetter(input: DeadLetterInput): void;
  /**
   * Replays what the write-ahead log holds from a previous run; returns the
   * record count. `from`: another log (one a worker thread left, docs/threads.md),
   * whose segments are deleted as their records are stored.
   */
  replay(from?: Wal | null): number;
  /** True when a sink or the log cannot take more: shed load. */
  saturated(): boolean;
  flush(): Promise<void>;
  close(): Promise<void>;
  /** Destinations are reachable again: stop waiting out the backoff. */
  retryNow(): void;
  /** The log's disk failed: nothing can be acknowledged safely any more. */
  failWal(err: Error): void;
  readonly sinks: readonly PipelineSink[];
}

export function createPipeline(o: { wal: Wal | null; sinks: readonly PipelineSink[]; logger: Logger }): Pipeline {
  const { wal, sinks } = o;
  const primarySink = sinks.find((s) => s.primary) ?? null;
  const primary = primarySink?.sink ?? null;
  const codec = new LogRecordCodec();
  let walFailed = false;

  /** `encoded`: the row as primary.rowEncoder(table) writes it, for the primary sink only. */
  function route(record: OutRecord, ack: SinkRecord['ack'], only: Sink | null, encoded: Buffer | null): void {
    for (let i = 0; i < sinks.length; i++) {
      const s = sinks[i]!;
      if (only !== null ? s.sink === only : s.accepts === undefined || s.accepts(record)) {
        s.sink.write([{ table: record.table, row: record.row, ack, encoded: s.sink === primary ? encoded : null }]);
      }
    }
  }

  /** The store's encoder when the store is this record's only taker (see log-record.ts), else null. */
  function storeEncoder(record: OutRecord, refs: number, only: Sink | null): RowBinaryEncoder | null {
    if (primary === null || refs !== 1 || primary.rowEncoder === undefined) return null;
    if (only === null && primarySink!.accepts !== undefined && !primarySink!.accepts(record)) return null;
    return primary.rowEncoder(record.table);
  }

  function refsOf(record: OutRecord, only: Sink | null): number {
    if (only !== null) return 1;
    let n = 0;
    for (const s of sinks) if (s.accepts === undefined || s.accepts(record)) n++;
    return n;
  }

  function emitTo(records: readonly OutRecord[], reply: Durable | null, only: Sink | null): void {
    if (wal === null) {
      for (const r of records) route(r, null, only, null);
      reply?.durable();
      return;
    }
    for (const r of records) {
      const refs = refsOf(r, only);
      if (refs === 0) continue;
      const segment = wal.append(codec.encode(r.table, r.row, only !== null, storeEncoder(r, refs, only)), refs);
      route(r, segment, only, codec.rowBytes);
    }
    if (reply !== null) wal.whenDurable(reply);
  }

  return {
    sinks,
    emit(records, reply) {
      emitTo(records, reply, null);
    },
    deadLetter(input) {
      if (primary === null) {
        o.logger.error({ deadLetter: input }, 'dead letter with no store to keep it');
        return;
      }
      emitTo([{ table: 'dead_letters', row: deadLetterRow(input) }], null, primary);
    },
    replay(from: Wal | null = wal) {
      if (from === null) return 0;
      const records = from.replay();
      let unreadable = 0;
      let rowBinary = 0;
      for (const { payload, segment } of records) {
        let decoded: DecodedLogRecord;
        try {
          decoded = codec.decode(payload);
        } catch (err) {
          // Not lost: the record's bytes go to dead_letters with the reason.
          unreadable++;
          segment.release(1);
          const error = createError('FLOW_ERR_WAL_RECORD', { reason: err instanceof Error ? err.message : String(err) });
          emitTo([{ table: 'dead_letters', row: deadLetterRow({
            at: Date.now(), projectId: 0, source: 'wal', code: error.code, reason: error.message, payload: payload.toString('base64'),
          }) }], null, primary);
          continue;
        }
        const only = decoded.storeOnly ? primary : null;
        const record = { table: decoded.table, row: decoded.row };
        // The segment counted one reference per record; add the rest for fan-out.
        const refs = refsOf(record, only);
        if (refs === 0) { segment.release(1); continue; }
        if (refs > 1) segment.pending += refs - 1;
        const rb = decoded.rowBinary;
        if (rb !== null) rowBinary++;
        const encoded = rb !== null && primary?.rowEncoder?.(record.table)?.schemaId === rb.schemaId ? rb.bytes : null;
        route(record, segment, only, encoded);
      }
      if (unreadable > 0) o.logger.error({ records: unreadable }, 'write-ahead log records could not be read back; kept in dead_letters');
      if (records.length > 0) o.logger.info({ records: records.length, rowBinary }, 'replayed the write-ahead log');
      return records.length;
    },
    saturated() {
      if (walFailed) return true;
      for (const s of sinks) if (s.sink.saturated()) return true;
      return false;
    },
    async flush() {
      if (wal !== null) await wal.idle();
      await Promise.all(sinks.map((s) => s.sink.flush()));
    },
    async close() {
      if (wal !== null) await wal.idle();
      await Promise.all(sinks.map((s) => s.sink.close()));
      if (wal !== null) await wal.close();
    },
    retryNow() {
      for (const s of sinks) s.sink.retryNow();
    },
    failWal(err) {
      walFailed = true;
      o.logger.fatal({ err }, 'the write-ahead log cannot write: refusing new events until restart');
    },
  };
}
