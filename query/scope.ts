import { ident } from '../sinks/clickhouse/store.js';
import { clip, fieldSql, type Dialect } from './columns.js';
import { invalid, QUERY_LIMITS, type ParamReader, type TimeRange } from './params.js';
import type { SqlBuilder } from './sql.js';

/**
 * The parts every events query shares: which rows (project, time range, key
 * pattern, property filters) and how time is bucketed. All values go through
 * the SqlBuilder; patterns become anchored regular expressions built from the
 * validated pattern grammar ([a-z0-9_-] segments, `*`, trailing `**`).
 */

export const DAY_MS = 86_400_000;

export const INTERVALS = ['minute', 'hour', 'day', 'week', 'month'] as const;
export type Interval = (typeof INTERVALS)[number];

export const FILTER_OPS = ['eq', 'ne', 'contains', 'in', 'gt', 'gte', 'lt', 'lte'] as const;
export type FilterOp = (typeof FILTER_OPS)[number];

export interface EventFilter {
  readonly field: string;
  readonly op: FilterOp;
  readonly value: string;
  /** Which parameter it came from, for error messages. */
  readonly param: string;
}

/** `field:op:value` (the value may contain colons; `in` takes values separated by `|`). */
export function parseFilter(raw: string, param: string): EventFilter {
  const a = raw.indexOf(':');
  const b = a < 0 ? -1 : raw.indexOf(':', a + 1);
  if (a <= 0 || b < 0) throw invalid(param, `"${clip(raw)}" is not field:op:value`);
  const op = raw.slice(a + 1, b);
  if (!(FILTER_OPS as readonly string[]).includes(op)) throw invalid(param, `operator "${clip(op, 20)}" is not one of ${FILTER_OPS.join(', ')}`);
  const value = raw.slice(b + 1);
  if (op.startsWith('g') || op.startsWith('l')) {
    if (!Number.isFinite(Number(value)) || value.trim() === '') throw invalid(param, `${op} needs a number, got "${clip(value)}"`);
  }
  if (op === 'in' && value.split('|').length > QUERY_LIMITS.maxTop) throw invalid(param, `in takes at most ${QUERY_LIMITS.maxTop} values`);
  return { field: raw.slice(0, a), op: op as FilterOp, value, param };
}

export function readFilters(r: ParamReader, name = 'filter'): readonly EventFilter[] {
  return r.many(name, QUERY_LIMITS.maxFilters).map((f) => parseFilter(f, name));
}

/** A property filter as SQL (the field's text compared; numbers through toFloat64OrNull). */
export function filterSql(q: SqlBuilder, f: EventFilter): string {
  const x = fieldSql(q, f.field, f.param);
  switch (f.op) {
    case 'eq': return `${x} = ${q.str(f.value)}`;
    case 'ne': return `${x} != ${q.str(f.value)}`;
    case 'contains': return `position(${x}, ${q.str(f.value)}) > 0`;
    case 'in': return `has(${q.strs(f.value.split('|'))}, ${x})`;
    case 'gt': return `toFloat64OrNull(${x}) > ${q.f64(Number(f.value))}`;
    case 'gte': return `toFloat64OrNull(${x}) >= ${q.f64(Number(f.value))}`;
    case 'lt': return `toFloat64OrNull(${x}) < ${q.f64(Number(f.value))}`;
    case 'lte': return `toFloat64OrNull(${x}) <= ${q.f64(Number(f.value))}`;
  }
}

/** An anchored RE2 expression for a validated key pattern (`*` one segment, trailing `**` one or more). */
export function patternRegex(pattern: string): string {
  const parts = pattern.split('.');
  const out = parts.map((seg, i) => {
    if (seg === '**' && i === parts.length - 1) return '[a-z0-9_-]+(\\.[a-z0-9_-]+)*';
    if (seg === '*') return '[a-z0-9_-]+';
    return seg;
  });
  return `^${out.join('\\.')}$`;
}

/** `key` matching a pattern: equality when it has no wildcard. */
export function keySql(q: SqlBuilder, pattern: string): string {
  return pattern.includes('*') ? `match(key, ${q.str(patternRegex(pattern))})` : `key = ${q.str(pattern)}`;
}

export function dayString(ms: number): string {
  return new Date(Math.floor(ms / DAY_MS) * DAY_MS).toISOString().slice(0, 10);
}

export interface EventScope {
  readonly projectId: number;
  readonly range?: TimeRange;
  readonly pattern?: string;
  readonly filters?: readonly EventFilter[];
  /** Leave out derived (`sys` channel) events: what users did, not what the engine derived. */
  readonly clientOnly?: boolean;
}

/** The WHERE conditions for a scope (joined with AND). */
export function scopeSql(q: SqlBuilder, d: Dialect, s: EventScope): string {
  const c = [`project_id = ${q.u32(s.projectId)}`];
  if (s.range !== undefined) c.push(rangeSql(q, d, s.range));
  if (s.clientOnly === true) c.push(`channel != 'sys'`);
  if (s.pattern !== undefined) c.push(keySql(q, s.pattern));
  for (const f of s.filters ?? []) c.push(filterSql(q, f));
  return c.join(' AND ');
}

/** Events with client time in [from, to). */
export function rangeSql(q: SqlBuilder, d: Dialect, range: TimeRange): string {
  // event_date is the UTC day of ts and leads the sort key: it prunes parts and granules.
  const days = [`event_date >= toDate(${q.str(dayString(range.from))})`, `event_date <= toDate(${q.str(dayString(range.to - 1))})`];
  // A bound at midnight UTC is the day bound itself: ts need not be read for it (retention over 10M events: ~20% less work).
  if (range.from % DAY_MS !== 0) days.push(`${d.tsMs} >= ${q.i64(range.from)}`);
  if (range.to % DAY_MS !== 0) days.push(`${d.tsMs} < ${q.i64(range.to)}`);
  return days.join(' AND ');
}

/**
 * A table to read, with FINAL (each event and session row in its latest
 * version) unless `final` is false — for reads whose answer copies of one
 * row cannot change (each caller says why).
 */
export function table(database: string, name: 'events' | 'sessions', final = true): string {
  return `${ident(database)}.${ident(name)}${final ? ' FINAL' : ''}`;
}

/** The bucket start (ms) of an event's time, as SQL. */
export function bucketSql(d: Dialect, interval: Interval): string {
  switch (interval) {
    case 'minute': return `intDiv(${d.tsMs}, 60000) * 60000`;
    case 'hour': return `intDiv(${d.tsMs}, 3600000) * 3600000`;
    case 'day': return `intDiv(${d.tsMs}, 86400000) * 86400000`;
    // 1970-01-01 was a Thursday: weeks start on Monday, three days earlier.
    case 'week': return `(intDiv(intDiv(${d.tsMs}, 86400000) + 3, 7) * 7 - 3) * 86400000`;
    case 'month': return `toInt64(toRelativeDayNum(toStartOfMonth(event_date)) - toRelativeDayNum(toDate('1970-01-01'))) * 86400000`;
  }
}

/** The bucket start of `ms` (same rule as bucketSql). */
export function bucketStart(ms: number, interval: Interval): number {
  switch (interval) {
    case 'minute': return Math.floor(ms / 60_000) * 60_000;
    case 'hour': return Math.floor(ms / 3_600_000) * 3_600_000;
    case 'day': return Math.floor(ms / DAY_MS) * DAY_MS;
    case 'week': return (Math.floor((Math.floor(ms / DAY_MS) + 3) / 7) * 7 - 3) * DAY_MS;
    case 'month': { const t = new Date(ms); return Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), 1); }
  }
}

export function nextBucket(start: number, interval: Interval): number {
  if (interval === 'month') { const t = new Date(start); return Date.UTC(t.getUTCFullYear(), t.getUTCMonth() + 1, 1); }
  return start + { minute: 60_000, hour: 3_600_000, day: DAY_MS, week: 7 * DAY_MS }[interval];
}

/** Every bucket start overlapping the range; FLOW_ERR_FIELD_INVALID on `interval` past the limit. */
export function bucketsOf(range: TimeRange, interval: Interval): number[] {
  const out: number[] = [];
  for (let t = bucketStart(range.from, interval); t < range.to; t = nextBucket(t, interval)) {
    if (out.length >= QUERY_LIMITS.maxBuckets) throw invalid('interval', `the range has more than ${QUERY_LIMITS.maxBuckets} ${interval} buckets; use a longer interval or a shorter range`);
    out.push(t);
  }
  return out;
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
