import { fieldSql } from '../columns.js';
import { checkPattern, invalid, QUERY_LIMITS, type TimeRange } from '../params.js';
import { filterSql, iso, keySql, readFilters, scopeSql, table, type EventFilter } from '../scope.js';
import { SqlBuilder } from '../sql.js';
import { num, projectOf, rangeOf, type Report } from '../types.js';

/**
 * `segments`: the users who, in [from, to), sent at least one event passing
 * every `filter` (any event when there are none) and did each `did` pattern
 * at least N times (`did=in.gen.shop.buy:2`). One row per user, ordered by
 * uid, with their events, first and last time in the range; `format=csv`
 * (API) or `--csv` (CLI) exports it.
 */

interface Did {
  readonly pattern: string;
  readonly min: number;
}

interface Plan {
  readonly projectId: number;
  readonly range: TimeRange;
  readonly filters: readonly EventFilter[];
  readonly did: readonly Did[];
  readonly limit: number;
}

function parseDid(raw: string): Did {
  const at = raw.lastIndexOf(':');
  const pattern = at < 0 ? raw : raw.slice(0, at);
  const min = at < 0 ? '1' : raw.slice(at + 1);
  if (!/^\d{1,6}$/.test(min) || Number(min) < 1) throw invalid('did', 'the count after ":" must be an integer from 1 to 999999');
  return { pattern: checkPattern('did', pattern), min: Number(min) };
}

export const segmentsReport: Report<Plan> = {
  name: 'segments',
  summary: 'users matching property filters and "did X at least N times" (CSV export)',
  params: 'from, to, filter (field:op:value, repeatable), did (pattern[:N], repeatable), limit, project',
  parse(r, env) {
    const plan = {
      projectId: projectOf(r, env), range: r.range(30), filters: readFilters(r),
      did: r.many('did', QUERY_LIMITS.maxFilters).map(parseDid),
      limit: r.int('limit', 1000, 1, QUERY_LIMITS.maxSegmentRows),
    };
    const probe = new SqlBuilder(true);
    for (const f of plan.filters) fieldSql(probe, f.field, f.param);
    return plan;
  },
  async run(p, x) {
    const q = new SqlBuilder(x.dialect.modern);
    const ts = x.dialect.tsMs;
    const having = [
      p.filters.length === 0 ? 'count() > 0' : `countIf(${p.filters.map((f) => filterSql(q, f)).join(' AND ')}) > 0`,
      ...p.did.map((d) => `countIf(${keySql(q, d.pattern)}) >= ${q.u32(d.min)}`),
    ];
    const sql = `SELECT uid, max(user_id) AS user_id, count() AS events, min(${ts}) AS first, max(${ts}) AS last
      FROM ${table(x.store.database, 'events')} WHERE ${scopeSql(q, x.dialect, { projectId: p.projectId, range: p.range, clientOnly: true })}
      GROUP BY uid HAVING ${having.join(' AND ')} ORDER BY uid LIMIT ${q.u32(p.limit + 1)}`;
    const got = await x.query<{ uid: string; user_id: string; events: string; first: string; last: string }>(q.build(sql));
    const rows = got.slice(0, p.limit).map((g) => ({ uid: g.uid, user_id: g.user_id, events: num(g.events), first_seen: iso(num(g.first)), last_seen: iso(num(g.last)) }));
    return {
      report: 'segments', range: rangeOf(p.range),
      tables: [{ title: 'users in the segment', columns: ['uid', 'user_id', 'events', 'first_seen', 'last_seen'], rows }],
      meta: { users: rows.length, truncated: got.length > p.limit },
    };
  },
};
