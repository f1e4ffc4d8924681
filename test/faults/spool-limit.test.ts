import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startClickHouseServer, type ClickHouseServer } from '../support/clickhouse-server.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { count, serverStore, waitFor } from '../support/storage.js';

/**
 * With the store down, accepted events pile up in the spool on disk. Past the
 * spool limit the gateway refuses new events with 503 — it never drops what it
 * accepted and never grows without bound — and once the store is back the
 * spool drains and events are accepted again.
 */
describe('faults - spool limit', () => {
  let ch: ClickHouseServer;
  let gw: TestGateway;
  const database = `spool_${process.pid}`;

  beforeAll(async () => {
    ch = await startClickHouseServer();
    await ch.stop(); // down from the start: the engine must not need it to accept events
    gw = await startGateway('ws', {
      clickhouse: { url: ch.url, database },
      storage: { durability: 'memory', flushMs: 20, batchRows: 10, spoolMaxBytes: 30_000 },
    });
  });
  afterAll(async () => {
    await gw.stop('test over');
    await ch.stop();
    ch.remove();
  });

  it('sheds load with 503 once the spool is full, and recovers when the store is back', async () => {
    const accepted: string[] = [];
    let refused: Response | null = null;
    for (let i = 0; i < 2_000 && refused === null; i++) {
      const res = await fetch(`${gw.url}/track/page/4?id=spool-${i}&uid=u${i % 7}`);
      if (res.status === 200) { accepted.push(`spool-${i}`); await res.arrayBuffer(); }
      else refused = res;
      if (i % 10 === 9) await new Promise((r) => setTimeout(r, 30)); // let batches close and spool
    }
    expect(refused).not.toBeNull();
    expect(refused!.status).toBe(503);
    expect(refused!.headers.get('retry-after')).toBe('5');
    expect(await refused!.json()).toMatchObject({ error: { code: 'FLOW_ERR_OVERLOADED' } });
    expect(accepted.length).toBeGreaterThan(10);
    const ready = await fetch(`${gw.url}/readyz`);
    expect(ready.status).toBe(503);

    await ch.start();
    const store = await serverStore(ch.url, database).catch(() => null);
    await waitFor('the spool to drain', async () => (Object.values(gw.storage.sinkStats())[0]!.spooled === 0 && !gw.storage.pipeline.saturated()), 60_000, 200);
    const s = store ?? await serverStore(ch.url, database);
    try {
      await waitFor('every accepted event', async () => (await count(s, `SELECT count() AS n FROM ${database}.events FINAL WHERE project_id = 4 AND channel = 'gen'`)) === accepted.length, 30_000, 200);
      const again = await fetch(`${gw.url}/track/page/4?id=after&uid=u1`);
      expect(again.status).toBe(200);
    } finally {
      await s.close();
    }
  }, 120_000);
});
