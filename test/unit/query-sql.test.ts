import { describe, expect, it } from 'vitest';
import { createKeyMatcher } from '../../engine/keys/index.js';
import { patternRegex, parseFilter, bucketStart, bucketsOf } from '../../query/scope.js';
import { SqlBuilder } from '../../query/sql.js';
import { fieldSql } from '../../query/columns.js';
import { renderCsv } from '../../query/format.js';
import { runQueryCommand } from '../../query/cli.js';
import { isFlowError } from '../../engine/index.js';

describe('query sql - values never become SQL text', () => {
  it('modern stores: every value is a typed placeholder with the value beside it', () => {
    const q = new SqlBuilder(true);
    const sql = `x = ${q.str("'; DROP TABLE events; --")} AND n = ${q.u32(7)} AND has(${q.strs(['a', "b'"])}, y)`;
    expect(q.build(sql)).toEqual({ sql: 'x = {p0:String} AND n = {p1:UInt32} AND has({p2:Array(String)}, y)', params: { p0: "'; DROP TABLE events; --", p1: 7, p2: ['a', "b'"] } });
  });

  it('18.16: strings through the one literal escaper, numbers checked then printed', () => {
    const q = new SqlBuilder(false);
    expect(q.str("a'b\\c")).toBe("'a\\'b\\\\c'");
    expect(q.strs(["x'"])).toBe("['x\\'']");
    expect(q.i64(-5)).toBe('-5');
    expect(q.f64(1.5)).toBe('toFloat64(1.5)');
    expect(() => q.u32(1.5)).toThrow();
    expect(() => q.i64(Number.NaN)).toThrow();
    expect(q.build('SELECT 1').params).toBeUndefined();
  });

  it('identifiers only from the allowlist; a property name is a bound value', () => {
    const q = new SqlBuilder(true);
    expect(fieldSql(q, 'utm_source', 'breakdown')).toBe('utm_source');
    expect(fieldSql(q, 'data.plan', 'breakdown')).toBe('props[{p0:String}]');
    for (const bad of ['password', 'utm_source; DROP', 'data.a b', "data.x'", 'data.']) {
      let err: unknown = null;
      try { fieldSql(q, bad, 'breakdown'); } catch (e) { err = e; }
      expect(isFlowError(err, 'FLOW_ERR_FIELD_INVALID')).toBe(true);
    }
  });

  it('a key pattern as a regular expression matches exactly what the engine matcher matches (on valid keys)', () => {
    const patterns = ['in.gen.track.page', 'in.gen.*.view', 'in.*.*.*', 'in.**', 'in.gen.**', 'in.sys.funnel.*'];
    const keys = ['in.gen.track.page', 'in.gen.shop.view', 'in.sys.funnel.checkout', 'in.gen.track.pages', 'out.gen.a.b', 'in.gen.a-b.c_d'];
    for (const p of patterns) {
      const m = createKeyMatcher([{ pattern: p, value: true }]);
      const re = new RegExp(patternRegex(p));
      for (const k of keys) expect(re.test(k), `${p} ~ ${k}`).toBe(m.match(k).length > 0);
    }
  });

  it('filters: field:op:value, the value keeps its colons; weeks start on Monday; buckets are bounded', () => {
    expect(parseFilter('page_url:contains:https://x', 'filter')).toMatchObject({ field: 'page_url', op: 'contains', value: 'https://x' });
    expect(() => parseFilter('a:gt:abc', 'filter')).toThrow(/number/);
    expect(new Date(bucketStart(Date.UTC(2026, 0, 8, 13), 'week')).toISOString()).toBe('2026-01-05T00:00:00.000Z');
    expect(bucketsOf({ from: Date.UTC(2026, 0, 31), to: Date.UTC(2026, 2, 1) }, 'month')).toEqual([Date.UTC(2026, 0, 1), Date.UTC(2026, 1, 1)]);
  });

  it('CSV: quoted where needed, formulas defused', () => {
    expect(renderCsv({ title: 't', columns: ['a', 'b'], rows: [{ a: 'x,"y"', b: '=HYPERLINK(1)' }, { a: null, b: 3 }] })).toBe('a,b\r\n"x,""y""",\'=HYPERLINK(1)\r\n,3\r\n');
  });

  it('cli - usage, unknown arguments and bad parameters exit 2', async () => {
    const out: string[] = [];
    const sink = { write: (s: string) => { out.push(s); return true; } } as unknown as NodeJS.WritableStream;
    expect(await runQueryCommand(['--help'], sink, sink)).toBe(0);
    expect(out.join('')).toContain('flowstat query <report>');
    expect(await runQueryCommand(['events', 'stray'], sink, sink)).toBe(2);
    expect(await runQueryCommand(['events', '--from'], sink, sink)).toBe(2);
  });
});
