import { fieldSql } from '../columns.js';
import { QUERY_LIMITS } from '../params.js';
import {
  bucketSql, bucketsOf, INTERVALS, iso, readFilters, scopeSql, table,
  type EventFilter, type EventScope, type Interval,
} from '../scope.js';
import { SqlBuilder } from '../sql.js';
import { num, projectOf, rangeOf, type Report, type ResultRow } from '../types.js';
import type { TimeRange } from '../params.js';

/**
 * `events`: how many events (and distinct users sending them) per interval,
 * optionally only keys matching a pattern, only events passing property
 * filters, and broken down by a column or data property (its top values by
 * count). Every bucket of the range is present, empty ones with 0.
 */

interface Plan {
  readonly projectId: number;
  readonly range: TimeRange;
  readonly interval: Interval;
  readonly buckets: readonly number[];
  readonly pattern: string | undefined;
  readonly filters: readonly EventFilter[];
  readonly breakdown: string | undefined;
  readonly top: number;
}

export const eventsReport: Report<Plan> = {
  name: 'events',
  summary: 'event counts and distinct users per interval, with filters and a breakdown',
  params: 'from, to, interval (minute|hour|day|week|month), key (pattern), filter (field:op:value, repeatable), breakdown (column or data.<name>), limit (breakdown values), project',
  parse(r, env) {
    const projectId = projectOf(r, env);
    const range = r.range();
    const interval = r.choice('interval', INTERVALS, 'day');
    const plan: Plan = {
      projectId, range, interval,
      buckets: bucketsOf(range, interval),
      pattern: r.pattern('key'),
      filters: readFilters(r),
      breakdown: r.one('breakdown'),
      top: r.int('limit', 10, 1, QUERY_LIMITS.maxTop),
    };
    // Field names are checked now, so a bad one is a 400 before any query runs.
    const probe = new SqlBuilder(true);
    if (plan.breakdown !== undefined) fieldSql(probe, plan.breakdown, 'breakdown');
    for (const f of plan.filters) fieldSql(probe, f.field, f.param);
    return plan;
  },
  async run(p, x) {
    const q = new SqlBuilder(x.dialect.modern);
    const scope: EventScope = { projectId: p.projectId, range: p.range, ...(p.pattern ? { pattern: p.pattern } : {}), filters: p.filters };
    const where = scopeSql(q, x.dialect, scope);
    const events = table(x.store.database, 'events');
    let sql: string;
    if (p.breakdown === undefined) {
      sql = `SELECT ${bucketSql(x.dialect, p.interval)} AS t, count() AS events, uniqExact(uid) AS users FROM ${events} WHERE ${where} GROUP BY t ORDER BY t`;
    } else {
      const b = fieldSql(q, p.breakdown, 'breakdown');
      const where2 = scopeSql(q, x.dialect, scope);
      const b2 = fieldSql(q, p.breakdown, 'breakdown');
      sql = `SELECT ${bucketSql(x.dialect, p.interval)} AS t, ${b} AS b, count() AS events, uniqExact(uid) AS users FROM ${events}
        WHERE ${where} AND b IN (SELECT ${b2} AS v FROM ${events} WHERE ${where2} GROUP BY v ORDER BY count() DESC, v LIMIT ${q.u32(p.top)})
        GROUP BY t, b ORDER BY t, b`;
    }
    const got = await x.query<{ t: string | number; b?: string; events: string | number; users: string | number }>(q.build(sql));
    const values = p.breakdown === undefined ? [null] : [...new Set(got.map((g) => g.b ?? ''))].sort();
    const cells = new Map(got.map((g) => [`${num(g.t)}\u0000${g.b ?? ''}`, g]));
    const rows: ResultRow[] = [];
    for (const t of p.buckets) {
      for (const v of values) {
        const g = cells.get(`${t}\u0000${v ?? ''}`);
        const row: Record<string, string | number | null> = { t: iso(t) };
        if (p.breakdown !== undefined) row[p.breakdown] = v;
        row.events = g === undefined ? 0 : num(g.events);
        row.users = g === undefined ? 0 : num(g.users);
        rows.push(row);
      }
    }
    const columns = p.breakdown === undefined ? ['t', 'events', 'users'] : ['t', p.breakdown, 'events', 'users'];
    return {
      report: 'events', range: rangeOf(p.range),
      tables: [{ title: `events per ${p.interval}`, columns, rows }],
      meta: { interval: p.interval, events: rows.reduce((n, r) => n + (r.events as number), 0), ...(p.breakdown ? { breakdownValues: values.length } : {}) },
    };
  },
};
