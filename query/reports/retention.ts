import { QUERY_LIMITS, type TimeRange } from '../params.js';
import { DAY_MS, dayString, keySql, rangeSql, scopeSql, table } from '../scope.js';
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
    const q = new SqlBuilder(x.dialect.modern);
    // Start and return events as conditions on one scan of the project's client events.
    const start = p.start !== undefined ? keySql(q, p.start) : '1';
    const returnTo = p.range.to + (p.periods + 1) * PERIOD_DAYS[p.period] * DAY_MS;
    const back = [rangeSql(q, x.dialect, { from: p.range.from, to: returnTo }), ...(p.back !== undefined ? [keySql(q, p.back)] : [])].join(' AND ');
    const scan = scopeSql(q, x.dialect, { projectId: p.projectId, clientOnly: true }) + (p.start !== undefined ? ` AND (${start} OR ${back})` : '');
    const fromDay = `toDate(${q.str(dayString(p.range.from))})`;
    // Periods are numbered from the first period of the range (o), so every
    // return event's period fits a bit of a few UInt64 words per user:
    // return events start on the range's first day. Words: an upper bound
    // of the periods from `from` to `returnTo`.
    const base = periodSql(p.period, fromDay).index;
    const offset = (col: string): string => `(toInt64(${periodSql(p.period, col).index}) - ${base})`;
    const spanDays = Math.ceil((returnTo - p.range.from) / DAY_MS) + 1;
    const words = Math.floor((p.period === 'day' ? spanDays : Math.ceil(spanDays / (p.period === 'week' ? 7 : 28)) + 2) / 64) + 1;
    // (The shift is masked: the argument is computed for rows the condition leaves out too.)
    const masks = Array.from({ length: words }, (_, w) =>
      `groupBitOrIf(bitShiftLeft(toUInt64(1), toUInt8(bitAnd(${offset('event_date')} - ${64 * w}, 63))), ${back} AND ${offset('event_date')} >= ${64 * w} AND ${offset('event_date')} < ${64 * (w + 1)})`);
    // One row per user: the first start day (c0) and the periods with a
    // return. No FINAL: the columns read — project, key, uid and the day —
    // are the sort key (channel is part of the key), the same in every copy
    // of an event, and the answer counts distinct users, so a copy changes
    // nothing. (ts, for a range that does not begin or end at midnight, is
    // checked on each copy as stored.)
    const users = `SELECT min${p.start !== undefined ? 'If' : ''}(event_date${p.start !== undefined ? `, ${start}` : ''}) AS c0, [${masks.join(', ')}] AS m
      FROM ${table(x.store.database, 'events', false)} WHERE ${scan} GROUP BY uid
      HAVING ${p.start !== undefined ? `countIf(${start}) > 0 AND ` : ''}c0 >= ${fromDay} AND c0 <= toDate(${q.str(dayString(p.range.to - 1))})`;
    const c = periodSql(p.period, 'c0');
    // r: the user's bits from the cohort's period on (o = its offset), one
    // word; k in 0…periods (<= 60) are its bits 0…k. No shift by 64 (ClickHouse
    // 18.16 takes it modulo 64), and no lambda that captures a column (18.16
    // can drop the column from the subquery): the word travels as an argument.
    const word = (i: string): string => `m[1 + intDiv(o, 64) + ${i}]`;
    const r = `bitOr(bitShiftRight(${word('0')}, o % 64), bitShiftLeft(bitShiftLeft(${word('1')}, 63 - o % 64), 1))`;
    const ks = `range(${q.u32(p.periods + 1)})`;
    // Per user its cohort (k = -1, the cohort size) and each period k with a return.
    const sql = `SELECT toString(${c.start}) AS cohort, k, count() AS users FROM (
        SELECT c0, arrayJoin(arrayConcat([-1], arrayFilter((k, w) -> bitTest(w, k), ${ks}, replicate(${r}, ${ks})))) AS k
        FROM (SELECT c0, m, ${offset('c0')} AS o FROM (${users}))
      ) GROUP BY cohort, k ORDER BY cohort, k`;
    const got = await x.query<{ cohort: string; k: string | number; users: string }>(q.build(sql));
    const sizes = got.filter((g) => num(g.k) === -1);

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

