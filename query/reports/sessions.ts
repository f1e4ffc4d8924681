import { QUERY_LIMITS, type TimeRange } from '../params.js';
import { table } from '../scope.js';
import { SqlBuilder } from '../sql.js';
import { num, projectOf, rangeOf, type Report, type ResultRow } from '../types.js';

/**
 * `sessions`: sessions that started in [from, to) (the `sessions` table, each
 * session's latest version): count, users, median and mean duration, bounce
 * rate (sessions with at most one page view), pages per session; then the
 * top landing and exit pages, sources, campaigns, devices and countries,
 * each with its sessions, bounce rate and mean duration.
 *
 * The median is the element at index floor(n / 2) of the sorted durations
 * (the upper median for an even count), on every store.
 */

const DIMENSIONS = [
  ['landing_page', 'top landing pages'],
  ['exit_page', 'top exit pages'],
  ['source_type', 'sources'],
  ['utm_source', 'top utm sources'],
  ['utm_campaign', 'top campaigns'],
  ['device_type', 'devices'],
  ['geo_country', 'countries'],
] as const;

interface Plan {
  readonly projectId: number;
  readonly range: TimeRange;
  readonly top: number;
}

export const sessionsReport: Report<Plan> = {
  name: 'sessions',
  summary: 'session count, duration, bounce rate, pages; top landing/exit pages, sources, campaigns, devices, countries',
  params: 'from, to, limit (top entries), project',
  parse(r, env) {
    return { projectId: projectOf(r, env), range: r.range(), top: r.int('limit', 10, 1, QUERY_LIMITS.maxTop) };
  },
  async run(p, x) {
    const sessions = table(x.store.database, 'sessions');
    const where = (q: SqlBuilder): string => {
      const started = x.dialect.ms('started_at');
      return `project_id = ${q.u32(p.projectId)} AND start_date >= toDate(${q.str(new Date(p.range.from).toISOString().slice(0, 10))})
        AND start_date <= toDate(${q.str(new Date(p.range.to - 1).toISOString().slice(0, 10))}) AND ${started} >= ${q.i64(p.range.from)} AND ${started} < ${q.i64(p.range.to)}`;
    };
    const q = new SqlBuilder(x.dialect.modern);
    const summarySql = `SELECT count() AS sessions, uniqExact(uid) AS users,
        if(count() = 0, 0, arrayElement(arraySort(groupArray(duration_ms)), intDiv(count(), 2) + 1)) AS median_duration_ms,
        if(count() = 0, 0, avg(duration_ms)) AS mean_duration_ms,
        if(count() = 0, 0, countIf(pages <= 1) / count()) AS bounce_rate,
        if(count() = 0, 0, avg(pages)) AS pages_per_session
      FROM ${sessions} WHERE ${where(q)}`;
    const [s] = await x.query<Record<string, string | number>>(q.build(summarySql));
    const summary: ResultRow = {
      sessions: num(s?.sessions ?? 0), users: num(s?.users ?? 0),
      median_duration_ms: num(s?.median_duration_ms ?? 0), mean_duration_ms: round(num(s?.mean_duration_ms ?? 0)),
      bounce_rate: round(num(s?.bounce_rate ?? 0), 4), pages_per_session: round(num(s?.pages_per_session ?? 0), 3),
    };
    const tables = [{ title: 'sessions', columns: Object.keys(summary), rows: [summary] }];
    for (const [column, title] of DIMENSIONS) {
      const qd = new SqlBuilder(x.dialect.modern);
      // The column comes from DIMENSIONS, never from the request.
      const sql = `SELECT ${column} AS value, count() AS sessions, countIf(pages <= 1) / count() AS bounce_rate, avg(duration_ms) AS mean_duration_ms
        FROM ${sessions} WHERE ${where(qd)} GROUP BY value ORDER BY sessions DESC, value LIMIT ${qd.u32(p.top)}`;
      const got = await x.query<{ value: string; sessions: string; bounce_rate: number; mean_duration_ms: number }>(qd.build(sql));
      tables.push({
        title, columns: [column, 'sessions', 'bounce_rate', 'mean_duration_ms'],
        rows: got.map((g) => ({ [column]: g.value, sessions: num(g.sessions), bounce_rate: round(num(g.bounce_rate), 4), mean_duration_ms: round(num(g.mean_duration_ms)) })),
      });
    }
    return { report: 'sessions', range: rangeOf(p.range), tables, meta: { sessions: summary.sessions ?? 0 } };
  },
};

function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
