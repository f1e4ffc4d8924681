import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../engine/config/index.js';
import { createEnvelope, type Envelope } from '../../engine/envelope/index.js';
import {
  compileFilters, createFunnels, type FilterConfig, type FunnelConfigInput, type Funnels, type FunnelsState,
} from '../../actors/machines/index.js';

/**
 * Funnel machines against expectations worked out by hand. Each row lists the
 * events (step name, seconds after T0, optional data / page URL) and the steps
 * the funnel must report, written `index+msSinceStart`, with `!` when that
 * step converts. The rules these follow are the ones in docs/funnels.md.
 */

const T0 = 1_700_000_000_000;

type Ev = readonly [name: string, seconds: number, extra?: { data?: Record<string, unknown>; url?: string }];

function envelope(name: string, ts: number, extra: Ev[2] = {}): Envelope {
  return createEnvelope({
    key: `in.gen.track.${name}`, projectId: 1, uid: 'u1', receivedAt: ts, ts, ip: '127.0.0.1', userAgent: '',
    data: extra.data, pageUrl: extra.url,
  });
}

/** The stored form (by funnel name) of a state, through JSON as the state store keeps it. */
function stored(funnels: Funnels, state: FunnelsState): Record<string, { s: string }> {
  return JSON.parse(JSON.stringify(funnels.persist(state))) as Record<string, { s: string }>;
}

/** Runs events through `funnels` and returns the reached steps of funnel `name`, in the notation above. */
function run(funnels: Funnels, events: readonly Ev[], state: FunnelsState = funnels.initial()): { reached: string[]; state: FunnelsState } {
  const reached: string[] = [];
  for (const [name, seconds, extra] of events) {
    const out = funnels.step(state, envelope(name, T0 + seconds * 1000, extra));
    if (out === null) continue;
    state = out.state;
    for (const r of out.reached) reached.push(`${r.stepIndex}+${r.sinceStartMs}${r.converted ? '!' : ''}`);
  }
  return { reached, state };
}

const VIEW_CART_BUY = [
  { name: 'view', pattern: 'in.gen.track.view' },
  { name: 'cart', pattern: 'in.gen.track.cart' },
  { name: 'buy', pattern: 'in.gen.track.buy' },
];

function funnel(overrides: Partial<FunnelConfigInput>): FunnelConfigInput {
  return { name: 'shop', steps: VIEW_CART_BUY, windowMs: 60_000, ...overrides };
}

/** Per-step window: the cart must follow within 3 s of the previous step. */
const CART_WITHIN_3S = [VIEW_CART_BUY[0]!, { ...VIEW_CART_BUY[1]!, withinMs: 3_000 }, VIEW_CART_BUY[2]!];
const EXCLUSIONS: NonNullable<FunnelConfigInput['exclusions']> = [
  { pattern: 'in.gen.track.refund' },
  { pattern: 'in.gen.track.logout', filters: [{ field: 'data.forced', op: 'eq', value: true }] },
];
const FILTERED_STEPS: FunnelConfigInput['steps'] = [
  { name: 'view', pattern: 'in.gen.track.view', filters: [{ field: 'pageUrl', op: 'contains', value: '/product/' }] },
  { name: 'cart', pattern: 'in.gen.track.cart' },
  { name: 'buy', pattern: 'in.gen.track.buy', filters: [{ field: 'data.price', op: 'gte', value: 100 }] },
];
const PRODUCT = { url: 'https://shop.example/product/1' };

interface Row {
  readonly title: string;
  readonly config: FunnelConfigInput;
  readonly events: readonly Ev[];
  readonly expected: readonly string[];
}

const MATRIX: readonly Row[] = [
  // Modes, no windows in play.
  { title: 'strict - in order converts; unrelated keys between are ignored', config: funnel({ mode: 'strict' }),
    events: [['view', 0], ['other', 1], ['cart', 5], ['buy', 9]], expected: ['0+0', '1+5000', '2+9000!'] },
  { title: 'strict - a step event out of order resets; later steps alone do not restart', config: funnel({ mode: 'strict' }),
    events: [['view', 0], ['buy', 5], ['cart', 6], ['buy', 7]], expected: ['0+0'] },
  { title: 'strict - a repeated first step begins again from it', config: funnel({ mode: 'strict' }),
    events: [['view', 0], ['view', 3], ['cart', 5], ['buy', 9]], expected: ['0+0', '0+0', '1+2000', '2+6000!'] },
  { title: 'ordered - step events between are skipped', config: funnel({ mode: 'ordered' }),
    events: [['view', 0], ['buy', 5], ['cart', 6], ['buy', 7]], expected: ['0+0', '1+6000', '2+7000!'] },
  { title: 'ordered - the first occurrence of step 0 anchors the attempt', config: funnel({ mode: 'ordered' }),
    events: [['view', 0], ['view', 3], ['cart', 5], ['buy', 9]], expected: ['0+0', '1+5000', '2+9000!'] },
  { title: 'ordered - later steps before the first do nothing', config: funnel({ mode: 'ordered' }),
    events: [['cart', 0], ['view', 1], ['cart', 2], ['buy', 3]], expected: ['0+0', '1+1000', '2+2000!'] },
  { title: 'ordered - a converted funnel can be entered again', config: funnel({ mode: 'ordered' }),
    events: [['view', 0], ['cart', 1], ['buy', 2], ['view', 3], ['cart', 4]], expected: ['0+0', '1+1000', '2+2000!', '0+0', '1+1000'] },
  { title: 'any - steps in any order', config: funnel({ mode: 'any' }),
    events: [['buy', 0], ['view', 2], ['cart', 4]], expected: ['2+0', '0+2000', '1+4000!'] },
  { title: 'any - each step counts once', config: funnel({ mode: 'any' }),
    events: [['buy', 0], ['buy', 1], ['view', 2], ['cart', 3]], expected: ['2+0', '0+2000', '1+3000!'] },

  // Conversion window (10 s from the first step).
  { title: 'ordered window - a step after the window is not reached', config: funnel({ windowMs: 10_000 }),
    events: [['view', 0], ['cart', 5], ['buy', 11]], expected: ['0+0', '1+5000'] },
  { title: 'ordered window - exactly at the window still counts', config: funnel({ windowMs: 10_000 }),
    events: [['view', 0], ['cart', 5], ['buy', 10]], expected: ['0+0', '1+5000', '2+10000!'] },
  { title: 'ordered window - a first step after expiry begins a new attempt', config: funnel({ windowMs: 10_000 }),
    events: [['view', 0], ['cart', 5], ['view', 12], ['cart', 14], ['buy', 20]], expected: ['0+0', '1+5000', '0+0', '1+2000', '2+8000!'] },
  { title: 'strict window - a late next step resets', config: funnel({ mode: 'strict', windowMs: 10_000 }),
    events: [['view', 0], ['cart', 11], ['buy', 12]], expected: ['0+0'] },
  { title: 'any window - after expiry any step begins a new attempt', config: funnel({ mode: 'any', windowMs: 10_000 }),
    events: [['buy', 0], ['view', 5], ['cart', 11]], expected: ['2+0', '0+5000', '1+0'] },

  // Per-step window: cart within 3 s of the previous step.
  { title: 'ordered step window - within it converts', config: funnel({ steps: CART_WITHIN_3S }),
    events: [['view', 0], ['cart', 2], ['buy', 30]], expected: ['0+0', '1+2000', '2+30000!'] },
  { title: 'ordered step window - too late breaks the attempt', config: funnel({ steps: CART_WITHIN_3S }),
    events: [['view', 0], ['cart', 4], ['buy', 5]], expected: ['0+0'] },
  { title: 'ordered step window - a fresh first step after the step window begins again', config: funnel({ steps: CART_WITHIN_3S }),
    events: [['view', 0], ['view', 5], ['cart', 7]], expected: ['0+0', '0+0', '1+2000'] },
  { title: 'any step window - a late step is not counted, and can count later', config: funnel({ mode: 'any', steps: CART_WITHIN_3S }),
    events: [['view', 0], ['cart', 5], ['buy', 6], ['cart', 7]], expected: ['0+0', '2+6000', '1+7000!'] },
  { title: 'any step window - no constraint on the first step reached', config: funnel({ mode: 'any', steps: CART_WITHIN_3S }),
    events: [['cart', 0], ['view', 1], ['buy', 2]], expected: ['1+0', '0+1000', '2+2000!'] },

  // Exclusions: a refund, or a forced logout.
  { title: 'exclusion - aborts an attempt in progress', config: funnel({ exclusions: EXCLUSIONS }),
    events: [['view', 0], ['refund', 1], ['cart', 2], ['buy', 3]], expected: ['0+0'] },
  { title: 'exclusion - its filters must pass', config: funnel({ exclusions: EXCLUSIONS }),
    events: [['view', 0], ['logout', 1, { data: { forced: false } }], ['cart', 2], ['buy', 3]], expected: ['0+0', '1+2000', '2+3000!'] },
  { title: 'exclusion - does nothing when no attempt is in progress', config: funnel({ exclusions: EXCLUSIONS }),
    events: [['refund', 0], ['view', 1], ['cart', 2], ['buy', 3]], expected: ['0+0', '1+1000', '2+2000!'] },
  { title: 'exclusion - any mode, the next step begins anew', config: funnel({ mode: 'any', exclusions: EXCLUSIONS }),
    events: [['buy', 0], ['refund', 1], ['view', 2]], expected: ['2+0', '0+0'] },
  { title: 'exclusion - strict mode, filtered exclusion aborts', config: funnel({ mode: 'strict', exclusions: EXCLUSIONS }),
    events: [['view', 0], ['logout', 1, { data: { forced: true } }], ['cart', 2]], expected: ['0+0'] },

  // Filters: product pages only; purchases of 100 or more.
  { title: 'filters - a failing filter is not the step (ordered waits)', config: funnel({ steps: FILTERED_STEPS }),
    events: [['view', 0, PRODUCT], ['cart', 1], ['buy', 2, { data: { price: 50 } }], ['buy', 3, { data: { price: 150 } }]],
    expected: ['0+0', '1+1000', '2+3000!'] },
  { title: 'filters - strict: a step pattern failing its filter resets', config: funnel({ mode: 'strict', steps: FILTERED_STEPS }),
    events: [['view', 0, PRODUCT], ['cart', 1], ['buy', 2, { data: { price: 50 } }], ['buy', 3, { data: { price: 150 } }]],
    expected: ['0+0', '1+1000'] },
  { title: 'filters - the first step filtered out starts nothing', config: funnel({ steps: FILTERED_STEPS }),
    events: [['view', 0, { url: 'https://shop.example/home' }], ['cart', 1], ['buy', 2, { data: { price: 500 } }]], expected: [] },
  { title: 'filters - no coercion: "150" is not a number', config: funnel({ steps: FILTERED_STEPS }),
    events: [['view', 0, PRODUCT], ['cart', 1], ['buy', 2, { data: { price: '150' } }]], expected: ['0+0', '1+1000'] },

  // Out-of-order client timestamps: the funnel clock does not run backwards.
  { title: 'out of order - an older event counts at the latest step time', config: funnel({ windowMs: 10_000 }),
    events: [['view', 100], ['cart', 95], ['buy', 104]], expected: ['0+0', '1+0', '2+4000!'] },
  { title: 'out of order - an old event cannot extend an expired window', config: funnel({ windowMs: 10_000 }),
    events: [['view', 100], ['cart', 105], ['buy', 120], ['buy', 101]], expected: ['0+0', '1+5000'] },
];

describe('funnel machines - matrix (modes × windows × exclusions × filters)', () => {
  for (const engine of ['compiled', 'xstate'] as const) {
    describe(`engine ${engine}`, () => {
      for (const row of MATRIX) {
        it(row.title, () => {
          const funnels = createFunnels([row.config], { engine });
          expect(run(funnels, row.events).reached).toEqual(row.expected);
        });
      }
    });
  }
});

describe('funnel machines - several funnels and the pre-filter', () => {
  const funnels = createFunnels([
    funnel({ name: 'a' }),
    funnel({ name: 'b', mode: 'any', exclusions: EXCLUSIONS }),
    { name: 'c', steps: [{ pattern: 'in.gen.track.*' }, { pattern: 'in.gen.track.buy' }] },
  ]);

  it('patterns - lists every step and exclusion pattern once', () => {
    expect([...funnels.patterns].sort()).toEqual(
      ['in.gen.track.*', 'in.gen.track.buy', 'in.gen.track.cart', 'in.gen.track.logout', 'in.gen.track.refund', 'in.gen.track.view'],
    );
  });

  it('step - an event no funnel listens to changes nothing', () => {
    const s = run(funnels, [['view', 0]]).state;
    expect(funnels.step(s, createEnvelope({ key: 'in.gen.page.load', projectId: 1, uid: 'u', receivedAt: T0, ip: '', userAgent: '' }))).toBeNull();
  });

  it('step - one event advances every funnel it concerns, each reported with its key and actions', () => {
    const withActions = createFunnels([
      funnel({ name: 'a', steps: [VIEW_CART_BUY[0]!, { ...VIEW_CART_BUY[1]!, actions: [{ type: 'push', params: { offer: 'free-shipping' } }] }] }),
      funnel({ name: 'b', mode: 'any' }),
    ]);
    const s1 = withActions.step(withActions.initial(), envelope('view', T0))!;
    const s2 = withActions.step(s1.state, envelope('cart', T0 + 1000))!;
    expect(s2.reached.map((r) => [r.key, r.stepName, r.reachedCount, r.progress, r.converted])).toEqual([
      ['in.sys.funnel.a', 'cart', 2, 1, true],
      ['in.sys.funnel.b', 'cart', 2, 2 / 3, false],
    ]);
    expect(s2.reached[0]!.actions).toEqual([{ type: 'push', params: { offer: 'free-shipping' } }]);
    expect(Object.keys(withActions.persist(s2.state))).toEqual(['b']);
  });

  it('step - writes the user\'s own state in place; a pruned-empty state is shared and copied, never written', () => {
    const initial = funnels.initial();
    expect(funnels.initial()).not.toBe(initial);
    const first = funnels.step(initial, envelope('view', T0))!;
    expect(first.state).toBe(initial);
    const second = funnels.step(first.state, envelope('cart', T0 + 1000))!;
    expect(second.state).toBe(initial);
    expect(Object.keys(stored(funnels, second.state)).sort()).toEqual(['a', 'b', 'c']);
    // Long after every window: passivation's prune leaves nothing, and gives the shared empty state.
    const pruned = funnels.prune(second.state, T0 + 2 * 86_400_000);
    const alsoPruned = funnels.prune(run(funnels, [['view', 0]]).state, T0 + 2 * 86_400_000);
    expect(alsoPruned).toBe(pruned);
    const again = funnels.step(pruned, envelope('view', T0))!;
    expect(again.state).not.toBe(pruned);
    expect(Object.keys(stored(funnels, again.state)).sort()).toEqual(['a', 'b', 'c']);
    expect(funnels.persist(alsoPruned)).toEqual({});
  });

  it('state - idle funnels take no room; a converted funnel leaves the state', () => {
    expect(funnels.persist(funnels.initial())).toEqual({});
    const { state } = run(funnels, [['view', 0], ['cart', 1]]);
    expect(Object.keys(stored(funnels, state)).sort()).toEqual(['a', 'b', 'c']);
    const after = run(funnels, [['buy', 2], ['view', 3]], state).state;
    // a converted then restarted at view; b converted (view, cart, buy) then
    // restarted at view; c converted at buy then restarted at view.
    expect(Object.values(stored(funnels, after)).map((p) => p.s)).toEqual(['reached_1', 'reached_1', 'reached_1']);
  });
});

describe('funnel machines - compiled table agrees with xstate transition()', () => {
  it('differential - 3 000 random events per mode give the same states and reached steps', () => {
    let seed = 42;
    const random = () => ((seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32);
    const names = ['view', 'cart', 'buy', 'refund', 'logout', 'other'];
    for (const mode of ['strict', 'ordered', 'any'] as const) {
      const config = [funnel({ mode, windowMs: 20_000, steps: FILTERED_STEPS.map((s, i) => (i === 1 ? { ...s, withinMs: 4_000 } : s)), exclusions: EXCLUSIONS })];
      const fast = createFunnels(config);
      const reference = createFunnels(config, { engine: 'xstate' });
      let a = fast.initial();
      let b = reference.initial();
      let ts = T0;
      for (let i = 0; i < 3_000; i++) {
        ts += Math.floor(random() * 6_000) - 1_000; // sometimes backwards
        const name = names[Math.floor(random() * names.length)]!;
        const env = envelope(name, ts, { url: random() < 0.8 ? PRODUCT.url : '/', data: { price: Math.floor(random() * 200), forced: random() < 0.5 } });
        const ra = fast.step(a, env);
        const rb = reference.step(b, env);
        expect(ra?.reached ?? [], `${mode} event ${i}`).toEqual(rb?.reached ?? []);
        a = ra?.state ?? a;
        b = rb?.state ?? b;
        expect(a).toEqual(b);
      }
    }
  });
});

describe('funnel machines - snapshots', () => {
  const configs = [funnel({ name: 'a' }), funnel({ name: 'b', mode: 'any' }), funnel({ name: 'c', mode: 'strict', steps: CART_WITHIN_3S })];

  it('round trip - state → JSON → state continues exactly as the original', () => {
    const funnels = createFunnels(configs);
    const first = run(funnels, [['view', 0], ['cart', 2]]);
    const restored = funnels.restore(stored(funnels, first.state));
    expect(restored).toEqual(first.state);
    expect(stored(funnels, restored)).toEqual(stored(funnels, first.state));
    const rest: Ev[] = [['other', 3], ['buy', 4], ['view', 5]];
    expect(run(funnels, rest, restored)).toEqual(run(funnels, rest, first.state));
  });

  it('round trip - a new process (new createFunnels) restores and continues', () => {
    const original = createFunnels(configs);
    const before = stored(original, run(original, [['view', 0], ['cart', 2]]).state);
    const after = createFunnels(configs);
    // a (ordered) and b (any) had view and cart: buy converts both; c (strict)
    // had view, then cart 2 s later, within its 3 s: buy converts it too.
    expect(run(after, [['buy', 4]], after.restore(before)).reached).toEqual(['2+4000!', '2+4000!', '2+4000!']);
  });

  it('restore - progress of an edited funnel, unknown funnels and garbage are dropped', () => {
    const original = createFunnels(configs);
    const state = stored(original, run(original, [['view', 0]]).state);
    const edited = createFunnels([funnel({ name: 'a', windowMs: 5_000 }), configs[1]!]);
    expect(Object.keys(edited.persist(edited.restore(state)))).toEqual(['b']);
    expect(edited.persist(edited.restore({ b: { s: 'reached_9', t0: 1, tl: 1, m: 1, v: 'x' } }))).toEqual({});
    expect(edited.persist(edited.restore('nonsense'))).toEqual({});
    expect(edited.persist(edited.restore({ b: { s: 'reached_1', t0: 'x' } }))).toEqual({});
  });

  it('restore - editing only actions or step names keeps progress', () => {
    const original = createFunnels(configs);
    const state = stored(original, run(original, [['view', 0]]).state);
    const renamed = createFunnels([funnel({ name: 'a', steps: VIEW_CART_BUY.map((s, i) => ({ ...s, name: `s${i}`, actions: [{ type: 'reply' as const, data: { i } }] })) })]);
    expect(Object.keys(renamed.persist(renamed.restore(state)))).toEqual(['a']);
  });

  it('snapshotOf - the progress is an xstate snapshot of the declared machine', () => {
    const funnels = createFunnels(configs);
    const { state } = run(funnels, [['view', 0], ['cart', 2]]);
    const snap = funnels.snapshotOf(state, 'a');
    expect(snap.value).toBe('reached_2');
    expect(snap.context).toEqual({ startedAt: T0, lastAt: T0 + 2000, reachedMask: 0b11 });
    const json = funnels.machines.get('a')!.toJSON() as { states: Record<string, { description?: string }> };
    expect(Object.keys(json.states)).toEqual(['idle', 'reached_1', 'reached_2']);
    expect(json.states.reached_1!.description).toBe('reached "view" (1 of 3), waiting for "cart"');
  });

  it('prune - drops attempts that can no longer convert, keeps live ones', () => {
    const funnels = createFunnels([funnel({ name: 'a', windowMs: 10_000 }), funnel({ name: 'c', steps: CART_WITHIN_3S })]);
    const { state } = run(funnels, [['view', 0]]);
    expect(Object.keys(stored(funnels, funnels.prune(state, T0 + 2_000)))).toEqual(['a', 'c']);
    expect(funnels.prune(state, T0 + 2_000)).toBe(state);
    // c's cart had 3 s; a's window is 10 s.
    expect(Object.keys(stored(funnels, funnels.prune(state, T0 + 5_000)))).toEqual(['a']);
    expect(funnels.persist(funnels.prune(state, T0 + 11_000))).toEqual({});
  });
});

describe('funnel machines - filters', () => {
  const env = createEnvelope({
    key: 'in.gen.track.buy', projectId: 7, uid: 'u1', receivedAt: T0, ip: '', userAgent: '', pageUrl: 'https://x.example/a',
    data: { price: 120, tags: ['sale', 'new'], nested: { plan: 'pro' }, none: null },
  });
  const rows: readonly [FilterConfig, boolean][] = [
    [{ field: 'data.price', op: 'eq', value: 120 }, true],
    [{ field: 'data.price', op: 'ne', value: 120 }, false],
    [{ field: 'data.missing', op: 'ne', value: 1 }, true],
    [{ field: 'data.price', op: 'gt', value: 120 }, false],
    [{ field: 'data.price', op: 'gte', value: 120 }, true],
    [{ field: 'data.price', op: 'lt', value: 121 }, true],
    [{ field: 'data.price', op: 'lte', value: 119 }, false],
    [{ field: 'data.nested.plan', op: 'in', value: ['pro', 'team'] }, true],
    [{ field: 'data.nested.plan', op: 'in', value: ['free'] }, false],
    [{ field: 'data.tags', op: 'contains', value: 'sale' }, true],
    [{ field: 'pageUrl', op: 'contains', value: 'x.example' }, true],
    [{ field: 'data.price', op: 'contains', value: '12' }, false],
    [{ field: 'data.none', op: 'exists', value: true }, false],
    [{ field: 'data.none', op: 'exists', value: false }, true],
    [{ field: 'data.constructor', op: 'exists', value: true }, false],
    [{ field: 'projectId', op: 'eq', value: 7 }, true],
    [{ field: 'service', op: 'eq', value: 'track' }, true],
  ];
  for (const [filter, expected] of rows) {
    it(`${filter.field} ${filter.op} ${JSON.stringify(filter.value)} → ${expected}`, () => {
      expect(compileFilters([filter])(env)).toBe(expected);
    });
  }
});

describe('funnel machines - invalid configs', () => {
  function problemsOf(raw: unknown, options = {}): readonly string[] {
    try {
      createFunnels(raw, options);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).problems;
    }
    throw new Error('expected a ConfigError');
  }
  const base = { name: 'shop', steps: [{ pattern: 'in.gen.track.view' }] };
  const rows: readonly [string, unknown, string][] = [
    ['bad funnel name', [{ ...base, name: 'Bad Name' }], '[0].name: must be 1-64 characters of [a-z0-9_-]'],
    ['no steps', [{ ...base, steps: [] }], '[0].steps: '],
    ['bad pattern', [{ ...base, steps: [{ pattern: 'in.gen' }] }], '[0].steps[0].pattern: invalid key pattern "in.gen"'],
    ['unknown filter op', [{ ...base, steps: [{ pattern: 'in.**', filters: [{ field: 'data.x', op: 'between', value: 1 }] }] }], '[0].steps[0].filters[0].op: '],
    ['gt needs a number', [{ ...base, steps: [{ pattern: 'in.**', filters: [{ field: 'data.x', op: 'gt', value: '1' }] }] }], '[0].steps[0].filters[0].value: '],
    ['filter field outside the envelope', [{ ...base, steps: [{ pattern: 'in.**', filters: [{ field: 'price', op: 'exists' }] }] }], '[0].steps[0].filters[0].field: must be an envelope field'],
    ['unknown key', [{ ...base, window: 5 }], '[0].window: unknown key'],
    ['unknown mode', [{ ...base, mode: 'loose' }], '[0].mode: '],
    ['withinMs on the first ordered step', [{ ...base, steps: [{ pattern: 'in.**', withinMs: 10 }] }], '[0].steps[0].withinMs: the first step has no previous step'],
    ['duplicate step names', [{ ...base, steps: [{ name: 'a', pattern: 'in.**' }, { name: 'a', pattern: 'in.**' }] }], '[0].steps[1].name: duplicate step name "a"'],
    ['duplicate funnel names', [base, base], '[1].name: duplicate funnel name "shop"'],
    ['webhook not http', [{ ...base, steps: [{ pattern: 'in.**', actions: [{ type: 'webhook', url: 'ftp://x.example' }] }] }], '[0].steps[0].actions[0].url: '],
    ['too many steps', [{ ...base, steps: Array.from({ length: 17 }, () => ({ pattern: 'in.**' })) }], '[0].steps: '],
    ['abandonment from the last step', [{ ...base, steps: [{ pattern: 'in.**' }, { pattern: 'in.**' }], abandon: { afterMs: 60_000, fromStep: 1 } }], '[0].abandon.fromStep: must be below the last step'],
    ['abandonment too soon', [{ ...base, steps: [{ pattern: 'in.**' }, { pattern: 'in.**' }], abandon: { afterMs: 10 } }], '[0].abandon.afterMs: '],
    ['abandonment cannot reply', [{ ...base, steps: [{ pattern: 'in.**' }, { pattern: 'in.**' }], abandon: { afterMs: 60_000, actions: [{ type: 'reply', data: {} }] } }], '[0].abandon.actions[0]'],
  ];
  for (const [title, raw, expected] of rows) {
    it(`${title} - names the path`, () => {
      expect(problemsOf(raw).some((p) => p.startsWith(expected)), JSON.stringify(problemsOf(raw))).toBe(true);
    });
  }

  it('every problem is reported at once, under the caller\'s path', () => {
    const problems = problemsOf([{ ...base, name: 'X', mode: 'loose', extra: 1 }], { configPath: ['handlers', 0, 'options', 'funnels'] });
    expect(problems).toHaveLength(3);
    for (const p of problems) expect(p.startsWith('handlers[0].options.funnels[0].')).toBe(true);
  });
});

describe('funnel machines - abandonment', () => {
  const MIN = 60_000;
  const funnels = createFunnels([{
    name: 'checkout', mode: 'ordered', windowMs: 3_600_000, steps: VIEW_CART_BUY,
    abandon: { afterMs: 10 * MIN, fromStep: 1, actions: [{ type: 'push', params: { offer: 'free-shipping' } }] },
  }]);
  const at = (name: string, seconds: number): Envelope => envelope(name, T0 + seconds * 1000);

  function stepAll(names: readonly Ev[]): FunnelsState {
    let state = funnels.initial();
    for (const [name, seconds] of names) state = funnels.step(state, at(name, seconds))?.state ?? state;
    return state;
  }

  it('arming - steps before fromStep arm nothing; reaching it arms afterMs from the server time', () => {
    expect(funnels.nextDeadline(stepAll([['view', 0]]))).toBe(0);
    expect(funnels.nextDeadline(stepAll([['view', 0], ['cart', 60]]))).toBe(T0 + 60_000 + 10 * MIN);
  });

  it('due - fires once at its time with the last step reached, then stays quiet; the attempt can still convert', () => {
    const state = stepAll([['view', 0], ['cart', 60]]);
    const dueAt = T0 + 60_000 + 10 * MIN;
    expect(funnels.abandonDue(state, dueAt - 1)).toBeNull();
    const due = funnels.abandonDue(state, dueAt)!;
    expect(due.abandoned).toEqual([{
      funnel: 'checkout', key: 'in.sys.abandon.checkout', stepIndex: 1, stepName: 'cart', steps: 3, reachedCount: 2,
      sinceStartMs: 60_000, dueAt, actions: [{ type: 'push', params: { offer: 'free-shipping' } }],
    }]);
    expect(funnels.nextDeadline(due.state)).toBe(0);
    expect(funnels.abandonDue(due.state, dueAt + MIN)).toBeNull();
    const bought = funnels.step(due.state, at('buy', 700))!;
    expect(bought.reached.map((r) => r.converted)).toEqual([true]);
  });

  it('progress - a later step re-arms from its own time; converting disarms', () => {
    const cart = stepAll([['view', 0], ['cart', 60]]);
    const before = stored(funnels, cart);
    const again = funnels.step(cart, at('cart', 120));
    // A repeated step is no progress in ordered mode: nothing changes, the timer stands.
    expect(stored(funnels, again === null ? cart : again.state)).toEqual(before);
    const bought = funnels.step(cart, at('buy', 300))!;
    expect(bought.reached[0]!.converted).toBe(true);
    expect(funnels.nextDeadline(bought.state)).toBe(0);
  });

  it('snapshots - the armed time survives JSON and restore; prune keeps an expired attempt whose abandonment is armed', () => {
    const state = stepAll([['view', 0], ['cart', 60]]);
    const restored = createFunnels(funnels.configs).restore(stored(funnels, state));
    expect(funnels.nextDeadline(restored)).toBe(T0 + 60_000 + 10 * MIN);
    expect(funnels.nextDeadline(funnels.prune(state, T0 + 2 * 3_600_000))).toBe(T0 + 60_000 + 10 * MIN);
    const fired = funnels.abandonDue(state, T0 + 2 * 3_600_000)!.state;
    expect(funnels.persist(funnels.prune(fired, T0 + 2 * 3_600_000))).toEqual({});
  });

  it('config - editing the abandonment keeps progress', () => {
    const state = stepAll([['view', 0], ['cart', 60]]);
    const edited = createFunnels([{ ...funnels.configs[0]!, abandon: { afterMs: 5 * MIN, fromStep: 0, actions: [] } }]);
    expect(Object.keys(edited.persist(edited.restore(stored(funnels, state))))).toEqual(['checkout']);
  });
});
