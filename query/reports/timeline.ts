import { isValidUid } from '../../engine/envelope/index.js';
import { invalid, QUERY_LIMITS, type TimeRange } from '../params.js';
import { iso, scopeSql, table } from '../scope.js';
import { SqlBuilder } from '../sql.js';
import { num, projectOf, rangeOf, type Report, type ResultRow } from '../types.js';

/**
 * `timeline`: one user's history, newest first — every event of a `uid`, or
 * of every uid that carried a `user` id — with the sessions those events
 * belong to. Paginated: `meta.next` is the cursor for the page after.
 * Order: client time descending, then event id descending (a total order,
 * so pages neither repeat nor skip events).
 */

interface Plan {
  readonly projectId: number;
  readonly range: TimeRange;
  readonly uid: string | undefined;
  readonly userId: string | undefined;
  readonly limit: number;
  readonly cursor: { readonly ts: number; readonly id: string } | undefined;
}

const CURSOR = /^(\d{1,15})_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

export const timelineReport: Report<Plan> = {
  name: 'timeline',
  summary: "one user's events and sessions, newest first, paginated",
  params: 'uid or user (user id), from, to, limit, cursor (meta.next of the previous page), project',
  parse(r, env) {
    const uid = r.one('uid');
    const userId = r.one('user');
    if ((uid === undefined) === (userId === undefined)) throw invalid('uid', 'give exactly one of uid and user');
    if (uid !== undefined && !isValidUid(uid)) throw invalid('uid', 'must be 1-64 characters of [A-Za-z0-9._:-]');
    if (userId !== undefined && (userId.length === 0 || userId.length > 256)) throw invalid('user', 'must be 1-256 characters');
    const c = r.one('cursor');
    const m = c === undefined ? null : CURSOR.exec(c);
    if (c !== undefined && m === null) throw invalid('cursor', 'not a cursor from meta.next');
    return {
      projectId: projectOf(r, env), range: r.range(365),
      uid, userId, limit: r.int('limit', 100, 1, QUERY_LIMITS.maxTimelineRows),
      cursor: m === null ? undefined : { ts: Number(m[1]), id: m[2]! },
    };
  },
  async run(p, x) {
    const events = table(x.store.database, 'events');
    const q = new SqlBuilder(x.dialect.modern);
    const ts = x.dialect.tsMs;
    const who = p.uid !== undefined ? `uid = ${q.str(p.uid)}`
      : `uid IN (SELECT DISTINCT uid FROM ${events} WHERE project_id = ${q.u32(p.projectId)} AND user_id = ${q.str(p.userId!)})`;
    const after = p.cursor === undefined ? ''
      : ` AND (${ts} < ${q.i64(p.cursor.ts)} OR (${ts} = ${q.i64(p.cursor.ts)} AND toString(event_id) < ${q.str(p.cursor.id)}))`;
    const sql = `SELECT toString(event_id) AS id, ${ts} AS at, key, uid, user_id, session_id, seq, page_url, props
      FROM ${events} WHERE ${scopeSql(q, x.dialect, { projectId: p.projectId, range: p.range })} AND ${who}${after}
      ORDER BY at DESC, id DESC LIMIT ${q.u32(p.limit + 1)}`;
    const got = await x.query<{ id: string; at: string; key: string; uid: string; user_id: string; session_id: string; seq: number; page_url: string; props: unknown }>(q.build(sql));
    const page = got.slice(0, p.limit);
    const rows: ResultRow[] = page.map((e) => ({
      time: iso(num(e.at)), key: e.key, uid: e.uid, user_id: e.user_id, session_id: e.session_id, seq: num(e.seq), page_url: e.page_url,
      // Map(String, String) arrives as an object, 18.16's JSON string as text: one JSON text either way.
      data: typeof e.props === 'string' ? e.props : JSON.stringify(e.props ?? {}),
      id: e.id,
    }));
    const last = page[page.length - 1];
    const next = got.length > p.limit && last !== undefined ? `${num(last.at)}_${last.id}` : null;

    const ids = [...new Set(page.map((e) => e.session_id).filter((s) => s !== ''))];
    let sessionRows: ResultRow[] = [];
    if (ids.length > 0) {
      const qs = new SqlBuilder(x.dialect.modern);
      const sql2 = `SELECT session_id, ${x.dialect.ms('started_at')} AS started, ${x.dialect.ms('ended_at')} AS ended, duration_ms, events, pages, landing_page, exit_page, source_type, device_type, geo_country
        FROM ${table(x.store.database, 'sessions')} WHERE project_id = ${qs.u32(p.projectId)} AND has(${qs.strs(ids)}, session_id)
        ORDER BY started DESC, session_id DESC`;
      const got2 = await x.query<Record<string, string | number>>(qs.build(sql2));
      sessionRows = got2.map((s) => ({
        session_id: s.session_id as string, started: iso(num(s.started)), ended: iso(num(s.ended)), duration_ms: num(s.duration_ms),
        events: num(s.events), pages: num(s.pages), landing_page: s.landing_page as string, exit_page: s.exit_page as string,
        source_type: s.source_type as string, device_type: s.device_type as string, geo_country: s.geo_country as string,
      }));
    }
    return {
      report: 'timeline', range: rangeOf(p.range),
      tables: [
        { title: 'events (newest first)', columns: ['time', 'key', 'uid', 'user_id', 'session_id', 'seq', 'page_url', 'data', 'id'], rows },
        { title: 'sessions of these events', columns: ['session_id', 'started', 'ended', 'duration_ms', 'events', 'pages', 'landing_page', 'exit_page', 'source_type', 'device_type', 'geo_country'], rows: sessionRows },
      ],
      meta: { events: rows.length, next },
    };
  },
};
