import type { RowBinaryEncoder } from './rows/row-binary.js';
import type { Row, TableName } from './schema/types.js';

/**
 * The sink contract (DESIGN.md, Listener / sink; Broadway's acknowledgements):
 * a sink receives every processed and derived event as records, batches them,
 * and acknowledges each record only once it is durable at the sink (stored,
 * or stored in dead_letters). Until then the record is held — in memory, in
 * the sink's on-disk spool, and (durability: wal) in the write-ahead log.
 */

/** Something that is waiting for records to become durable: a WAL segment. */
export interface AckTarget {
  release(count: number): void;
}

export interface SinkRecord {
  readonly table: TableName;
  readonly row: Row;
  /** Released once this sink made the record durable; null when nothing waits. */
  readonly ack: AckTarget | null;
  /**
   * The row already encoded with this sink's `rowEncoder(table)` (the
   * write-ahead log keeps these bytes): a view valid only during `write`,
   * which copies it. Absent when the row was not encoded for this sink.
   */
  readonly encoded?: Buffer | null;
}

export interface SinkStats {
  /** Records accepted and not yet being written. */
  queued: number;
  /** Records in the write currently running. */
  inFlight: number;
  /** Records parked on disk until the destination is back. */
  spooled: number;
  spooledBytes: number;
  stored: number;
  deadLettered: number;
  retries: number;
  /** The destination failed its last attempt and has not succeeded since. */
  failing: boolean;
  lastError: string | null;
}

export interface Sink {
  readonly name: string;
  /** Takes records (never blocks, never drops). */
  write(records: readonly SinkRecord[]): void;
  /** Writes everything accepted so far; resolves when done or when the destination is down (then it is spooled). */
  flush(): Promise<void>;
  /** Flushes, then releases resources. */
  close(): Promise<void>;
  stats(): SinkStats;
  /** True when this sink cannot take more without losing the bound on memory and disk: callers must shed load. */
  saturated(): boolean;
  /** The destination is known to be back: retry now instead of at the end of the backoff. */
  retryNow(): void;
  /**
   * The encoder whose bytes this sink takes as `SinkRecord.encoded` for the
   * table, or null while it cannot say (not connected yet) or takes none.
   */
  rowEncoder?(table: TableName): RowBinaryEncoder | null;
}
