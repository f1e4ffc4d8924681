import { inject } from 'vitest';
import { createServerStore, type ClickHouseStore } from '../../sinks/index.js';
import type { TestGateway } from './gateway.js';

/** Polls `check` until it returns true (or a value), failing with the last state after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | false | null | undefined>, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const r = await check();
      if (r !== false && r !== null && r !== undefined) return r;
      last = r;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A direct connection to a test server database, for reading back what the engine stored. */
export function serverStore(url: string, database: string): Promise<ClickHouseStore> {
  return createServerStore({ url, user: 'default', password: '', database });
}

/** Where a suite's engine stores: the shared test ClickHouse server (18.16, legacy layout) or chDB in the test's process (modern layout). */
export type Backend = 'server' | 'chdb';

/** The engine's `clickhouse` config for `backend` (no url selects chDB; it allows one data directory per process). */
export function clickhouseFor(backend: Backend, database: string): { url?: string; database: string } {
  return backend === 'server' ? { url: inject('clickhouseUrl'), database } : { database };
}

/**
 * A store to read back what the engine stored: a connection of its own to
 * the server (the caller closes it), or the engine's own chDB session
 * (closed with the engine; chDB has one per process).
 */
export async function readBack(backend: Backend, gw: TestGateway, database: string): Promise<ClickHouseStore> {
  return backend === 'server' ? serverStore(inject('clickhouseUrl'), database) : gw.storage.store.get();
}

export async function count(store: ClickHouseStore, sql: string): Promise<number> {
  const rows = await store.query<{ n: string | number }>(sql);
  return Number(rows[0]?.n ?? 0);
}

/**
 * A stored row's props read back (as JSON text: toJSONString of a modern Map
 * column, or the legacy column itself) as one shape for both column types:
 * top-level scalars as strings (a Map(String, String) holds them so), nested
 * values parsed from their JSON text.
 */
export function propsOf(row: { props: string }): Record<string, unknown> {
  const raw = JSON.parse(row.props) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v === 'string' && /^[[{]/.test(v)) {
      try { out[k] = JSON.parse(v); continue; } catch { /* a plain string */ }
    }
    out[k] = v !== null && typeof v === 'object' ? v : String(v);
  }
  return out;
}
