import { AWKWARD, BASE_TS, DAY } from '../../bench/lib/event-rows.js';
import { mulberry32 } from '../../bench/lib/random.js';
import type { Column, Row, TableDef } from '../../sinks/schema/types.js';

// The events generator moved to bench/lib so the sink benchmark can use it (bench/ must not import test/).
export { AWKWARD, eventRows } from '../../bench/lib/event-rows.js';
export { mulberry32 };

/**
 * Rows for the sink encoder tests and their measurements: events that look
 * like real traffic (long user agents and URLs, unicode titles, nested props)
 * plus the awkward values an encoder gets wrong first (quotes, backslashes,
 * control characters, emoji, lone surrogates, varint length boundaries,
 * missing columns, uint64 beyond 2^53). Seeded: the same seed gives the same rows.
 *
 * Also what ClickHouse should give back for each row through
 * `readBackSelect` … FORMAT JSONEachRow, worked out from the value rules
 * independently of the encoders.
 */

const pick = <T>(list: readonly T[], rand: () => number): T => list[Math.floor(rand() * list.length)] as T;

export function sessionRows(n: number, seed = 2): Row[] {
  const rand = mulberry32(seed);
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const start = BASE_TS + Math.floor(rand() * 10 * DAY);
    const duration = Math.floor(rand() * 3_600_000);
    rows.push({
      session_id: `s-${i}-${Math.floor(rand() * 1e9).toString(36)}`,
      project_id: 1 + (i % 2),
      start_date: start,
      uid: `u-${i}`,
      user_id: i % 2 === 0 ? `user-${i}` : undefined,
      started_at: start,
      ended_at: start + duration,
      duration_ms: duration,
      events: 1 + (i % 30),
      pages: i % 10,
      landing_page: `https://shop.example/l/${i}?utm_source=x`,
      exit_page: AWKWARD[i % 9] ?? '',
      source_type: 'search',
      utm_source: 'google',
      utm_medium: 'organic',
      utm_campaign: '',
      referrer: 'https://www.google.com/',
      device_type: 'desktop',
      browser: 'Firefox',
      os: 'Linux',
      geo_country: 'DE',
      geo_city: 'Köln',
      is_bot: 0,
      // Versions beyond 2^53 as bigint and as decimal text, one at the very top.
      version: i === 0 ? 18_446_744_073_709_551_615n : i % 3 === 0 ? `${9_007_199_254_740_993n + BigInt(i)}` : start * 1000 + i,
    });
  }
  return rows;
}

export function identityRows(n: number, seed = 3): Row[] {
  const rand = mulberry32(seed);
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const kind = pick(['identify', 'alias', 'partner'], rand);
    rows.push({
      project_id: 1,
      kind,
      uid: `u-${i}`,
      partner: kind === 'partner' ? 'adnet' : '',
      external_id: `ext-${i}-${Math.floor(rand() * 1e9)}`,
      traits: i % 4 === 0 ? undefined : { email: `a${i}@example.com`, name: 'Zoë "Z" O\'Neil', age: 30 + (i % 40), tags: ['vip', 'β'], address: { city: 'Zürich', zip: '8001' } },
      ts: BASE_TS + i,
      version: BigInt(BASE_TS + i) * 1000n,
    });
  }
  return rows;
}

export function deadLetterRows(n: number, seed = 4): Row[] {
  const rand = mulberry32(seed);
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const at = BASE_TS + Math.floor(rand() * DAY);
    rows.push({
      at,
      at_date: at,
      project_id: i,
      source: i % 2 === 0 ? 'gateway' : 'sink:events',
      code: 'FLOW_ERR_BAD_EVENT',
      reason: `row ${i}: ${AWKWARD[i % 9] ?? ''}`,
      payload: JSON.stringify({ n: i, raw: '{"broken": tr', text: AWKWARD[i % AWKWARD.length] }),
    });
  }
  return rows;
}

/**
 * A SELECT list that reads every column back in a form JSON can hold exactly
 * on both backends: 64-bit integers and ms timestamps as decimal text.
 */
export function readBackSelect(table: TableDef, modern: boolean): string {
  return table.columns.map((c) => {
    if (c.type === 'uint64') return `toString(${c.name}) AS ${c.name}`;
    if (c.type === 'ts_ms') return modern ? `toString(toUnixTimestamp64Milli(${c.name})) AS ${c.name}` : `toString(${c.name}) AS ${c.name}`;
    return c.name;
  }).join(', ');
}

/** What a stored `row` reads back as through readBackSelect … FORMAT JSONEachRow. */
export function expectedReadBack(table: TableDef, row: Row, modern: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const c of table.columns) out[c.name] = expectedValue(c, row[c.name], modern);
  return out;
}

const wellFormed = (s: string): string => (s as unknown as { toWellFormed(): string }).toWellFormed();

function expectedValue(c: Column, v: unknown, modern: boolean): unknown {
  switch (c.type) {
    case 'uuid': return typeof v === 'string' ? v.toLowerCase() : '00000000-0000-0000-0000-000000000000';
    case 'string': case 'lc_string': case 'text': return v === undefined || v === null ? '' : wellFormed(String(v));
    case 'uint8': case 'uint16': case 'uint32': return typeof v === 'boolean' ? Number(v) : Math.trunc(Number(v ?? 0));
    case 'uint64': return typeof v === 'number' ? String(Math.trunc(v)) : String(v ?? 0);
    case 'float64': return v ?? 0;
    case 'ts_ms': return String(Math.trunc(Number(v ?? 0)));
    case 'date': {
      const days = Math.floor(Number(v ?? 0) / DAY);
      // 18.16 prints day 0 as the "zero date".
      if (days === 0 && !modern) return '0000-00-00';
      return new Date(days * DAY).toISOString().slice(0, 10);
    }
    case 'props': {
      const props = (v ?? {}) as Record<string, unknown>;
      if (!modern) return wellFormed(JSON.stringify(props));
      const map: Record<string, string> = {};
      for (const [k, x] of Object.entries(props)) {
        if (x === undefined) continue;
        map[wellFormed(k)] = wellFormed(typeof x === 'string' ? x : JSON.stringify(x));
      }
      return map;
    }
  }
}

/** The key that identifies a test row of `table` (unique in the generated rows). */
export function rowKey(table: TableDef, row: Record<string, unknown>): string {
  switch (table.name) {
    case 'events': return String(row.event_id).toLowerCase();
    case 'sessions': return String(row.session_id);
    case 'identities': return String(row.external_id);
    case 'dead_letters': return String(row.project_id);
  }
}
