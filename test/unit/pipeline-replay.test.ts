import { closeSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../engine/logger/index.js';
import type { Sink, SinkRecord, SinkStats } from '../../sinks/contract.js';
import { createPipeline, type PipelineSink } from '../../sinks/pipeline.js';
import { createRowBinaryEncoder, type RowBinaryEncoder } from '../../sinks/rows/index.js';
import { TABLES } from '../../sinks/schema/tables.js';
import type { TableName } from '../../sinks/schema/types.js';
import { Wal } from '../../sinks/wal/index.js';
import { eventRows, sessionRows } from '../support/sink-rows.js';

/**
 * The pipeline over a real write-ahead log in a temporary directory: records
 * emitted, the process "crashes" before any sink stored them (the log's
 * descriptors closed as the kernel would, nothing acknowledged), and a new
 * pipeline replays the log. Every record must reach the sinks it was meant
 * for, the store's rows with the bytes it would have encoded itself, and a
 * record that cannot be read back must land in dead_letters, not vanish.
 */

/** A destination that keeps what it is given and never acknowledges (the crash comes first). */
class KeepingSink implements Sink {
  readonly got: { table: TableName; row: Record<string, unknown>; encoded: Buffer | null }[] = [];
  constructor(readonly name: string, private readonly encoders: Map<TableName, RowBinaryEncoder> | null) {}
  write(records: readonly SinkRecord[]): void {
    for (const r of records) this.got.push({ table: r.table, row: r.row, encoded: r.encoded == null ? null : Buffer.from(r.encoded) });
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
  stats(): SinkStats {
    return { queued: 0, inFlight: 0, spooled: 0, spooledBytes: 0, stored: 0, deadLettered: 0, retries: 0, failing: false, lastError: null };
  }
  saturated(): boolean { return false; }
  retryNow(): void {}
  rowEncoder(table: TableName): RowBinaryEncoder | null {
    return this.encoders?.get(table) ?? null;
  }
}

const encoders = (): Map<TableName, RowBinaryEncoder> => new Map((['events', 'sessions', 'identities', 'dead_letters'] as const)
  .map((t) => [t, createRowBinaryEncoder(TABLES[t], { version: '26.1', modern: true })]));

let dir: string;
const errors: Error[] = [];
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'flowstat-pipeline-')); errors.length = 0; });
afterEach(() => { rmSync(dir, { recursive: true, force: true }); expect(errors).toEqual([]); });

function setUp(): { wal: Wal; store: KeepingSink; hook: KeepingSink; sinks: PipelineSink[] } {
  const wal = new Wal({ dir, onError: (err) => errors.push(err) });
  const store = new KeepingSink('store', encoders());
  // A webhook-like second sink that takes only sessions.
  const hook = new KeepingSink('hook', null);
  return { wal, store, hook, sinks: [{ sink: store, primary: true }, { sink: hook, accepts: (r) => r.table === 'sessions' }] };
}

describe('pipeline - replaying the write-ahead log', () => {
  it('pipeline replay - every record reaches its sinks again; store-only rows carry the store\'s own bytes', async () => {
    const events = eventRows(50, 21);
    const sessions = sessionRows(10, 22);
    {
      const { wal, sinks } = setUp();
      wal.replay();
      const pipeline = createPipeline({ wal, sinks, logger: createLogger({ level: 'silent' }) });
      await new Promise<void>((resolve) => {
        pipeline.emit([...events.map((row) => ({ table: 'events' as const, row })), ...sessions.map((row) => ({ table: 'sessions' as const, row }))], { durable: resolve });
      });
      // The crash: nothing was acknowledged, the kernel closes the descriptors.
      for (const s of (wal as unknown as { segments: Map<number, { fd: number }> }).segments.values()) if (s.fd >= 0) closeSync(s.fd);
    }
    const { wal, store, hook, sinks } = setUp();
    const pipeline = createPipeline({ wal, sinks, logger: createLogger({ level: 'silent' }) });
    expect(pipeline.replay()).toBe(60);

    const storedEvents = store.got.filter((g) => g.table === 'events');
    expect(storedEvents).toHaveLength(50);
    const enc = encoders().get('events')!;
    for (let i = 0; i < 50; i++) {
      // Kept as RowBinary: the store gets its bytes back as they were, and a row that encodes to them.
      expect(storedEvents[i]!.encoded!.equals(enc.encodeOne(events[i]!)!)).toBe(true);
      expect(Buffer.from(enc.encodeOne(storedEvents[i]!.row)!).equals(storedEvents[i]!.encoded!)).toBe(true);
    }
    // Sessions go to the hook too: kept in msgpack, so both sinks get exactly the row that was emitted.
    expect(store.got.filter((g) => g.table === 'sessions').map((g) => g.row)).toEqual(sessions);
    expect(hook.got.map((g) => g.row)).toEqual(sessions);
    expect(hook.got.every((g) => g.encoded === null)).toBe(true);
    await pipeline.close();
  });

  it('pipeline replay - a record this build cannot read goes to dead_letters with its bytes and the reason', async () => {
    {
      const { wal, sinks } = setUp();
      wal.replay();
      const pipeline = createPipeline({ wal, sinks, logger: createLogger({ level: 'silent' }) });
      await new Promise<void>((resolve) => pipeline.emit([{ table: 'events', row: eventRows(1, 3)[0]! }], { durable: resolve }));
      // A record in the RowBinary layout with a column layout this build does not have (as an older version's would be).
      const foreign = Buffer.from([0x01, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3]);
      wal.append(foreign);
      await new Promise<void>((resolve) => wal.whenDurable({ durable: resolve }));
      for (const s of (wal as unknown as { segments: Map<number, { fd: number }> }).segments.values()) if (s.fd >= 0) closeSync(s.fd);
    }
    const { wal, store, sinks } = setUp();
    const pipeline = createPipeline({ wal, sinks, logger: createLogger({ level: 'silent' }) });
    expect(pipeline.replay()).toBe(2);
    expect(store.got.filter((g) => g.table === 'events')).toHaveLength(1);
    const letters = store.got.filter((g) => g.table === 'dead_letters');
    expect(letters).toHaveLength(1);
    expect(letters[0]!.row).toMatchObject({ source: 'wal', code: 'FLOW_ERR_WAL_RECORD', payload: Buffer.from([0x01, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3]).toString('base64') });
    expect(String(letters[0]!.row.reason)).toMatch(/another column layout/);
    await pipeline.close();
  });
});
