import { join } from 'node:path';
import type { Config, Logger } from '../../engine/index.js';
import { migrate } from '../schema/migrate.js';
import { createChdbStore } from './chdb.js';
import { createServerStore } from './server.js';
import type { ClickHouseStore } from './store.js';

/**
 * The store, connected on first use. The engine starts — and accepts events,
 * which are kept in the write-ahead log and the spool — even while ClickHouse
 * is unreachable; the first successful connect detects the server's
 * capabilities and runs the schema migrations.
 */

export interface StoreHandle {
  readonly kind: 'chdb' | 'server';
  /** The connected, migrated store; throws (retryably) while it cannot connect. */
  get(): Promise<ClickHouseStore>;
  /** The store if connected, without trying. */
  peek(): ClickHouseStore | null;
  /** Whether the store answers now (tries to connect when it is not). */
  reachable(): Promise<boolean>;
  close(): Promise<void>;
}

export function createStoreHandle(config: Config, logger: Logger): StoreHandle {
  const kind = config.clickhouse.url === undefined ? 'chdb' : 'server';
  let lastFailureLog = -Infinity;

  async function connect(): Promise<ClickHouseStore> {
    const s = kind === 'chdb'
      ? await createChdbStore({ path: join(config.dataDir, 'chdb'), database: config.clickhouse.database })
      : await createServerStore({
          url: config.clickhouse.url!,
          user: config.clickhouse.user,
          password: config.clickhouse.password,
          database: config.clickhouse.database,
        });
    try {
      const report = await migrate(s, logger);
      logger.info({ store: kind, version: s.capabilities.version, modern: s.capabilities.modern, schema: report.version, applied: report.applied }, 'store connected');
    } catch (err) {
      await s.close();
      throw err;
    }
    return s;
  }

  return lazyStoreHandle(kind, connect, (err) => {
    const now = Date.now();
    if (now - lastFailureLog > 30_000) {
      lastFailureLog = now;
      logger.warn({ store: kind, err }, 'cannot connect to the store yet; events are kept on disk until it answers');
    }
  });
}

/**
 * A handle over `connect`: one attempt at a time, the store kept once it
 * succeeds, tried again on the next use after a failure (`onFailure` sees
 * each). `close` closes the store it holds.
 */
export function lazyStoreHandle(kind: 'chdb' | 'server', connect: () => Promise<ClickHouseStore>, onFailure?: (err: unknown) => void): StoreHandle {
  let store: ClickHouseStore | null = null;
  let connecting: Promise<ClickHouseStore> | null = null;

  function get(): Promise<ClickHouseStore> {
    if (store !== null) return Promise.resolve(store);
    connecting ??= connect().then(
      (s) => { store = s; connecting = null; return s; },
      (err: unknown) => {
        connecting = null;
        onFailure?.(err);
        throw err;
      },
    );
    return connecting;
  }

  return {
    kind,
    get,
    peek: () => store,
    async reachable() {
      try {
        const s = await get();
        return await s.ping();
      } catch {
        return false;
      }
    },
    async close() {
      if (store !== null) await store.close();
      store = null;
    },
  };
}
