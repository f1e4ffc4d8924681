import { describe, expect, it } from 'vitest';
import { FlowError, type ErrorCode } from '../../engine/errors/index.js';
import {
  KEY_MAX_LENGTH,
  SEGMENT_MAX,
  assertKey,
  assertPattern,
  createKeyMatcher,
  isValidKey,
  keyFromPath,
  keyFromServiceName,
  keyProblem,
  parseKey,
  patternProblem,
  type Subscription,
} from '../../engine/keys/index.js';

/** Runs `fn`, expects a FlowError with `code`, and returns it for more checks. */
function flowErrorOf(fn: () => unknown, code: ErrorCode): FlowError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(FlowError);
  expect((caught as FlowError).code).toBe(code);
  return caught as FlowError;
}

/**
 * An independent, obviously-correct reference for pattern matching, used to
 * check the compiled trie: `*` is one segment, a trailing `**` the rest (at
 * least one segment), everything else literal.
 */
function referenceMatches(pattern: string, key: string): boolean {
  const p = pattern.split('.');
  const k = key.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '**') return k.length > i;
    if (i >= k.length) return false;
    if (p[i] !== '*' && p[i] !== k[i]) return false;
  }
  return p.length === k.length;
}

function referenceMatch<T>(subs: readonly Subscription<T>[], key: string): T[] {
  const out: T[] = [];
  for (const s of subs) if (referenceMatches(s.pattern, key) && !out.includes(s.value)) out.push(s.value);
  return out;
}

describe('keys - grammar', () => {
  it.each([
    'in.gen.track.page',
    'in.sys.session.start',
    'out.gen.my_service.event-name',
    'a.b.c.d',
    '0.1.2.3',
    `in.gen.${'x'.repeat(SEGMENT_MAX)}.page`,
  ])('accepts the valid key %s', (key) => {
    expect(keyProblem(key)).toBeNull();
    expect(isValidKey(key)).toBe(true);
    expect(assertKey(key)).toBe(key);
  });

  it.each([
    ['in..a.b', 'empty segment'],
    ['.a.b.c', 'empty segment'],
    ['a.b.c.', 'empty segment'],
    ['', 'empty segment'],
    ['in.gen.tr\u0430ck.page', 'character outside [a-z0-9_-]'], // Cyrillic а
    ['in.gen.track.\u{1F600}', 'character outside [a-z0-9_-]'],
    ['in.gen.\u0130.page', 'character outside [a-z0-9_-]'], // İ
    ['IN.GEN.TRACK.PAGE', 'character outside [a-z0-9_-]'],
    ['in.gen.Track.page', 'character outside [a-z0-9_-]'],
    ['in.gen.track page.x', 'character outside [a-z0-9_-]'],
    ['in.gen.track', 'expected 4 segments, got 3'],
    ['in.gen.track.page.extra', 'expected 4 segments, got 5'],
    [`in.gen.${'x'.repeat(SEGMENT_MAX + 1)}.page`, `segment longer than ${SEGMENT_MAX} characters`],
  ])('rejects %j with the reason "%s"', (key, reason) => {
    expect(keyProblem(key)).toBe(reason);
    expect(isValidKey(key)).toBe(false);
    const err = flowErrorOf(() => assertKey(key), 'FLOW_ERR_KEY_INVALID');
    expect(err.message).toContain(reason);
    expect(err.status).toBe(400);
  });

  it('a 10 KB key is rejected by length with a short, clipped message', () => {
    const key = `in.gen.${'a'.repeat(10 * 1024)}.page`;
    expect(keyProblem(key)).toBe(`longer than ${KEY_MAX_LENGTH} characters`);
    const err = flowErrorOf(() => assertKey(key), 'FLOW_ERR_KEY_INVALID');
    expect(err.message.length).toBeLessThan(200);
    expect(err.message).toContain(`(${key.length} chars)`);
    expect(String(err.params.key).length).toBeLessThan(120);
  });

  it('a 10 KB key made only of dots is rejected with a short message', () => {
    const err = flowErrorOf(() => assertKey('.'.repeat(10 * 1024)), 'FLOW_ERR_KEY_INVALID');
    expect(err.message.length).toBeLessThan(200);
  });

  it('the longest possible valid key is accepted and one more character is not', () => {
    const seg = 'x'.repeat(SEGMENT_MAX);
    const longest = [seg, seg, seg, seg].join('.');
    expect(longest.length).toBe(KEY_MAX_LENGTH);
    expect(isValidKey(longest)).toBe(true);
    expect(isValidKey(`${longest}x`)).toBe(false);
  });

  it('parseKey splits a valid key into its four named parts', () => {
    expect(parseKey('in.gen.track.page')).toEqual({ direction: 'in', channel: 'gen', service: 'track', name: 'page' });
    expect(parseKey('in.sys.funnel.checkout-v2')).toEqual({ direction: 'in', channel: 'sys', service: 'funnel', name: 'checkout-v2' });
  });

  it('parseKey throws FLOW_ERR_KEY_INVALID naming the key for an invalid key', () => {
    const err = flowErrorOf(() => parseKey('in.gen.track'), 'FLOW_ERR_KEY_INVALID');
    expect(err.message).toBe('invalid routing key "in.gen.track": expected 4 segments, got 3');
  });
});

describe('keys - keyFromServiceName', () => {
  it('builds in.gen.{service}.{name}', () => {
    expect(keyFromServiceName('track', 'page')).toBe('in.gen.track.page');
  });

  it('lower-cases ASCII service and name', () => {
    expect(keyFromServiceName('Track', 'PAGE_View')).toBe('in.gen.track.page_view');
  });

  it('applies service aliases after lower-casing', () => {
    const aliases = { t4k: 'track' };
    expect(keyFromServiceName('t4k', 'page', { aliases })).toBe('in.gen.track.page');
    expect(keyFromServiceName('T4K', 'page', { aliases })).toBe('in.gen.track.page');
    expect(keyFromServiceName('other', 'page', { aliases })).toBe('in.gen.other.page');
  });

  it('an alias does not apply to the name', () => {
    expect(keyFromServiceName('track', 't4k', { aliases: { t4k: 'track' } })).toBe('in.gen.track.t4k');
  });

  it('direction and channel can be overridden', () => {
    expect(keyFromServiceName('session', 'start', { channel: 'sys' })).toBe('in.sys.session.start');
    expect(keyFromServiceName('a', 'b', { direction: 'out' })).toBe('out.gen.a.b');
  });

  it.each([
    [undefined, 'page', 'service must be a string'],
    [42, 'page', 'service must be a string'],
    [{ toString: () => 'track' }, 'page', 'service must be a string'],
    ['track', null, 'name must be a string'],
    ['track', ['page'], 'name must be a string'],
  ])('non-string input %j / %j is FLOW_ERR_KEY_INVALID', (service, name, reason) => {
    const err = flowErrorOf(() => keyFromServiceName(service, name), 'FLOW_ERR_KEY_INVALID');
    expect(err.message).toContain(reason);
  });

  it.each([
    ['tr.ack', 'page', 'service:'],
    ['track', 'pa/ge', 'name:'],
    ['', 'page', 'service: empty segment'],
    ['track', '', 'name: empty segment'],
    ['track', 'page view', 'name:'],
    ['tr\u0430ck', 'page', 'service:'], // Cyrillic а
    ['track', '\u{1F600}', 'name:'],
    ['\u0130', 'page', 'service:'], // İ lower-cases to "i" + U+0307
    ['x'.repeat(SEGMENT_MAX + 1), 'page', `service: segment longer than ${SEGMENT_MAX} characters`],
  ])('bad characters in %j / %j are FLOW_ERR_KEY_INVALID naming the part', (service, name, reason) => {
    const err = flowErrorOf(() => keyFromServiceName(service, name), 'FLOW_ERR_KEY_INVALID');
    expect(err.message).toContain(reason);
  });

  it('a non-ASCII letter that lower-cases to ASCII (Kelvin sign) is rejected, not turned into "k"', () => {
    flowErrorOf(() => keyFromServiceName('trac\u212A', 'page'), 'FLOW_ERR_KEY_INVALID');
    flowErrorOf(() => keyFromServiceName('track', '\u212Aey'), 'FLOW_ERR_KEY_INVALID');
  });

  it('a 10 KB service is rejected with a short, clipped message', () => {
    const err = flowErrorOf(() => keyFromServiceName('s'.repeat(10 * 1024), 'page'), 'FLOW_ERR_KEY_INVALID');
    expect(err.message.length).toBeLessThan(200);
  });

  it('a 10 KB name of bad characters is rejected with a short, clipped message', () => {
    const err = flowErrorOf(() => keyFromServiceName('track', '\u{1F600}'.repeat(5 * 1024)), 'FLOW_ERR_KEY_INVALID');
    expect(err.message.length).toBeLessThan(300);
  });
});

describe('keys - keyFromPath', () => {
  it('/track/page gives the key, service and name', () => {
    expect(keyFromPath('/track/page')).toEqual({
      key: 'in.gen.track.page', service: 'track', name: 'page', projectId: undefined, format: undefined,
    });
  });

  it('/track/page/12 carries the project id', () => {
    expect(keyFromPath('/track/page/12')).toEqual({
      key: 'in.gen.track.page', service: 'track', name: 'page', projectId: 12, format: undefined,
    });
  });

  it('.json and .gif suffixes set the format', () => {
    expect(keyFromPath('/track/page.json')).toMatchObject({ key: 'in.gen.track.page', format: 'json', projectId: undefined });
    expect(keyFromPath('/track/page.gif')).toMatchObject({ key: 'in.gen.track.page', format: 'gif', projectId: undefined });
    expect(keyFromPath('/track/page/7.gif')).toMatchObject({ key: 'in.gen.track.page', format: 'gif', projectId: 7 });
    expect(keyFromPath('/track/page/7.json')).toMatchObject({ key: 'in.gen.track.page', format: 'json', projectId: 7 });
  });

  it('path segments are lower-cased and aliases applied', () => {
    expect(keyFromPath('/T4K/Page', { aliases: { t4k: 'track' } })).toMatchObject({
      key: 'in.gen.track.page', service: 'track', name: 'page',
    });
  });

  it('the largest 32-bit project id is accepted', () => {
    expect(keyFromPath(`/track/page/${2 ** 31 - 1}`)?.projectId).toBe(2 ** 31 - 1);
  });

  it.each(['abc', '-1', '1.5', '2147483648', '99999999999', '1e3', ' 1'])(
    'bad project id %j is FLOW_ERR_FIELD_INVALID naming projectId',
    (project) => {
      const err = flowErrorOf(() => keyFromPath(`/track/page/${project}`), 'FLOW_ERR_FIELD_INVALID');
      expect(err.message).toContain('"projectId"');
    },
  );

  it.each(['', '/', '/track', '/track/', 'track/page', '/a/b/c/d', '/a/b/c/d.gif', '/track.gif'])(
    'path %j of another shape gives null',
    (path) => {
      expect(keyFromPath(path)).toBeNull();
    },
  );

  it.each(['//page', '/track//', '/tr.ack/page', '/track/p%20ge', '/tr\u0430ck/page'])(
    'path %j of the right shape with a bad segment is FLOW_ERR_KEY_INVALID',
    (path) => {
      flowErrorOf(() => keyFromPath(path), 'FLOW_ERR_KEY_INVALID');
    },
  );

  it('a 10 KB path segment is rejected with a short message', () => {
    const err = flowErrorOf(() => keyFromPath(`/track/${'p'.repeat(10 * 1024)}`), 'FLOW_ERR_KEY_INVALID');
    expect(err.message.length).toBeLessThan(200);
  });
});

describe('keys - patterns', () => {
  it.each([
    'in.gen.track.page',
    'in.gen.track.*',
    '*.*.*.*',
    'in.*.track.page',
    'in.gen.track.**',
    'in.gen.**',
    'in.**',
    '**',
    'in.*.**',
  ])('accepts the pattern %s', (pattern) => {
    expect(patternProblem(pattern)).toBeNull();
    expect(assertPattern(pattern)).toBe(pattern);
  });

  it.each([
    ['in.**.page', '"**" is allowed only as the last segment'],
    ['**.page', '"**" is allowed only as the last segment'],
    ['in.gen.**.page', '"**" is allowed only as the last segment'],
    ['in.gen.track', 'fewer than 4 segments without a trailing "**"'],
    ['in.gen.*', 'fewer than 4 segments without a trailing "**"'],
    ['in', 'fewer than 4 segments without a trailing "**"'],
    ['in.gen.track.page.x', 'more than 4 segments'],
    ['in.gen.track.page.**', 'more than 4 segments'],
    ['in..track.page', 'empty segment'],
    ['', 'empty segment'],
    ['in.gen.Track.*', 'character outside'],
    ['in.gen.tr*.page', 'character outside'],
    ['in.gen.***.page', 'character outside'],
  ])('rejects the pattern %j (%s)', (pattern, reason) => {
    expect(patternProblem(pattern)).toContain(reason);
    const err = flowErrorOf(() => assertPattern(pattern), 'FLOW_ERR_PATTERN_INVALID');
    expect(err.message).toContain(reason);
  });

  it('a 10 KB pattern is rejected with a short message', () => {
    const pattern = `in.gen.${'a'.repeat(10 * 1024)}.*`;
    expect(patternProblem(pattern)).toBe('too long');
    const err = flowErrorOf(() => assertPattern(pattern), 'FLOW_ERR_PATTERN_INVALID');
    expect(err.message.length).toBeLessThan(200);
  });

  it('createKeyMatcher refuses an invalid pattern', () => {
    flowErrorOf(() => createKeyMatcher([{ pattern: 'in.**.x', value: 1 }]), 'FLOW_ERR_PATTERN_INVALID');
  });
});

describe('keys - createKeyMatcher', () => {
  it('* matches exactly one segment', () => {
    const m = createKeyMatcher([{ pattern: 'in.gen.track.*', value: 'a' }, { pattern: 'in.*.track.page', value: 'b' }]);
    expect(m.match('in.gen.track.page')).toEqual(['a', 'b']);
    expect(m.match('in.gen.track.click')).toEqual(['a']);
    expect(m.match('in.sys.track.page')).toEqual(['b']);
    expect(m.match('in.gen.other.page')).toEqual([]);
  });

  it('a trailing ** matches the rest of the key', () => {
    const m = createKeyMatcher([
      { pattern: 'in.**', value: 'in' },
      { pattern: 'in.gen.**', value: 'gen' },
      { pattern: 'in.gen.track.**', value: 'track' },
      { pattern: '**', value: 'all' },
    ]);
    expect(m.match('in.gen.track.page')).toEqual(['in', 'gen', 'track', 'all']);
    expect(m.match('in.sys.session.start')).toEqual(['in', 'all']);
    expect(m.match('out.gen.track.page')).toEqual(['all']);
  });

  it('** needs at least one segment and * needs a non-empty one', () => {
    const m = createKeyMatcher([
      { pattern: 'in.gen.track.**', value: 'rest' },
      { pattern: 'in.gen.track.*', value: 'one' },
      { pattern: 'in.**', value: 'in' },
    ]);
    expect(m.match('in.gen.track')).toEqual([]);
    expect(m.match('in.gen.track.')).toEqual([]);
    expect(m.match('in.gen..page')).toEqual([]);
  });

  it('keys that are not valid keys match nothing', () => {
    const m = createKeyMatcher([{ pattern: '**', value: 'all' }, { pattern: '*.*.*.*', value: 'four' }]);
    expect(m.match('in.gen.track.page')).toEqual(['all', 'four']);
    for (const key of ['', 'in.gen.track', 'in.gen.track.page.x', 'IN.GEN.TRACK.PAGE', 'in.gen.tr\u0430ck.page', `in.gen.${'a'.repeat(10_000)}.x`]) {
      expect(m.match(key)).toEqual([]);
    }
  });

  it('results come in subscription order, not pattern specificity', () => {
    const m = createKeyMatcher([
      { pattern: '**', value: 1 },
      { pattern: 'in.gen.track.page', value: 2 },
      { pattern: 'in.*.*.*', value: 3 },
      { pattern: 'in.gen.**', value: 4 },
      { pattern: 'in.gen.track.page', value: 5 },
    ]);
    expect(m.match('in.gen.track.page')).toEqual([1, 2, 3, 4, 5]);
  });

  it('a value subscribed with several matching patterns is returned once, at its first subscription', () => {
    const a = { name: 'a' };
    const b = { name: 'b' };
    const m = createKeyMatcher([
      { pattern: 'in.gen.track.*', value: a },
      { pattern: 'in.gen.**', value: b },
      { pattern: 'in.**', value: a },
      { pattern: 'in.gen.track.page', value: a },
    ]);
    expect(m.match('in.gen.track.page')).toEqual([a, b]);
    expect(m.match('in.gen.other.x')).toEqual([b, a]);
  });

  it('size is the number of subscriptions', () => {
    expect(createKeyMatcher([]).size).toBe(0);
    expect(createKeyMatcher([{ pattern: '**', value: 1 }, { pattern: 'in.**', value: 1 }]).size).toBe(2);
  });

  it('a matcher with no subscriptions matches nothing', () => {
    expect(createKeyMatcher<number>([]).match('in.gen.track.page')).toEqual([]);
  });

  it('results are frozen so one caller cannot change another\'s routes', () => {
    const m = createKeyMatcher([{ pattern: 'in.**', value: 'x' }]);
    const hit = m.match('in.gen.track.page');
    expect(Object.isFrozen(hit)).toBe(true);
    expect(Object.isFrozen(m.match('out.gen.a.b'))).toBe(true);
    expect(() => (hit as string[]).push('y')).toThrow(TypeError);
    expect(m.match('in.gen.track.page')).toEqual(['x']);
  });

  it('with 10,000 subscriptions each key returns exactly the right subscribers', () => {
    const subs: Subscription<number>[] = [];
    for (let i = 0; i < 10_000; i++) {
      subs.push({ pattern: `in.gen.s${i % 100}.n${i}`, value: subs.length });
      // Sprinkle wildcards among the literals so order across kinds is exercised.
      if (i % 1000 === 0) subs.push({ pattern: `in.gen.s${(i / 1000) % 100}.*`, value: subs.length });
    }
    subs.splice(0, 0, { pattern: 'in.**', value: -1 });
    subs.splice(5000, 0, { pattern: '*.gen.*.n42', value: -2 });
    subs.splice(7000, 0, { pattern: 'in.gen.s42.**', value: -3 });
    subs.push({ pattern: '*.*.*.*', value: -4 });
    subs.push({ pattern: 'in.gen.s42.n42', value: -5 });
    const m = createKeyMatcher(subs);
    expect(m.size).toBe(subs.length);

    expect(m.match('in.gen.s42.n42')).toEqual(referenceMatch(subs, 'in.gen.s42.n42'));
    // in.**, the literal, *.gen.*.n42, in.gen.s42.**, *.*.*.*, the duplicate literal.
    expect(m.match('in.gen.s42.n42')).toHaveLength(6);
    expect(m.match('in.gen.s42.n42')[0]).toBe(-1);
    const keys = [
      'in.gen.s0.n0', 'in.gen.s0.n9900', 'in.gen.s7.n7', 'in.gen.s9.n9999', 'in.gen.s1.n42',
      'in.gen.s5.nothing', 'out.gen.s42.n42', 'in.sys.s42.n42', 'in.gen.s99.n10000', 'x.y.z.w',
    ];
    for (const key of keys) expect(m.match(key), key).toEqual(referenceMatch(subs, key));
    for (let i = 0; i < 10_000; i += 97) {
      const key = `in.gen.s${i % 100}.n${i}`;
      expect(m.match(key), key).toEqual(referenceMatch(subs, key));
    }
  });

  it('the memo cache is bounded: a flood of distinct keys evicts it and results stay correct', () => {
    const subs: Subscription<string>[] = [
      { pattern: 'in.gen.track.*', value: 'track' },
      { pattern: 'in.**', value: 'in' },
      { pattern: '*.*.*.page', value: 'page' },
    ];
    const m = createKeyMatcher(subs, { cacheSize: 8 });
    const first = m.match('in.gen.track.page');
    expect(first).toEqual(['track', 'in', 'page']);
    // Served from the memo while it is there: the same frozen array.
    expect(m.match('in.gen.track.page')).toBe(first);

    for (let i = 0; i < 1000; i++) {
      const key = i % 2 === 0 ? `in.gen.track.k${i}` : `out.gen.x${i}.page`;
      expect(m.match(key)).toEqual(referenceMatch(subs, key));
    }
    const again = m.match('in.gen.track.page');
    // Recomputed after the flood cleared the memo, and still right.
    expect(again).not.toBe(first);
    expect(again).toEqual(['track', 'in', 'page']);
    expect(m.match('in.gen.track.page')).toBe(again);
  });

  it('below the cache size, repeated keys are served from the memo', () => {
    const m = createKeyMatcher([{ pattern: 'in.**', value: 'in' }], { cacheSize: 2000 });
    const first = m.match('in.gen.track.page');
    for (let i = 0; i < 1000; i++) m.match(`in.gen.track.k${i}`);
    expect(m.match('in.gen.track.page')).toBe(first);
  });
});

describe('keys - path trailing slash', () => {
  it('/track/page/ is the same route as /track/page', () => {
    expect(keyFromPath('/track/page/')).toEqual(keyFromPath('/track/page'));
  });
});
