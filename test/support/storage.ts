import { createServerStore, type ClickHouseStore } from '../../sinks/index.js';

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
