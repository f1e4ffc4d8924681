import type { Clock, Logger, Timer } from '../../engine/index.js';
import type { StoreFailure } from '../clickhouse/errors.js';
import type { AckTarget, Sink, SinkRecord, SinkStats } from '../contract.js';
import type { Row, TableName } from '../schema/types.js';
import type { Spool } from '../spool/index.js';
import { backoffDelay, DEFAULT_BACKOFF, type Backoff } from './backoff.js';

/**
 * The machinery every batching sink shares (Vector's sinks/util, Broadway's
 * batcher): records are grouped per table into batches closed by row count,
 * bytes or age; batches are delivered one at a time, in order; each record
 * is acknowledged once it is stored. Failures follow their class:
 *
 * - retry / schema: the batch stays first in line; it and everything behind
 *   it move to the on-disk spool (memory stays bounded) and delivery is
 *   retried with exponential backoff and jitter until it succeeds.
 * - row: the batch is split in halves until the refused rows are isolated;
 *   each goes to dead_letters with the reason, the rest are stored.
 *
 * Delivery is at-least-once (a batch retried after a partial success may be
 * sent twice); the ClickHouse tables are ReplacingMergeTree on the event id
 * and modern stores also drop a repeated batch by its deduplication token.
 */

/** A row the destination (or its encoder) refused, by index in the delivered rows. */
export interface Refused {
  readonly index: number;
  readonly code: string;
  readonly reason: string;
}

export interface Delivery<P = never> {
  /**
   * Writes the rows; resolves with the rows it refused before sending (they
   * are not written), throws on failure. `prepared` is what `prepare` built
   * while these exact rows filled their batch (null for a part of a batch, a
   * batch read back from the spool, or a sink without `prepare`); deliver
   * owns it from then on.
   */
  deliver(table: TableName, rows: readonly Row[], prepared: P | null): Promise<readonly Refused[]>;
  classify(err: unknown): StoreFailure;
  /**
   * Optional work done on a batch while it fills — the ClickHouse sink
   * encodes rows as they arrive — so that it overlaps the delivery in flight
   * instead of following it. Rows must not change once written to a sink.
   */
  readonly prepare?: BatchPreparer<P>;
}

export interface BatchPreparer<P> {
  /** `add` is called each time this many more rows have arrived. */
  readonly everyRows: number;
  /** State for a new batch of `table`, or null to not prepare it (delivery then starts from the rows). */
  begin(table: TableName): P | null;
  /** `rows` is the whole batch so far; the rows after those already added are new. */
  add(state: P, rows: readonly Row[]): void;
  /**
   * A row that came already encoded (`SinkRecord.encoded`): `rows` is the
   * batch so far, this row last; the bytes are valid only during the call.
   * Returns true when the preparer now holds the row as those bytes and can
   * give it back (`restore`): the batch then drops the row object and keeps
   * KEPT_ROW in its place.
   */
  addEncoded?(state: P, rows: readonly Row[], bytes: Buffer): boolean;
  /**
   * Puts back in `rows` every row that addEncoded kept as bytes. Called only
   * when the rows themselves are needed — the batch is spooled, split after
   * a refused row, or retried — never after a successful delivery.
   */
  restore?(state: P, rows: Row[]): void;
}

/**
 * Stands in a batch for a row its preparer keeps as encoded bytes. A row
 * object lives as long as its batch (up to flushMs); kept as objects, a
 * second's rows are most of what every young-generation GC copies (~17% of
 * the engine's main thread end to end, docs/performance.md). As bytes they
 * are already in the insert body.
 */
export const KEPT_ROW: Row = Object.freeze({});

export interface DeadLetter {
  readonly table: TableName;
  readonly row: Row;
  readonly code: string;
  readonly reason: string;
  readonly ack: AckTarget | null;
}

export interface BatchingSinkOptions<P = never> {
  readonly name: string;
  readonly delivery: Delivery<P>;
  readonly spool: Spool<(AckTarget | null)[]>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Where refused rows go (the ClickHouse sink writes them to dead_letters). */
  readonly deadLetter: (letters: readonly DeadLetter[]) => void;
  readonly maxRows: number;
  readonly maxBytes: number;
  readonly flushMs: number;
  /**
   * Sealed batches waiting in memory while the destination is healthy. At
   * this many the sink reports itself saturated (the gateway sheds load); at
   * twice this many, further batches go to the spool rather than memory.
   */
  readonly maxMemoryBatches?: number;
  readonly backoff?: Backoff;
  /** Tables this sink takes; others are acknowledged and skipped. */
  readonly tables?: ReadonlySet<TableName>;
}

interface OpenBatch<P> {
  rows: Row[];
  acks: (AckTarget | null)[];
  bytes: number;
  openedAt: number;
  prepared: P | null;
  /** Rows that are KEPT_ROW in `rows`: `prepared` holds them. */
  kept: number;
}

interface Pending<P> {
  table: TableName;
  rows: Row[];
  acks: (AckTarget | null)[];
  /** Built by delivery.prepare while the batch filled; dropped when the batch is spooled. */
  prepared: P | null;
  /** Rows that are KEPT_ROW in `rows` (see OpenBatch). */
  kept: number;
}

const ROW_BYTES_GUESS = 512;

export function createBatchingSink<P = never>(o: BatchingSinkOptions<P>): Sink {
  type Batch = Pending<P>;
  const open = new Map<TableName, OpenBatch<P>>();
  const memory: Batch[] = [];
  const prepare = o.delivery.prepare;
  const prepareEvery = prepare?.everyRows ?? 0;
  const maxMemoryBatches = o.maxMemoryBatches ?? 4;
  const stats: SinkStats = {
    queued: 0, inFlight: 0, spooled: o.spool.rows, spooledBytes: o.spool.bytes,
    stored: 0, deadLettered: 0, retries: 0, failing: false, lastError: null,
  };
  let pumping = false;
  let attempt = 0;
  let retryTimer: Timer | null = null;
  let wake: (() => void) | null = null;
  let closing = false;
  let idleWaiters: (() => void)[] = [];
  let pumpStopped: (() => void)[] = [];
  let lastSchemaLog = -Infinity;

  const ticker = o.clock.setInterval(() => sealExpired(), Math.max(10, Math.floor(o.flushMs / 4)));

  function syncSpoolStats(): void {
    stats.spooled = o.spool.rows;
    stats.spooledBytes = o.spool.bytes;
  }

  function write(records: readonly SinkRecord[]): void {
    const now = o.clock.now();
    for (const rec of records) {
      if (o.tables !== undefined && !o.tables.has(rec.table)) { rec.ack?.release(1); continue; }
      let batch = open.get(rec.table);
      if (batch === undefined) {
        batch = { rows: [], acks: [], bytes: 0, openedAt: now, prepared: prepare?.begin(rec.table) ?? null, kept: 0 };
        open.set(rec.table, batch);
      }
      const n = batch.rows.push(rec.row);
      batch.acks.push(rec.ack);
      batch.bytes += ROW_BYTES_GUESS;
      stats.queued++;
      if (batch.prepared !== null) {
        if (rec.encoded != null && prepare!.addEncoded !== undefined) {
          if (prepare!.addEncoded(batch.prepared, batch.rows, rec.encoded)) {
            batch.rows[n - 1] = KEPT_ROW;
            batch.kept++;
          }
        } else if (n % prepareEvery === 0) {
          prepare!.add(batch.prepared, batch.rows);
        }
      }
      if (n >= o.maxRows || batch.bytes >= o.maxBytes) seal(rec.table);
    }
  }

  function seal(table: TableName): void {
    const batch = open.get(table);
    if (batch === undefined || batch.rows.length === 0) return;
    open.delete(table);
    enqueue({ table, rows: batch.rows, acks: batch.acks, prepared: batch.prepared, kept: batch.kept });
  }

  /** Puts back the rows `holder` (the batch's prepared state) kept as bytes. */
  function restoreRows(p: Batch, holder: P | null): void {
    if (p.kept === 0) return;
    if (holder === null || prepare?.restore === undefined) throw new Error(`${o.name}: ${p.kept} rows of a ${p.table} batch are held by a preparer that cannot give them back`);
    prepare.restore(holder, p.rows);
    p.kept = 0;
  }

  function sealExpired(): void {
    const now = o.clock.now();
    for (const [table, batch] of open) if (now - batch.openedAt >= o.flushMs) seal(table);
  }

  function enqueue(p: Batch): void {
    // The spool is for a destination that is down (or a producer that ignored
    // saturation): spooling costs an encode, an fsync and a read per batch.
    if (o.spool.length > 0 || stats.failing || memory.length >= 2 * maxMemoryBatches) {
      spillMemory();
      toSpool(p);
    } else {
      memory.push(p);
    }
    void pump();
  }

  function toSpool(p: Batch): void {
    restoreRows(p, p.prepared);
    o.spool.push(p.table, p.rows, p.acks);
    stats.queued -= p.rows.length;
    syncSpoolStats();
  }

  /** Moves the in-memory queue to the spool, keeping order (spool entries go first). */
  function spillMemory(): void {
    while (memory.length > 0) toSpool(memory.shift()!);
  }

  function release(acks: readonly (AckTarget | null)[], from: number, to: number): void {
    for (let i = from; i < to; i++) acks[i]?.release(1);
  }

  /**
   * Delivers `p`, splitting on refused rows. Returns what is left undelivered
   * when the destination failed in a retryable way, or null when done.
   */
  async function deliver(p: Batch): Promise<Batch | null> {
    const ranges: [number, number][] = [[0, p.rows.length]];
    // Only the first attempt at the whole batch can use what was prepared; deliver() owns it after that.
    let prepared = p.prepared;
    p.prepared = null;
    // Holds the batch's kept rows until they are put back (a failed insert leaves its body readable).
    let holder = p.kept > 0 ? prepared : null;
    while (ranges.length > 0) {
      const [lo, hi] = ranges.pop()!;
      const rows = lo === 0 && hi === p.rows.length ? p.rows : p.rows.slice(lo, hi);
      stats.inFlight = rows.length;
      try {
        const attempt = o.delivery.deliver(p.table, rows, prepared);
        prepared = null;
        const refused = await attempt;
        stats.inFlight = 0;
        if (refused.length === 0) {
          stats.stored += rows.length;
          release(p.acks, lo, hi);
          continue;
        }
        // Refused rows carry their acknowledgement over to their dead letter. (The
        // encoder refuses only rows it encoded itself, never kept ones.)
        const isRefused = new Set<number>();
        const letters: DeadLetter[] = [];
        for (const r of refused) {
          isRefused.add(r.index);
          letters.push({ table: p.table, row: rows[r.index]!, code: r.code, reason: r.reason, ack: p.acks[lo + r.index] ?? null });
        }
        for (let i = lo; i < hi; i++) if (!isRefused.has(i - lo)) p.acks[i]?.release(1);
        stats.stored += rows.length - refused.length;
        stats.deadLettered += refused.length;
        o.deadLetter(letters);
        continue;
      } catch (err) {
        stats.inFlight = 0;
        // Splits, retries and the spool need the rows themselves.
        restoreRows(p, holder);
        holder = null;
        const failure = o.delivery.classify(err);
        stats.lastError = `${failure.code}: ${failure.error.message}`;
        if (failure.kind === 'row') {
          if (hi - lo === 1) {
            stats.deadLettered++;
            o.deadLetter([{ table: p.table, row: p.rows[lo]!, code: failure.code, reason: failure.error.message, ack: p.acks[lo] ?? null }]);
          } else {
            const mid = lo + Math.floor((hi - lo) / 2);
            ranges.push([mid, hi], [lo, mid]); // first half next
          }
          continue;
        }
        if (failure.kind === 'schema') {
          const now = o.clock.now();
          if (now - lastSchemaLog > 60_000) {
            lastSchemaLog = now;
            o.logger.error({ sink: o.name, table: p.table, err: failure.error }, 'the store refused the table itself; holding the data and retrying — check the schema');
          }
        }
        ranges.push([lo, hi]);
        // Everything not yet delivered, in order: the failed range, then the rest.
        const rest: Batch = { table: p.table, rows: [], acks: [], prepared: null, kept: 0 };
        for (let i = ranges.length - 1; i >= 0; i--) {
          const [a, b] = ranges[i]!;
          for (let j = a; j < b; j++) { rest.rows.push(p.rows[j]!); rest.acks.push(p.acks[j] ?? null); }
        }
        return rest;
      }
    }
    return null;
  }

  async function pump(): Promise<void> {
    if (pumping) return;
    pumping = true;
    try {
      for (;;) {
        let current: Batch;
        let fromSpool = false;
        const head = o.spool.head();
        if (head !== undefined) {
          fromSpool = true;
          current = { table: head.table, rows: await o.spool.read(head), acks: head.tag ?? new Array<null>(head.rows).fill(null), prepared: null, kept: 0 };
        } else if (memory.length > 0) {
          // Out of the queue and in flight: counted in inFlight, not queued.
          current = memory.shift()!;
          stats.queued -= current.rows.length;
        } else {
          break;
        }
        const left = await deliver(current);
        if (left === null) {
          if (fromSpool) { o.spool.shift(); syncSpoolStats(); }
          if (stats.failing) o.logger.info({ sink: o.name, after: attempt }, 'destination is back; delivering');
          stats.failing = false;
          attempt = 0;
          continue;
        }
        // The destination is down: park everything on disk and wait.
        if (fromSpool) {
          if (left.rows.length !== current.rows.length) o.spool.replaceHead(left.rows, left.acks);
        } else {
          // The spool is empty whenever memory batches are delivered, so this keeps the order.
          o.spool.push(left.table, left.rows, left.acks);
          spillMemory();
        }
        syncSpoolStats();
        if (!stats.failing) o.logger.warn({ sink: o.name, error: stats.lastError }, 'delivery failed; spooling to disk and retrying');
        stats.failing = true;
        stats.retries++;
        notifyIdle(); // flush() callers stop waiting: the data is safe on disk
        if (closing) break;
        await new Promise<void>((resolve) => {
          wake = resolve;
          retryTimer = o.clock.setTimeout(resolve, backoffDelay(attempt++, o.backoff ?? DEFAULT_BACKOFF));
        });
        wake = null;
        retryTimer = null;
        if (closing) break; // close() woke us: no delivery may start after it resolves
      }
    } catch (err) {
      // A spool read/write failed: the disk is in trouble. Keep what we have and try later.
      o.logger.error({ sink: o.name, err }, 'sink pump failed');
      stats.failing = true;
      stats.lastError = (err as Error).message;
      if (!closing) retryTimer = o.clock.setTimeout(() => { void pump(); }, backoffDelay(attempt++, o.backoff ?? DEFAULT_BACKOFF));
    } finally {
      pumping = false;
      notifyIdle();
      const stopped = pumpStopped;
      pumpStopped = [];
      for (const r of stopped) r();
    }
  }

  function isIdle(): boolean {
    return !pumping && memory.length === 0 && o.spool.length === 0 && open.size === 0;
  }

  function notifyIdle(): void {
    if (!(isIdle() || stats.failing)) return;
    const w = idleWaiters;
    idleWaiters = [];
    for (const r of w) r();
  }

  async function flush(): Promise<void> {
    for (const table of [...open.keys()]) seal(table);
    if (stats.failing && wake !== null) {
      // Try once more now rather than at the end of the backoff.
      retryTimer?.cancel();
      (wake as () => void)();
    }
    void pump();
    if (isIdle()) return;
    await new Promise<void>((resolve) => idleWaiters.push(resolve));
    if (stats.failing) spillMemory();
  }

  // Batches a previous run spooled (durability: memory) are delivered first.
  if (o.spool.length > 0) void pump();

  return {
    name: o.name,
    write,
    flush,
    async close() {
      await flush();
      closing = true;
      ticker.cancel();
      retryTimer?.cancel();
      if (wake !== null) (wake as () => void)();
      // The pump stops before close() resolves, so a closed sink never delivers (or acknowledges) again.
      if (pumping) await new Promise<void>((resolve) => pumpStopped.push(resolve));
    },
    stats: () => ({ ...stats }),
    saturated: () => o.spool.full() || memory.length >= maxMemoryBatches,
    retryNow() {
      if (stats.failing && wake !== null) {
        retryTimer?.cancel();
        (wake as () => void)();
      }
    },
  };
}
