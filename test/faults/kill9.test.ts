import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import type * as Chdb from 'chdb';
import { eventIdFromClientId } from '../../engine/index.js';
import { startEngineProcess, tempDir } from '../support/engine-process.js';
import { startLoad } from '../support/load.js';
import { count, serverStore, waitFor } from '../support/storage.js';
import { uniqueDatabase } from '../support/gateway.js';

/**
 * kill -9 under load with the write-ahead log on: after a restart every event
 * the engine acknowledged is stored, exactly once. Run against a ClickHouse
 * server and against the embedded chDB store.
 */

async function killUnderLoad(env: Record<string, string>, prefix: string): Promise<Set<string>> {
  const first = await startEngineProcess({ ...env, FLOWSTAT_LOG_LEVEL: 'warn' });
  await waitFor('the engine to listen', async () => (await fetch(`${first.url}/healthz`)).ok, 30_000);
  const load = startLoad(first.url, { prefix, concurrency: 16, projectId: 6 });
  await waitFor('a few thousand acknowledged events', async () => load.acked.size >= 3_000, 60_000, 50);
  first.child.kill('SIGKILL');
  await first.exited;
  await load.stop();
  expect(load.acked.size).toBeGreaterThanOrEqual(3_000);

  // Restart on the same data directory: the log is replayed, then the engine stops cleanly.
  const second = await startEngineProcess({ ...env, PORT: String(first.port), FLOWSTAT_LOG_LEVEL: 'info' });
  await second.waitForLog((l) => l.msg === 'flowstat listening', 60_000);
  const replayed = second.logs.find((l) => l.msg === 'replayed the write-ahead log') as { records?: number; rowBinary?: number } | undefined;
  expect(replayed).toBeDefined();
  // The events went only to the store: the log kept them as the store's RowBinary bytes (sinks/wal/log-record.ts).
  expect(replayed!.rowBinary).toBeGreaterThan(0);
  return Object.assign(load.acked, { restarted: second }) as Set<string> & { restarted: typeof second };
}

describe('faults - kill -9 with the write-ahead log', () => {
  it('server store: every acknowledged event is stored exactly once after a restart', async () => {
    const url = inject('clickhouseUrl');
    const database = uniqueDatabase('kill9');
    const dataDir = tempDir();
    const acked = await killUnderLoad({ CLICKHOUSE_URL: url, CLICKHOUSE_DATABASE: database, FLOWSTAT_DATA_DIR: dataDir }, 'k9s') as Set<string> & { restarted: Awaited<ReturnType<typeof startEngineProcess>> };
    const store = await serverStore(url, database);
    try {
      const ids = [...acked].map((id) => eventIdFromClientId(6, id));
      await waitFor('every acknowledged event', async () => {
        const stored = new Set((await store.query<{ id: string }>(`SELECT toString(event_id) AS id FROM ${database}.events FINAL`)).map((r) => r.id));
        return ids.every((id) => stored.has(id));
      }, 60_000, 300);
      // No event is stored twice: the whole table has as many rows (after FINAL) as distinct ids.
      expect(await count(store, `SELECT count() AS n FROM ${database}.events FINAL`)).toBe(await count(store, `SELECT uniqExact(event_id) AS n FROM ${database}.events`));
    } finally {
      await store.close();
      acked.restarted.child.kill('SIGTERM');
      expect(await acked.restarted.exited).toBe(0);
    }
  }, 180_000);

  it('embedded chDB: every acknowledged event is stored exactly once after a restart', async () => {
    const dataDir = tempDir();
    const acked = await killUnderLoad({ FLOWSTAT_DATA_DIR: dataDir }, 'k9c') as Set<string> & { restarted: Awaited<ReturnType<typeof startEngineProcess>> };
    // Let the replayed events reach chDB, then stop cleanly so this process can open the data directory.
    await waitFor('the replay to be stored', async () => {
      const text = await (await fetch(`http://127.0.0.1:${acked.restarted.port}/metrics`)).text();
      const queued = Number(/flowstat_sink_queued_records (\d+)/.exec(text)?.[1] ?? -1);
      const inflight = Number(/flowstat_sink_inflight_records (\d+)/.exec(text)?.[1] ?? -1);
      const spooled = Number(/flowstat_sink_spooled_records (\d+)/.exec(text)?.[1] ?? -1);
      return queued === 0 && inflight === 0 && spooled === 0;
    }, 60_000, 300);
    acked.restarted.child.kill('SIGTERM');
    expect(await acked.restarted.exited).toBe(0);

    const require = createRequire(import.meta.url);
    const { Session } = require('chdb') as typeof Chdb;
    const session = new Session(join(dataDir, 'chdb'));
    try {
      const q = async (sql: string): Promise<number> => Number((await session.queryAsync(sql, { format: 'CSV' })).text().trim());
      const ids = [...acked].map((id) => eventIdFromClientId(6, id));
      const stored = new Set((await session.queryAsync('SELECT toString(event_id) FROM flowstat.events FINAL', { format: 'CSV' })).text().split('\n').map((l) => l.replace(/"/g, '')));
      expect(ids.filter((id) => !stored.has(id))).toEqual([]);
      expect(await q('SELECT count() FROM flowstat.events FINAL')).toBe(await q('SELECT uniqExact(event_id) FROM flowstat.events'));
    } finally {
      session.close();
    }
  }, 180_000);
});
