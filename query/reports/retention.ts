import { QUERY_LIMITS, type TimeRange } from '../params.js';
import { DAY_MS, dayString, scopeSql, table } from '../scope.js';
import { SqlBuilder } from '../sql.js';
import { num, projectOf, rangeOf, type Report, type ResultRow } from '../types.js';

/**
 * `retention`: cohorts of users by the UTC period (day, week from Monday,
 * month) of their first start event ever — any event they sent, or the
 * `start` pattern — for cohorts starting in [from, to). For each cohort, the
 * users who did a return event (any event, or the `return` pattern) in
 * period 0 (the cohort's own), 1, … N after it. Periods not over yet are
 * counted as far as the data goes.
 */

const PERIODS = ['day', 'week', 'month'] as const;
type Period = (typeof PERIODS)[number];

interface Plan {
  readonly projectId: number;
  readonly range: TimeRange;
  readonly period: Period;
  readonly periods: number;
  readonly start: string | undefined;
  readonly back: string | undefined;
}

/** Period start of a Date column, and a period number to subtract. */
function periodSql(period: Period, col: string): { start: string; index: string } {
  switch (period) {
    case 'day': return { start: col, index: `toRelativeDayNum(${col})` };
    case 'week': return { start: `toMonday(${col})`, index: `intDiv(toRelativeDayNum(toMonday(${col})) + 3, 7)` };
    case 'month': return { start: `toStartOfMonth(${col})`, index: `toRelativeMonthNum(${col})` };
  }
}

const PERIOD_DAYS: Record<Period, number> = { day: 1, week: 7, month: 31 };

export const retentionReport: Report<Plan> = {
  name: 'retention',
  summary: 'cohorts by first (start) event and their return in each following period',
  params: 'from, to (cohort starts), period (day|week|month), periods (N), start (pattern), return (pattern), project',
  parse(r, env) {
    return {
      projectId: projectOf(r, env),
      range: r.range(30),
      period: r.choice('period', PERIODS, 'day'),
      periods: r.int('periods', 7, 1, QUERY_LIMITS.maxRetentionPeriods),
      start: r.pattern('start'),
      back: r.pattern('return'),
    };
  },
  async run(p, x) {
    const events = table(x.store.database, 'events');
    const q = new SqlBuilder(x.dialect.modern);
    const startWhere = scopeSql(q, x.dialect, { projectId: p.projectId, clientOnly: true, ...(p.start ? { pattern: p.start } : {}) });
    const fromDay = q.str(dayString(p.range.from));
    const lastDay = q.str(dayString(p.range.to - 1));
    const cohorts = `SELECT uid, min(event_date) AS c0 FROM ${events} WHERE ${startWhere} GROUP BY uid HAVING c0 >= toDate(${fromDay}) AND c0 <= toDate(${lastDay})`;
    const returnTo = p.range.to + (p.periods + 1) * PERIOD_DAYS[p.period] * DAY_MS;
    const backWhere = scopeSql(q, x.dialect, {
      projectId: p.projectId, clientOnly: true, range: { from: p.range.from, to: returnTo }, ...(p.back ? { pattern: p.back } : {}),
    });
    const c = periodSql(p.period, 'c0');
    const d = periodSql(p.period, 'd');
    const sql = `SELECT toString(${c.start}) AS cohort, k, uniqExact(uid) AS users FROM (
        SELECT uid, c0, d, ${d.index} - ${c.index} AS k
        FROM (${cohorts}) AS cohorts ALL INNER JOIN (SELECT DISTINCT uid, event_date AS d FROM ${events} WHERE ${backWhere}) AS returns USING uid
      ) WHERE k >= 0 AND k <= ${q.u32(p.periods)} GROUP BY cohort, k`;
    const got = await x.query<{ cohort: string; k: string | number; users: string }>(q.build(sql));

    const q2 = new SqlBuilder(x.dialect.modern);
    const startWhere2 = scopeSql(q2, x.dialect, { projectId: p.projectId, clientOnly: true, ...(p.start ? { pattern: p.start } : {}) });
    const sizesSql = `SELECT toString(${c.start}) AS cohort, count() AS users FROM (SELECT uid, min(event_date) AS c0 FROM ${events} WHERE ${startWhere2} GROUP BY uid HAVING c0 >= toDate(${q2.str(dayString(p.range.from))}) AND c0 <= toDate(${q2.str(dayString(p.range.to - 1))})) GROUP BY cohort ORDER BY cohort`;
    const sizes = await x.query<{ cohort: string; users: string }>(q2.build(sizesSql));

    const columns = ['cohort', 'users', ...Array.from({ length: p.periods + 1 }, (_, k) => `${p.period}_${k}`)];
    const by = new Map(got.map((g) => [`${g.cohort}/${num(g.k)}`, num(g.users)]));
    const rows: ResultRow[] = sizes.map((s) => {
      const row: Record<string, string | number> = { cohort: s.cohort, users: num(s.users) };
      for (let k = 0; k <= p.periods; k++) row[`${p.period}_${k}`] = by.get(`${s.cohort}/${k}`) ?? 0;
      return row;
    });
    return {
      report: 'retention', range: rangeOf(p.range),
      tables: [{ title: `retention by ${p.period} (users returning in each period)`, columns, rows }],
      meta: { period: p.period, periods: p.periods, start: p.start ?? '(any event)', return: p.back ?? '(any event)', users: rows.reduce((n, r) => n + (r.users as number), 0) },
    };
  },
};

