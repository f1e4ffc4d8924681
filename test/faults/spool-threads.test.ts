import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { eventIdFromClientId } from '../../engine/index.js';
import { freePort, startEngineProcess, tempDir } from '../support/engine-process.js';
import { uniqueDatabase } from '../support/gateway.js';
import { startLoad } from '../support/load.js';
import { count, serverStore, waitFor } from '../support/storage.js';

/**
 * With `storage.durability: memory` there is no write-ahead log: what the
 * store did not take before a shutdown is in the spools, one per worker
 * thread. A run with 2 threads and ClickHouse unreachable spools every
 * acknowledged event and stops; the next run, with no threads (the
 * default) and ClickHouse back, takes over both threads' spools and
 * stores every one of them, exactly once.
 */

const spooled = (dataDir: string, thread: number): number => {
  const dir = join(dataDir, 'threads', String(thread), 'spool', 'clickhouse');
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.spool')).length : 0;
};

describe('faults - the spools of worker threads a later run does not have', () => {
  it('are delivered by the next run, each acknowledged event stored once', async () => {
    const url = inject('clickhouseUrl');
    const database = uniqueDatabase('spoolt');
    const dataDir = tempDir();
    const env = { CLICKHOUSE_DATABASE: database, FLOWSTAT_DATA_DIR: dataDir, FLOWSTAT_DURABILITY: 'memory', FLOWSTAT_LOG_LEVEL: 'info' };

    // Nothing listens on this port: the store is unreachable for the whole first run.
    const first = await startEngineProcess({ ...env, CLICKHOUSE_URL: `http://127.0.0.1:${await freePort()}`, FLOWSTAT_THREADS: '2' });
    await first.waitForLog((l) => l.msg === 'flowstat listening', 60_000);
    const load = startLoad(first.url, { prefix: 'spt', concurrency: 8, projectId: 9, max: 400 });
    await waitFor('400 events sent', async () => load.sent >= 400, 60_000, 50);
    await load.stop();
    expect(load.acked.size).toBeGreaterThan(300);
    first.child.kill('SIGTERM');
    expect(await first.exited, first.stderr()).toBe(0);
    // Both threads' users are in there (uids hash over both).
    expect(spooled(dataDir, 0)).toBeGreaterThan(0);
    expect(spooled(dataDir, 1)).toBeGreaterThan(0);

    const second = await startEngineProcess({ ...env, CLICKHOUSE_URL: url });
    const store = await serverStore(url, database);
    try {
      await second.waitForLog((l) => l.msg === 'flowstat listening', 60_000);
      const taken = second.logs.filter((l) => l.msg === 'took over the spooled batches of a thread this run does not have');
      expect(taken.map((l) => l.thread).sort()).toEqual([0, 1]);
      expect(spooled(dataDir, 0) + spooled(dataDir, 1)).toBe(0);
      const ids = [...load.acked].map((id) => eventIdFromClientId(9, id));
      const gen = `${database}.events FINAL WHERE project_id = 9 AND channel = 'gen'`;
      await waitFor('every acknowledged event', async () => (await count(store, `SELECT count() AS n FROM ${gen}`)) >= ids.length, 60_000, 300);
      const stored = new Set((await store.query<{ id: string }>(`SELECT toString(event_id) AS id FROM ${gen}`)).map((r) => r.id));
      expect(ids.filter((id) => !stored.has(id))).toEqual([]);
      expect(await count(store, `SELECT count() AS n FROM ${database}.events WHERE project_id = 9 AND channel = 'gen'`)).toBe(stored.size);
    } finally {
      await store.close();
      second.child.kill('SIGTERM');
      expect(await second.exited, second.stderr()).toBe(0);
    }
  }, 180_000);
});
