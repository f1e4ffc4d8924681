import type { Envelope } from '../../engine/envelope/index.js';
import { createError } from '../../engine/errors/index.js';
import { createFunnels } from '../../actors/machines/funnels.js';
import { FUNNEL_LIMITS, FUNNEL_MODES, parseFunnels, type FunnelConfig } from '../../actors/machines/funnel-config.js';
import { clip, fieldSql } from '../columns.js';
import { checkPattern, invalid, QUERY_LIMITS, type TimeRange } from '../params.js';
import { keySql, scopeSql, table } from '../scope.js';
import { SqlBuilder } from '../sql.js';
import { projectOf, rangeOf, type Report, type ReportExec, type ResultRow } from '../types.js';

/**
 * `funnel`: a configured funnel (`funnel=checkout`) or ad-hoc steps
 * (`step=in.gen.shop.view&step=in.gen.shop.cart…`, `mode`, `window`), over
 * the events users sent in [from, to).
 *
 * The steps are evaluated by the same funnel library the session actors run
 * (actors/machines): the store returns, per user, the events whose key hits a
 * step or exclusion pattern — in arrival order (received_at, then session
 * and seq), with client time and the fields the filters read — and each user's
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
  lastUser: string;
  since: number[];
}

async function runFunnel(p: Plan, x: ReportExec) {
  const funnels = createFunnels([p.config]);
  const n = p.config.steps.length;
  const events = table(x.store.database, 'events');
  const modern = x.dialect.modern;

  // The keys that hit a pattern, once: events carry their index, not the text.
  const qk = new SqlBuilder(modern);
  const scope = { projectId: p.projectId, range: p.range, clientOnly: true };
  const hits = (q: SqlBuilder): string => `(${funnels.patterns.map((pat) => keySql(q, pat)).join(' OR ')})`;
  const keyRows = await x.query<{ key: string; n: string }>(qk.build(`SELECT key, count() AS n FROM ${events} WHERE ${scopeSql(qk, x.dialect, scope)} AND ${hits(qk)} GROUP BY key ORDER BY key`));
  const keys = keyRows.map((k) => k.key);
  const total = keyRows.reduce((sum, k) => sum + Number(k.n), 0);
  if (total > QUERY_LIMITS.maxFunnelEvents) {
    throw createError('FLOW_ERR_QUERY_TOO_LARGE', { size: total, what: 'funnel events', limit: QUERY_LIMITS.maxFunnelEvents });
  }

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
  const received = x.dialect.modern ? 'toUnixTimestamp64Milli(received_at)' : 'received_at';
  // Per user, one array of (key index, ms since `from`, …fields) in arrival order.
  const tuple = `tuple(${received}, session_id, seq, toString(event_id), indexOf(${q.strs(keys)}, key), ${x.dialect.tsMs} - ${q.i64(p.range.from)}${extra.map((e) => `, ${e}`).join('')})`;
  const width = 2 + extra.length;
  const picks = Array.from({ length: width }, (_, i) => `e.${i + 5}`).join(', ');
  const sql = `SELECT uid AS u, arrayMap(e -> tuple(${picks}), arraySort(e -> (e.1, e.2, e.3, e.4), groupArray(${tuple}))) AS e
    FROM ${events} WHERE ${scopeSql(q, x.dialect, scope)} AND ${hits(q)} GROUP BY uid ORDER BY uid`;
  const users = keys.length === 0 ? [] : await x.query<{ u: string; e: unknown[][] }>(q.build(sql));

  const stats = new Map<string, StepStats[]>();
  const statsFor = (b: string): StepStats[] => {
    let s = stats.get(b);
    if (s === undefined) stats.set(b, s = Array.from({ length: n }, () => ({ reached: 0, users: 0, lastUser: '', since: [] })));
    return s;
  };
  let attempts = 0;
  let conversions = 0;
  let read = 0;
  const converting = new Set<string>();
  const env = {
    id: '', projectId: p.projectId, key: '', channel: '', service: '', name: '', uid: '', userId: null as string | null,
    ts: 0, receivedAt: 0, ip: '', userAgent: '', pageUrl: '', pageReferrer: '', pageTitle: '', data: {} as Record<string, unknown>, idFromClient: false,
  };
  for (const user of users) {
    let state = funnels.initial();
    let attemptValue = '';
    env.uid = user.u;
    for (const e of user.e) {
      read++;
      const key = keys[(e[0] as number) - 1]!;
      env.key = key;
      const [, channel = '', service = '', name = ''] = key.split('.');
      env.channel = channel; env.service = service; env.name = name;
      env.ts = p.range.from + Number(e[1]);
      if (fields.length > 0) setFields(env, fields, e, modern);
      const r = funnels.step(state, env as Envelope);
      if (r === null) continue;
      state = r.state;
      for (const reached of r.reached) {
        if (reached.reachedCount === 1) {
          attempts++;
          attemptValue = p.breakdown === undefined ? '' : String(e[2 + fields.length] ?? '');
        }
        const s = statsFor(attemptValue)[reached.stepIndex]!;
        s.reached++;
        s.since.push(reached.sinceStartMs);
        if (s.lastUser !== user.u) { s.users++; s.lastUser = user.u; }
        if (reached.converted) { conversions++; converting.add(user.u); }
      }
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
      attempts, conversions, convertedUsers: converting.size, medianTimeToConvertMs: median(last), eventsRead: read,
    },
  };
}

/** Fills the envelope fields the filters read from an event tuple (e[2…]). */
function setFields(env: Record<string, unknown>, fields: readonly string[], e: readonly unknown[], modern: boolean): void {
  const data: Record<string, unknown> = {};
  fields.forEach((f, i) => {
    const v = e[2 + i];
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
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function round(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}

