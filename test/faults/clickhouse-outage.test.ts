import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventIdFromClientId } from '../../engine/index.js';
import { startClickHouseServer, type ClickHouseServer } from '../support/clickhouse-server.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { startLoad } from '../support/load.js';
import { count, serverStore, waitFor } from '../support/storage.js';
import { eventRows, expectedReadBack, readBackSelect, rowKey } from '../support/sink-rows.js';
import { TABLES } from '../../sinks/schema/tables.js';

/**
 * ClickHouse stopped for 30 s in the middle of a stream, then started: the
 * engine keeps answering (events go to the write-ahead log and the spool),
 * and afterwards every acknowledged event is stored exactly once.
 */
describe('faults - ClickHouse outage', () => {
  let ch: ClickHouseServer;
  let gw: TestGateway;
  const database = `outage_${process.pid}`;

  beforeAll(async () => {
    ch = await startClickHouseServer();
    gw = await startGateway('uws', { clickhouse: { url: ch.url, database }, storage: { flushMs: 200, batchRows: 2_000 } });
  });
  afterAll(async () => {
    await gw.stop('test over');
    await ch.stop();
    ch.remove();
  });

  it('stores every acknowledged event exactly once after a 30 s outage', async () => {
    const load = startLoad(gw.url, { prefix: 'outage', concurrency: 8, projectId: 5 });
    await new Promise((r) => setTimeout(r, 3_000));
    await ch.stop();
    const ackedBeforeOutage = load.acked.size;
    await new Promise((r) => setTimeout(r, 5_000));
    // The engine keeps serving while the store is gone, and says it is not ready.
    const ready = await fetch(`${gw.url}/readyz`);
    expect(ready.status).toBe(503);
    const stats = Object.values(gw.storage.sinkStats())[0]!;
    expect(stats.failing).toBe(true);
    await new Promise((r) => setTimeout(r, 25_000));
    expect(load.acked.size).toBeGreaterThan(ackedBeforeOutage + 100);
    await ch.start();
    await new Promise((r) => setTimeout(r, 2_000));
    await load.stop();
    expect(Object.fromEntries(load.refused)).toEqual({}); // status → count: nothing refused

    const store = await serverStore(ch.url, database);
    try {
      const expected = [...load.acked].map((id) => eventIdFromClientId(5, id));
      await waitFor('every acknowledged event', async () => (await count(store, `SELECT count() AS n FROM ${database}.events FINAL WHERE project_id = 5 AND channel = 'gen'`)) >= expected.length, 60_000, 500);
      expect(await count(store, `SELECT count() AS n FROM ${database}.events FINAL WHERE project_id = 5 AND channel = 'gen'`)).toBe(expected.length);
      expect(await count(store, `SELECT uniqExact(event_id) AS n FROM ${database}.events WHERE project_id = 5 AND channel = 'gen'`)).toBe(expected.length);
      const stored = new Set((await store.query<{ id: string }>(`SELECT toString(event_id) AS id FROM ${database}.events FINAL WHERE project_id = 5 AND channel = 'gen'`)).map((r) => r.id));
      expect(expected.filter((id) => !stored.has(id))).toEqual([]);
      expect((await fetch(`${gw.url}/readyz`)).status).toBe(200);
    } finally {
      await store.close();
    }
  }, 150_000);

  // With the write-ahead log the sink keeps a filling batch's rows only as
  // their RowBinary bytes (sinks/batch KEPT_ROW): when the store fails, the
  // rows are read back from those bytes for the spool, and stored exactly.
  it('a batch held as encoded bytes is spooled and stored exactly when the store fails', async () => {
    const db = `${database}_kept`;
    const engine = await startGateway('uws', { clickhouse: { url: ch.url, database: db }, storage: { flushMs: 60_000, batchRows: 100_000 } });
    const events = TABLES.events;
    try {
      await engine.storage.store.get(); // connected: rows are encoded for the store as they are logged
      const rows = eventRows(500, 31);
      engine.storage.pipeline.emit(rows.map((row) => ({ table: 'events' as const, row })), null);
      const sink = (): ReturnType<typeof engine.storage.sinkStats>[string] => Object.values(engine.storage.sinkStats())[0]!;
      await waitFor('the rows in an open batch', async () => sink().queued === rows.length);
      await ch.stop();
      await engine.storage.pipeline.flush(); // the insert fails: the batch goes to the spool
      expect(sink().failing).toBe(true);
      expect(sink().spooled).toBe(rows.length);
      await ch.start();
      engine.storage.pipeline.retryNow();
      await waitFor('the spooled rows stored', async () => sink().stored === rows.length && sink().spooled === 0, 60_000, 200);
      expect(sink().deadLettered).toBe(0);

      const store = await serverStore(ch.url, db);
      try {
        const stored = await store.query<Record<string, unknown>>(`SELECT ${readBackSelect(events, false)} FROM ${db}.events`);
        expect(stored).toHaveLength(rows.length);
        const expected = new Map(rows.map((r) => [rowKey(events, r), expectedReadBack(events, r, false)]));
        for (const row of stored) expect(row).toEqual(expected.get(rowKey(events, row)));
      } finally {
        await store.close();
      }
    } finally {
      await engine.stop('test over');
    }
  }, 120_000);
});
