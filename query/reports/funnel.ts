import type { Envelope } from '../../engine/envelope/index.js';
import { createError } from '../../engine/errors/index.js';
import { createFunnels } from '../../actors/machines/funnels.js';
import { FUNNEL_LIMITS, FUNNEL_MODES, parseFunnels, type FunnelConfig } from '../../actors/machines/funnel-config.js';
import { clip, fieldSql } from '../columns.js';
import { checkPattern, invalid, QUERY_LIMITS, type TimeRange } from '../params.js';
import { dayString, keySql, scopeSql, table } from '../scope.js';
import { SqlBuilder } from '../sql.js';
import { projectOf, rangeOf, type Report, type ReportExec, type ResultRow } from '../types.js';

/**
 * `funnel`: a configured funnel (`funnel=checkout`) or ad-hoc steps
 * (`step=in.gen.shop.view&step=in.gen.shop.cart…`, `mode`, `window`), over
 * the events users sent in [from, to).
 *
 * The steps are evaluated by the same funnel library the session actors run
 * (actors/machines): the store returns, per user, the events whose key hits a
 * step or exclusion pattern — in the order the user's actor processed them
 * (the `arrival` stamp), with client time and the fields the filters read —
 * and each user's
 * events go through `step` exactly as they did live. So on the same events
 * the counts are the real-time `in.sys.funnel.{name}` counts: modes, windows,
 * `withinMs`, exclusions, filters and the out-of-order rule included.
 *
 * Per step: times reached, users reaching it, conversion from the first and
 * from the previous step, median time since the attempt's start; with
 * `breakdown`, per value of that field on the event that started the attempt.
 */

interface Plan {
  readonly projectId: number;
  readonly range: TimeRange;
  readonly config: FunnelConfig;
  readonly configured: boolean;
  readonly breakdown: string | undefined;
}

/** Envelope fields a funnel filter may read, and their columns. */
const ENVELOPE_COLUMNS: Readonly<Record<string, string>> = {
  key: 'key', channel: 'channel', service: 'service', name: 'name', uid: 'uid', userId: 'user_id',
  projectId: 'project_id', pageUrl: 'page_url', pageReferrer: 'page_referrer', pageTitle: 'page_title', userAgent: 'ua',
};

export const funnelReport: Report<Plan> = {
  name: 'funnel',
  summary: 'a configured or ad-hoc funnel: per-step users, conversion, median time; same rules as the real-time funnels',
  params: 'funnel (configured name) | step (pattern, repeatable) + mode (strict|ordered|any) + window (e.g. 1h, 7d), breakdown, from, to, project',
  parse(r, env) {
    const projectId = projectOf(r, env);
    const range = r.range();
    const name = r.one('funnel');
    const steps = r.many('step', FUNNEL_LIMITS.maxSteps).map((s) => checkPattern('step', s));
    const mode = r.one('mode');
    const window = r.one('window') !== undefined;
    let config: FunnelConfig;
    if (name !== undefined) {
      if (steps.length > 0 || mode !== undefined || window) throw invalid('funnel', 'a configured funnel takes no step, mode or window (they come from its config)');
      const found = env.funnels.find((f) => f.name === name);
      if (found === undefined) throw invalid('funnel', `no configured funnel "${clip(name, 64)}" (configured: ${env.funnels.map((f) => f.name).join(', ') || 'none'})`);
      config = found;
    } else {
      if (steps.length === 0) throw invalid('step', 'give a configured funnel, or at least one step pattern');
      if (mode !== undefined && !(FUNNEL_MODES as readonly string[]).includes(mode)) throw invalid('mode', `must be one of ${FUNNEL_MODES.join(', ')}`);
      const windowMs = r.duration('window', 86_400_000, FUNNEL_LIMITS.maxWindowMs);
      config = parseFunnels([{ name: 'query', mode: mode ?? 'ordered', windowMs, steps: steps.map((pattern) => ({ pattern })) }])[0]!;
    }
    const breakdown = r.one('breakdown');
    if (breakdown !== undefined) fieldSql(new SqlBuilder(true), breakdown, 'breakdown');
    return { projectId, range, config, configured: name !== undefined, breakdown };
  },
  run: runFunnel,
};

/** What the evaluator needs of each event besides key and time: filter fields, by envelope path. */
function filterFields(config: FunnelConfig): string[] {
  const fields = new Set<string>();
  for (const s of [...config.steps, ...config.exclusions]) for (const f of s.filters) fields.add(f.field);
  return [...fields];
}

interface StepStats {
  reached: number;
  users: number;
  /** The user (their number in this read) counted last, so each counts once. */
  lastUser: number;
  since: number[];
}

async function runFunnel(p: Plan, x: ReportExec) {
  const funnels = createFunnels([p.config]);
  const n = p.config.steps.length;
  const modern = x.dialect.modern;
  const scope = { projectId: p.projectId, range: p.range, clientOnly: true };
  const hits = (q: SqlBuilder): string => `(${funnels.patterns.map((pat) => keySql(q, pat)).join(' OR ')})`;

  // The keys that hit a pattern, once: events carry their index, not the
  // text. Read without FINAL, over the whole days of the range (the sort key
  // columns only), so it also tells whether any event is stored more than
  // once there: when every key's rows have distinct event ids, each row is
  // alone in its sort key (project, day, key, uid, event id) and FINAL would
  // return exactly the rows it has — the main read can skip it (measured:
  // FINAL was a third of that read on the 10M-event bench). The limit counts
  // stored rows, copies included: the work the read does. `unstamped`: rows
  // in the range stored before schema 4, without an arrival stamp.
  const qk = new SqlBuilder(modern);
  const inRange = `${x.dialect.tsMs} >= ${qk.i64(p.range.from)} AND ${x.dialect.tsMs} < ${qk.i64(p.range.to)} AND channel != 'sys'`;
  const days = `event_date >= toDate(${qk.str(dayString(p.range.from))}) AND event_date <= toDate(${qk.str(dayString(p.range.to - 1))})`;
  const keyRows = await x.query<{ key: string; n: string; stored: string; ids: string; unstamped: string }>(qk.build(
    `SELECT key, countIf(${inRange}) AS n, count() AS stored, uniqExact(event_id) AS ids, countIf(${inRange} AND arrival = 0) AS unstamped FROM ${table(x.store.database, 'events', false)}
      WHERE project_id = ${qk.u32(p.projectId)} AND ${days} AND ${hits(qk)} GROUP BY key ORDER BY key`));
  const read = keyRows.filter((k) => Number(k.n) > 0);
  const keys = read.map((k) => k.key);
  const total = read.reduce((sum, k) => sum + Number(k.n), 0);
  const copies = keyRows.some((k) => Number(k.stored) !== Number(k.ids));
  const unstamped = read.some((k) => Number(k.unstamped) > 0);
  if (total > QUERY_LIMITS.maxFunnelEvents) {
    throw createError('FLOW_ERR_QUERY_TOO_LARGE', { size: total, what: 'funnel events', limit: QUERY_LIMITS.maxFunnelEvents });
  }
  if (keys.length > QUERY_LIMITS.maxFunnelKeys) {
    throw createError('FLOW_ERR_QUERY_TOO_LARGE', { size: keys.length, what: 'distinct keys hitting a funnel pattern', limit: QUERY_LIMITS.maxFunnelKeys });
  }
  // What the evaluator reads of a key, split once per key rather than per
  // event. The main read takes only these keys: one first stored after this
  // query (the engine may be writing) has no index.
  const keyParts = keys.map((key) => {
    const [, channel = '', service = '', name = ''] = key.split('.');
    return { key, channel, service, name };
  });

  const q = new SqlBuilder(modern);
  const fields = filterFields(p.config);
  const fieldSqls = fields.map((f) => {
    const column = ENVELOPE_COLUMNS[f];
    if (column !== undefined) return column === 'project_id' ? 'toString(project_id)' : column;
    const prop = q.str(f.split('.')[1]!);
    // Nullable: a missing property is not the same as an empty string. Modern: the Map value text; 18.16: the raw JSON.
    return modern ? `if(mapContains(props, ${prop}), props[${prop}], NULL)` : `if(visitParamHas(props, ${prop}), visitParamExtractRaw(props, ${prop}), NULL)`;
  });
  const extra = [...fieldSqls, ...(p.breakdown !== undefined ? [fieldSql(q, p.breakdown, 'breakdown')] : [])];
  const received = modern ? 'toUnixTimestamp64Milli(received_at)' : 'received_at';
  // In the ordered modes an attempt can only begin with step 0: from idle
  // the machine has no other transition (funnel-machine.ts, buildStates), so
  // a user's events before their first step-0 key are no-ops and a user
  // without one reaches nothing. Those stay in the store.
  const ordered = p.config.mode !== 'any';
  const first = ordered ? `toUInt8(${keySql(q, p.config.steps[0]!.pattern)})` : '0';
  // The order the actor processed a user's events: their `arrival` stamps,
  // strictly increasing per user (actors/ingest-behavior.ts, nextArrival) —
  // one number to sort by. Rows stored before schema 4 have none (0); when the
  // range holds any, they are ordered as they can be — received_at as a stamp
  // (ms × 1024: before every later stamp of that ms), then session, seq and
  // the event id (as a UUID: cheaper than its text; only two rows of one
  // session with the same seq could tie that far). The stamp alone cuts the
  // 10M-event bench's main read by about a third (four sort keys, one a
  // string, kept in the generic tuple form cost more than one number).
  const order = unstamped ? [`if(arrival = 0, toUInt64(${received}) * 1024, arrival)`, 'session_id', 'seq', 'event_id'] : ['arrival'];
  // Per event one number, (ms since `from`) * keys + key index: exact below
  // 2^53 (range <= 366 days, keys <= maxFunnelKeys).
  const code = `(${x.dialect.tsMs} - ${q.i64(p.range.from)}) * ${q.u32(keys.length)} + indexOf(${q.strs(keys)}, key) - 1`;
  const tuple = `tuple(${[...order, code, first, ...extra].join(', ')})`;
  const at = (i: number): string => `e.${order.length + i}`;
  const sorted = `arraySort(e -> (${order.map((_, i) => `e.${i + 1}`).join(', ')}), groupArray(${tuple}))`;
  // Users in 64 groups (by a hash of the uid), each group one row: its
  // users' events as text, numbers joined by "," and users by ";", and the
  // fields the filters and the breakdown read as one array per user beside
  // it, in the same user order. One row per user, or arrays of numbers, cost
  // more to print, parse and collect than the events themselves (the bench,
  // 346k users: 0.47 s to parse one row per user, 0.2 s for 64 rows of
  // arrays, 0.1 s for 64 rows of text). The uid is not sent: a filter that
  // reads `uid` gets it as a field. (No alias may be named like a lambda's
  // argument: 18.16 puts the aliased expression in the lambda.)
  const perUser = [`arrayStringConcat(arrayMap(e -> toString(${at(1)}), s), ',') AS ev`, ...extra.map((_, i) => `arrayMap(e -> ${at(3 + i)}, s) AS f${i}`)];
  const sql = `SELECT arrayStringConcat(groupArray(ev), ';') AS es${extra.map((_, i) => `, groupArray(f${i}) AS f${i}s`).join('')} FROM (
      SELECT cityHash64(uid) % 64 AS g, ${perUser.join(', ')} FROM (
        SELECT uid, ${ordered ? `arraySlice(${sorted} AS a, arrayFirstIndex(e -> ${at(2)} = 1, a))` : sorted} AS s
        FROM ${table(x.store.database, 'events', copies)} WHERE ${scopeSql(q, x.dialect, scope)} AND ${hits(q)} AND has(${q.strs(keys)}, key)
        GROUP BY uid${ordered ? ` HAVING max(${first}) = 1` : ''}))
    GROUP BY g`;
  const groups = keys.length === 0 ? [] : await x.query<{ es: string } & Record<string, unknown[][]>>(q.build(sql));

  const stats = new Map<string, StepStats[]>();
  const statsFor = (b: string): StepStats[] => {
    let s = stats.get(b);
    if (s === undefined) stats.set(b, s = Array.from({ length: n }, () => ({ reached: 0, users: 0, lastUser: -1, since: [] })));
    return s;
  };
  let attempts = 0;
  let conversions = 0;
  let convertedUsers = 0;
  let evaluated = 0;
  let user = 0;
  const env = {
    id: '', projectId: p.projectId, key: '', channel: '', service: '', name: '', uid: '', userId: null as string | null,
    ts: 0, receivedAt: 0, ip: '', userAgent: '', pageUrl: '', pageReferrer: '', pageTitle: '', data: {} as Record<string, unknown>, idFromClient: false,
  };
  const nKeys = keys.length;
  const fieldValues: unknown[][] = [];
  for (const group of groups) {
    const text = group.es;
    let at = 0;
    for (let u = 0; at < text.length; u++, user++) {
      let state = funnels.initial();
      let attemptValue = '';
      let converted = false;
      for (let j = 0; j < extra.length; j++) fieldValues[j] = group[`f${j}s`]![u]!;
      for (let i = 0; ; i++) {
        // The next number; the separator after it ends it (",": this user goes on).
        let code = 0;
        let c = 0;
        while (at < text.length && (c = text.charCodeAt(at)) !== 44 && c !== 59) { code = code * 10 + c - 48; at++; }
        at++;
        evaluated++;
        const k = code % nKeys;
        const part = keyParts[k]!;
        env.key = part.key; env.channel = part.channel; env.service = part.service; env.name = part.name;
        env.ts = p.range.from + (code - k) / nKeys;
        if (fields.length > 0) setFields(env, fields, fieldValues, i, modern);
        const r = funnels.step(state, env as Envelope);
        if (r !== null) {
          state = r.state;
          for (const reached of r.reached) {
            if (reached.reachedCount === 1) {
              attempts++;
              attemptValue = p.breakdown === undefined ? '' : String(fieldValues[fields.length]![i] ?? '');
            }
            const s = statsFor(attemptValue)[reached.stepIndex]!;
            s.reached++;
            s.since.push(reached.sinceStartMs);
            if (s.lastUser !== user) { s.users++; s.lastUser = user; }
            if (reached.converted) { conversions++; converted = true; }
          }
        }
        if (c !== 44) break;
      }
      if (converted) convertedUsers++;
    }
  }

  const rows: ResultRow[] = [];
  const values = [...stats.keys()].sort();
  for (const b of p.breakdown === undefined ? [''] : values) {
    const s = stats.get(b) ?? statsFor(b);
    s.forEach((st, i) => {
      const row: Record<string, string | number | null> = {};
      if (p.breakdown !== undefined) row[p.breakdown] = b;
      row.step = i;
      row.name = p.config.steps[i]!.name ?? `step_${i}`;
      row.pattern = p.config.steps[i]!.pattern;
      row.reached = st.reached;
      row.users = st.users;
      row.from_first = s[0]!.users === 0 ? 0 : round(st.users / s[0]!.users);
      row.from_previous = i === 0 ? 1 : s[i - 1]!.users === 0 ? 0 : round(st.users / s[i - 1]!.users);
      row.median_since_start_ms = median(st.since);
      rows.push(row);
    });
  }
  const last = [...stats.values()].flatMap((s) => s[n - 1]!.since);
  const columns = [...(p.breakdown !== undefined ? [p.breakdown] : []), 'step', 'name', 'pattern', 'reached', 'users', 'from_first', 'from_previous', 'median_since_start_ms'];
  return {
    report: 'funnel', range: rangeOf(p.range),
    tables: [{ title: `funnel ${p.configured ? p.config.name : '(ad hoc)'}, ${p.config.mode}, window ${p.config.windowMs} ms`, columns, rows }],
    meta: {
      funnel: p.configured ? p.config.name : null, mode: p.config.mode, windowMs: p.config.windowMs,
      attempts, conversions, convertedUsers, medianTimeToConvertMs: median(last), eventsRead: evaluated, final: copies,
      order: unstamped ? 'received' : 'arrival',
    },
  };
}

/** Fills the envelope fields the filters read from event `at` (values[field][event]). */
function setFields(env: Record<string, unknown>, fields: readonly string[], values: readonly (readonly unknown[])[], at: number, modern: boolean): void {
  const data: Record<string, unknown> = {};
  fields.forEach((f, i) => {
    const v = values[i]![at];
    if (!f.startsWith('data.')) {
      env[f] = f === 'projectId' ? Number(v) : f === 'userId' ? (v === '' ? null : v) : v;
      return;
    }
    if (v === null || v === undefined) return;
    data[f.split('.')[1]!] = modern ? fromMapText(v as string) : JSON.parse(v as string);
  });
  env.data = data;
}

/**
 * A Map(String, String) value back to the value the client sent: strings are
 * stored as they are, anything else as its JSON text — so text that parses
 * as a JSON number, boolean, null, object or array is taken as that (a string
 * the client sent that looks like JSON, "42", reads as the number 42).
 */
export function fromMapText(v: string): unknown {
  const c = v.charCodeAt(0);
  // - 0-9 [ { t f n
  if (c === 45 || (c >= 48 && c <= 57) || c === 91 || c === 123 || c === 116 || c === 102 || c === 110) {
    try {
      const parsed: unknown = JSON.parse(v);
      if (typeof parsed !== 'string') return parsed;
    } catch { /* a plain string */ }
  }
  return v;
}

/** The element at index floor(n / 2) of the sorted values (upper median); null for none. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  // A typed array sorts numerically without a comparator: 800k values in a tenth of the time.
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.floor(sorted.length / 2)]!;
}

function round(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}

