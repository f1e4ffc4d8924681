import { createError } from '../engine/errors/index.js';
import type { SqlBuilder } from './sql.js';

/**
 * Which columns a request may name (breakdowns, filters, segment output), and
 * the SQL expressions for stored values that differ between schema
 * renderings (sinks/schema/render.ts): timestamps are DateTime64 on modern
 * stores and UInt64 ms on 18.16; props are Map(String, String) on modern
 * stores and one JSON object string on 18.16.
 *
 * A column name from a request is looked up here and the SQL uses the
 * allowlisted spelling; a property name (`data.<name>`) must match
 * PROP_NAME and is then bound as a value (modern) or escaped (18.16).
 */

/** Event columns a report may break down by or filter on. */
export const EVENT_COLUMNS: ReadonlySet<string> = new Set([
  'key', 'channel', 'service', 'name', 'uid', 'user_id', 'session_id',
  'ua_browser', 'ua_browser_major', 'ua_os', 'ua_device_type',
  'geo_country', 'geo_region', 'geo_city',
  'page_host', 'page_path', 'page_url', 'page_title', 'page_referrer', 'referrer_host',
  'utm_source', 'utm_medium', 'utm_campaign', 'utm_term', 'utm_content',
  'source_type', 'source_name', 'search_keyword', 'click_id_type', 'is_bot',
]);

/** Session columns the sessions report may break down by. */
export const SESSION_COLUMNS: ReadonlySet<string> = new Set([
  'source_type', 'utm_source', 'utm_medium', 'utm_campaign', 'device_type', 'browser', 'os', 'geo_country', 'geo_city', 'landing_page', 'exit_page',
]);

/** `data.<name>`: a top-level property of the event's data. */
export const PROP_NAME = /^[A-Za-z0-9_$-]{1,64}$/;

export const PROP_PREFIX = 'data.';

/** Whether `field` is an allowed event column or `data.<name>`. */
export function isEventField(field: string): boolean {
  return EVENT_COLUMNS.has(field) || (field.startsWith(PROP_PREFIX) && PROP_NAME.test(field.slice(PROP_PREFIX.length)));
}

/** The expressions that depend on the store's rendering of the schema. */
export interface Dialect {
  readonly modern: boolean;
  /** Event time in ms since the epoch (Int64 / UInt64). */
  readonly tsMs: string;
  /** A session column holding ms (started_at / ended_at). */
  ms(column: 'started_at' | 'ended_at'): string;
}

export function dialectOf(modern: boolean): Dialect {
  return {
    modern,
    tsMs: modern ? 'toUnixTimestamp64Milli(ts)' : 'ts',
    ms: (column) => (modern ? `toUnixTimestamp64Milli(${column})` : column),
  };
}

/**
 * The SQL for an event field, as a String: an allowlisted column as itself
 * (numbers via toString), `data.<name>` as the property's text — a string
 * value as is, anything else its JSON text, on both renderings.
 * Throws FLOW_ERR_FIELD_INVALID naming `param` for anything else.
 */
export function fieldSql(q: SqlBuilder, field: string, param: string): string {
  if (EVENT_COLUMNS.has(field)) return field === 'is_bot' ? 'toString(is_bot)' : field;
  if (field.startsWith(PROP_PREFIX)) {
    const name = field.slice(PROP_PREFIX.length);
    if (PROP_NAME.test(name)) {
      if (q.modern) return `props[${q.str(name)}]`;
      // 18.16: props is one JSON object string; visitParamExtract reads a top-level field by name.
      const n = q.str(name);
      return `if(substring(visitParamExtractRaw(props, ${n}), 1, 1) = '"', visitParamExtractString(props, ${n}), visitParamExtractRaw(props, ${n}))`;
    }
  }
  throw createError('FLOW_ERR_FIELD_INVALID', { field: param, reason: `"${clip(field)}" is not a column (${[...EVENT_COLUMNS].join(', ')}) or data.<name> with <name> of [A-Za-z0-9_$-]{1,64}` });
}

export function clip(s: string, n = 60): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}
