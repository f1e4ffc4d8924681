import type { TimeRange } from '../params.js';
import {
  bucketSql, bucketsOf, DAY_MS, dayString, INTERVALS, iso, scopeSql, table, type Interval,
} from '../scope.js';
import { SqlBuilder } from '../sql.js';
import { num, projectOf, rangeOf, type Report, type ResultRow } from '../types.js';

/**
 * `users`: who was active, counting what users sent (not derived `sys` events).
 *
 * - `metric=unique` (default): distinct users per interval, and over the whole range.
 * - `metric=active`: per UTC day of the range, DAU, WAU and MAU — distinct
 *   users that day, in the 7 and in the 30 days ending that day.
 * - `metric=new`: per interval, users first seen then (their first event
 *   ever in the project) and returning users (active then, first seen before).
 */

const METRICS = ['unique', 'active', 'new'] as const;

interface Plan {
  readonly projectId: number;
  readonly range: TimeRange;
  readonly metric: (typeof METRICS)[number];
  readonly interval: Interval;
  readonly buckets: readonly number[];
}

export const usersReport: Report<Plan> = {
  name: 'users',
  summary: 'unique users per interval; DAU/WAU/MAU (metric=active); new vs returning (metric=new)',
  params: 'from, to, metric (unique|active|new), interval, project',
  parse(r, env) {
    const projectId = projectOf(r, env);
    const range = r.range();
    const metric = r.choice('metric', METRICS, 'unique');
    const interval = metric === 'active' ? 'day' : r.choice('interval', INTERVALS, 'day');
    return { projectId, range, metric, interval, buckets: bucketsOf(range, interval) };
  },
  async run(p, x) {
    const events = table(x.store.database, 'events');
    const q = new SqlBuilder(x.dialect.modern);
    const scope = { projectId: p.projectId, range: p.range, clientOnly: true };
    const out = (rows: ResultRow[], columns: string[], meta: Record<string, number | string>) => ({
      report: 'users', range: rangeOf(p.range), tables: [{ title: `users (${p.metric})`, columns, rows }], meta: { metric: p.metric, ...meta },
    });

    if (p.metric === 'unique') {
      const where = scopeSql(q, x.dialect, scope);
      const got = await x.query<{ t: string; users: string }>(q.build(`SELECT ${bucketSql(x.dialect, p.interval)} AS t, uniqExact(uid) AS users FROM ${events} WHERE ${where} GROUP BY t`));
      const q2 = new SqlBuilder(x.dialect.modern);
      const total = await x.query<{ users: string }>(q2.build(`SELECT uniqExact(uid) AS users FROM ${events} WHERE ${scopeSql(q2, x.dialect, scope)}`));
      const by = new Map(got.map((g) => [num(g.t), num(g.users)]));
      return out(p.buckets.map((t) => ({ t: iso(t), users: by.get(t) ?? 0 })), ['t', 'users'], { interval: p.interval, total: num(total[0]?.users ?? 0) });
    }

    if (p.metric === 'active') {
      // Each (user, day) counts towards that day and the 29 after it; a day's
      // DAU / WAU / MAU are the distinct users with an offset under 1 / 7 / 30.
      const first = p.buckets[0]!;
      const last = p.buckets[p.buckets.length - 1]!;
      const days = { from: first - 29 * DAY_MS, to: last + DAY_MS };
      const where = scopeSql(q, x.dialect, { projectId: p.projectId, range: days, clientOnly: true });
      const sql = `SELECT toString(d) AS day, uniqExactIf(uid, i < 1) AS dau, uniqExactIf(uid, i < 7) AS wau, uniqExact(uid) AS mau
        FROM (SELECT uid, day + i AS d, i FROM (SELECT DISTINCT uid, event_date AS day FROM ${events} WHERE ${where}) ARRAY JOIN range(30) AS i)
        WHERE d >= toDate(${q.str(dayString(first))}) AND d <= toDate(${q.str(dayString(last))})
        GROUP BY d`;
      const got = await x.query<{ day: string; dau: string; wau: string; mau: string }>(q.build(sql));
      const by = new Map(got.map((g) => [g.day, g]));
      const rows = p.buckets.map((t) => {
        const g = by.get(dayString(t));
        return { day: dayString(t), dau: num(g?.dau ?? 0), wau: num(g?.wau ?? 0), mau: num(g?.mau ?? 0) };
      });
      return out(rows, ['day', 'dau', 'wau', 'mau'], {});
    }

    // new vs returning: a user's first event ever (before the range's end) against each bucket they were active in.
    const where = scopeSql(q, x.dialect, scope);
    const firstWhere = scopeSql(q, x.dialect, { projectId: p.projectId, clientOnly: true });
    const sql = `SELECT t, uniqExactIf(uid, first >= t) AS new, uniqExactIf(uid, first < t) AS returning
      FROM (SELECT DISTINCT uid, ${bucketSql(x.dialect, p.interval)} AS t FROM ${events} WHERE ${where}) AS active
      ALL INNER JOIN (SELECT uid, min(${x.dialect.tsMs}) AS first FROM ${events} WHERE ${firstWhere} AND ${x.dialect.tsMs} < ${q.i64(p.range.to)} GROUP BY uid) AS seen USING uid
      GROUP BY t`;
    const got = await x.query<{ t: string; new: string; returning: string }>(q.build(sql));
    const by = new Map(got.map((g) => [num(g.t), g]));
    const rows = p.buckets.map((t) => {
      const g = by.get(t);
      return { t: iso(t), new: num(g?.new ?? 0), returning: num(g?.returning ?? 0) };
    });
    return out(rows, ['t', 'new', 'returning'], { interval: p.interval });
  },
};
