import { describe, expect, inject, it } from 'vitest';
import { eventIdFromClientId } from '../../engine/index.js';
import { startEngineProcess, tempDir } from '../support/engine-process.js';
import { startLoad } from '../support/load.js';
import { count, serverStore, waitFor } from '../support/storage.js';
import { uniqueDatabase } from '../support/gateway.js';

/**
 * kill -9 under load with the session actors on worker threads, then a
 * restart with fewer (3 → 1) or with none, the default (2 → 0): each thread
 * had its own write-ahead log, and the logs the new run has no thread for
 * are replayed by its main thread. Every acknowledged event is stored,
 * exactly once.
 */

describe.each([
  { before: 3, after: 1, replayed: [1, 2] },
  { before: 2, after: 0, replayed: [0, 1] },
])('faults - kill -9 with $before worker threads, restarted with $after', ({ before, after, replayed }) => {
  it('every acknowledged event is stored exactly once', async () => {
    const url = inject('clickhouseUrl');
    const database = uniqueDatabase('kill9t');
    const env = { CLICKHOUSE_URL: url, CLICKHOUSE_DATABASE: database, FLOWSTAT_DATA_DIR: tempDir(), FLOWSTAT_LOG_LEVEL: 'info' };
    const first = await startEngineProcess({ ...env, FLOWSTAT_THREADS: String(before) });
    await first.waitForLog((l) => l.msg === 'flowstat listening', 60_000);
    const load = startLoad(first.url, { prefix: 'k9t', concurrency: 16, projectId: 7 });
    await waitFor('a few thousand acknowledged events', async () => load.acked.size >= 3_000, 60_000, 50);
    first.child.kill('SIGKILL');
    await first.exited;
    await load.stop();

    const second = await startEngineProcess({ ...env, FLOWSTAT_THREADS: String(after), PORT: String(first.port) });
    const store = await serverStore(url, database);
    try {
      await second.waitForLog((l) => l.msg === 'flowstat listening', 60_000);
      // The threads this run lacks: their logs went through the main thread.
      const foreign = second.logs.filter((l) => l.msg === 'replayed the write-ahead log of a thread this run does not have');
      expect(foreign.map((l) => l.thread).sort()).toEqual(replayed);
      const ids = [...load.acked].map((id) => eventIdFromClientId(7, id));
      await waitFor('every acknowledged event', async () => {
        const stored = new Set((await store.query<{ id: string }>(`SELECT toString(event_id) AS id FROM ${database}.events FINAL WHERE channel = 'gen'`)).map((r) => r.id));
        return ids.every((id) => stored.has(id));
      }, 60_000, 300);
      expect(await count(store, `SELECT count() AS n FROM ${database}.events FINAL`)).toBe(await count(store, `SELECT uniqExact(event_id) AS n FROM ${database}.events`));
    } finally {
      await store.close();
      second.child.kill('SIGTERM');
      expect(await second.exited, second.stderr()).toBe(0);
    }
  }, 180_000);
});
