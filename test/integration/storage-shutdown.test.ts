import { describe, expect, inject, it } from 'vitest';
import { startGateway, uniqueDatabase } from '../support/gateway.js';
import { count, serverStore } from '../support/storage.js';

/** Shutdown flushes every buffer: events still batching when SIGTERM comes are stored before exit. */
describe('storage - shutdown', () => {
  it('flushes open batches on shutdown, even with a long flush interval', async () => {
    const database = uniqueDatabase('shutdown');
    const gw = await startGateway('uws', {
      clickhouse: { url: inject('clickhouseUrl'), database },
      storage: { durability: 'memory', flushMs: 600_000, batchRows: 1_000_000 },
    });
    for (let i = 0; i < 50; i++) {
      const res = await fetch(`${gw.url}/track/page/2?id=bye-${i}&uid=u${i % 5}`);
      expect(res.status).toBe(200);
    }
    const store = await serverStore(inject('clickhouseUrl'), database);
    try {
      // Nothing is written yet: the batch waits for its size or age.
      expect(await count(store, `SELECT count() AS n FROM ${database}.events`)).toBe(0);
      expect(await gw.stop('test shutdown')).toBe(true);
      expect(await count(store, `SELECT count() AS n FROM ${database}.events FINAL WHERE channel = 'gen'`)).toBe(50);
    } finally {
      await store.close();
    }
  });
});
