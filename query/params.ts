import { createError, type FlowError } from '../engine/errors/index.js';
import { patternProblem } from '../engine/keys/index.js';
import { clip } from './columns.js';

/**
 * Reading a request's parameters — the API's query string and the CLI's
 * `--name value` options give the same multimap — into typed, bounded
 * values. Every failure is FLOW_ERR_FIELD_INVALID naming the parameter; an
 * unknown parameter is refused too, so a typo is never silently ignored.
 */

export type RawParams = Readonly<Record<string, readonly string[]>>;

export const QUERY_LIMITS = Object.freeze({
  /** Longest time range a report may cover. */
  maxRangeMs: 366 * 86_400_000,
  /** Most buckets in one series (minute buckets over a day are 1440). */
  maxBuckets: 2_000,
  /** Most breakdown values / top-list entries. */
  maxTop: 100,
  maxFilters: 20,
  maxSteps: 16,
  maxRetentionPeriods: 60,
  maxTimelineRows: 1_000,
  maxSegmentRows: 100_000,
  /** Longest parameter value accepted (a URL, a pattern). */
  maxValueLength: 1_024,
  /** ClickHouse's max_execution_time for every report query, seconds. */
  timeoutSec: 30,
  /** Events a funnel may read into the evaluator before it is refused as too large. */
  maxFunnelEvents: 20_000_000,
  /** Distinct keys hitting a funnel's patterns (each event is sent as ms * keys + key index, exact below 2^53). */
  maxFunnelKeys: 100_000,
});

/** The earliest time a report may ask about (events before 2000 are refused at ingest). */
const MIN_TIME = Date.UTC(2000, 0, 1);
const DAY = 86_400_000;

export function invalid(field: string, reason: string): FlowError {
  return createError('FLOW_ERR_FIELD_INVALID', { field, reason });
}

export class ParamReader {
  private readonly used = new Set<string>();

  constructor(private readonly raw: RawParams, private readonly now: number) {}

  /** The single value of `name`, or undefined. */
  one(name: string): string | undefined {
    this.used.add(name);
    const v = this.raw[name];
    if (v === undefined || v.length === 0) return undefined;
    if (v.length > 1) throw invalid(name, 'given more than once');
    return checkLength(name, v[0]!);
  }

  /** Every value of a repeatable `name` (at most `max`). */
  many(name: string, max: number): readonly string[] {
    this.used.add(name);
    const v = this.raw[name] ?? [];
    if (v.length > max) throw invalid(name, `at most ${max} values`);
    return v.map((x) => checkLength(name, x));
  }

  /** A non-negative integer in [min, max], or `fallback` when absent. */
  int(name: string, fallback: number, min: number, max: number): number {
    const v = this.one(name);
    if (v === undefined) return fallback;
    if (!/^\d{1,10}$/.test(v) || Number(v) < min || Number(v) > max) throw invalid(name, `must be an integer from ${min} to ${max}`);
    return Number(v);
  }

  /** One of `choices`, or `fallback`. */
  choice<T extends string>(name: string, choices: readonly T[], fallback: T): T {
    const v = this.one(name);
    if (v === undefined) return fallback;
    if (!(choices as readonly string[]).includes(v)) throw invalid(name, `must be one of ${choices.join(', ')}`);
    return v as T;
  }

  /** A routing-key pattern (`in.gen.track.*`, `in.**`). */
  pattern(name: string): string | undefined {
    const v = this.one(name);
    return v === undefined ? undefined : checkPattern(name, v);
  }

  /** The time range [from, to): ISO 8601 dates/times or ms; default the `defaultDays` days up to now. */
  range(defaultDays = 7): TimeRange {
    const to = this.time('to') ?? this.now;
    const from = this.time('from') ?? to - defaultDays * DAY;
    if (to <= from) throw invalid('to', 'must be after from');
    if (to - from > QUERY_LIMITS.maxRangeMs) throw invalid('from', `the range may cover at most ${QUERY_LIMITS.maxRangeMs / DAY} days`);
    return { from, to };
  }

  /** A duration: ms, or a number with s / m / h / d. */
  duration(name: string, fallback: number, max: number): number {
    const v = this.one(name);
    if (v === undefined) return fallback;
    const m = /^(\d{1,12})(ms|s|m|h|d)?$/.exec(v);
    const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: DAY }[m?.[2] ?? 'ms'] ?? 1;
    const ms = m === null ? NaN : Number(m[1]) * unit;
    if (!Number.isSafeInteger(ms) || ms <= 0 || ms > max) throw invalid(name, `must be a duration up to ${max / DAY} days, e.g. 3600000, 90s, 30m, 1h, 7d`);
    return ms;
  }

  /** Refuses parameters no report reader asked for. */
  done(): void {
    for (const name of Object.keys(this.raw)) {
      if (!this.used.has(name)) throw invalid(clip(name, 40), 'unknown parameter');
    }
  }

  private time(name: string): number | undefined {
    const v = this.one(name);
    if (v === undefined) return undefined;
    const t = parseTime(v);
    if (t === null) throw invalid(name, 'must be an ISO 8601 date or time (2026-01-31, 2026-01-31T12:00:00Z) or ms since the epoch');
    if (t < MIN_TIME || t > this.now + 366 * DAY) throw invalid(name, 'must be between 2000-01-01 and a year from now');
    return t;
  }
}

export interface TimeRange {
  /** Inclusive, ms. */
  readonly from: number;
  /** Exclusive, ms. */
  readonly to: number;
}

const ISO = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/;

export function parseTime(v: string): number | null {
  if (/^\d{1,15}$/.test(v)) return Number(v);
  if (!ISO.test(v)) return null;
  const t = Date.parse(v.length === 10 ? `${v}T00:00:00Z` : v);
  return Number.isFinite(t) ? t : null;
}

export function checkPattern(field: string, v: string): string {
  const problem = patternProblem(v);
  if (problem !== null) throw invalid(field, `"${clip(v)}" is not a key pattern: ${problem}`);
  return v;
}

function checkLength(name: string, v: string): string {
  if (v.length > QUERY_LIMITS.maxValueLength) throw invalid(name, `longer than ${QUERY_LIMITS.maxValueLength} characters`);
  return v;
}
