import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, parseConfig } from '../../engine/config/index.js';
import { createRegistry, type ComponentDefinition, type Registry } from '../../engine/registry/index.js';

const uaEnricher: ComponentDefinition = {
  kind: 'enrichers', type: 'ua', description: 'parses the user agent', namespace: 'ua',
  options: z.strictObject({}),
};
const geoEnricher: ComponentDefinition<{ db: string }> = {
  kind: 'enrichers', type: 'geo', description: 'ip to location', namespace: 'geo',
  options: z.strictObject({ db: z.string().default('GeoLite2-City.mmdb') }),
};
/** A second geo implementation that writes the same namespace. */
const geoAltEnricher: ComponentDefinition = {
  kind: 'enrichers', type: 'geo-alt', description: 'another ip to location', namespace: 'geo',
  options: z.strictObject({}),
};
const funnelHandler: ComponentDefinition<{ window: number; steps: string[] }> = {
  kind: 'handlers', type: 'funnel', description: 'funnel progress', emits: ['in.sys.funnel.checkout'],
  options: z.strictObject({ window: z.number().int().positive(), steps: z.array(z.string()).min(1) }),
};
const sessionHandler: ComponentDefinition = {
  kind: 'handlers', type: 'session', description: 'sessionizer',
  emits: ['in.sys.session.start', 'in.sys.session.end'],
  options: z.strictObject({}),
};
const echoHandler: ComponentDefinition = {
  kind: 'handlers', type: 'echo', description: 'replies with the event', options: z.strictObject({}),
};
const memorySink: ComponentDefinition<{ batchRows: number }> = {
  kind: 'sinks', type: 'memory', description: 'keeps rows in memory',
  options: z.strictObject({ batchRows: z.number().int().positive().default(100) }),
};

function registry(): Registry {
  const r = createRegistry();
  for (const d of [uaEnricher, geoEnricher, geoAltEnricher, funnelHandler, sessionHandler, echoHandler, memorySink]) {
    r.register(d as ComponentDefinition);
  }
  return r;
}

function problemsOf(fn: () => unknown): readonly string[] {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  return (caught as ConfigError).problems;
}

describe('registry - register', () => {
  it('lists and gets registered definitions by kind and type', () => {
    const r = registry();
    expect(r.get('enrichers', 'ua')).toBe(uaEnricher);
    expect(r.get('handlers', 'ua')).toBeUndefined();
    expect(r.list('enrichers').map((d) => d.type)).toEqual(['ua', 'geo', 'geo-alt']);
    expect(r.list('sinks').map((d) => d.type)).toEqual(['memory']);
    expect(r.list()).toHaveLength(7);
  });

  it('refuses registering the same kind and type twice', () => {
    const r = registry();
    expect(() => r.register(uaEnricher)).toThrow(/enrichers\/ua is already registered/);
  });

  it('the same type name may exist in two kinds', () => {
    const r = registry();
    r.register({ kind: 'sinks', type: 'ua', description: 'odd but allowed', options: z.strictObject({}) });
    expect(r.get('sinks', 'ua')?.description).toBe('odd but allowed');
  });
});

describe('registry - resolve', () => {
  const config = parseConfig({
    enrichers: [{ type: 'ua', timeoutMs: 50 }, { type: 'geo', keys: ['in.gen.**'] }],
    handlers: [
      { type: 'session', keys: ['in.gen.**'] },
      { type: 'funnel', name: 'checkout', keys: ['in.gen.track.*'], options: { window: 3600, steps: ['cart', 'pay'] } },
      { type: 'echo', keys: ['in.gen.track.click'] },
      { type: 'echo', name: 'sys-echo', keys: ['in.sys.session.start', 'in.sys.funnel.checkout'] },
    ],
    sinks: [{ type: 'memory' }, { type: 'memory', name: 'sessions-only', keys: ['in.sys.session.*'], options: { batchRows: 5 } }],
  });

  it('gives resolved components with names, parsed options and their config path', () => {
    const t = registry().resolve(config);
    expect(t.enrichers.map((c) => c.name)).toEqual(['ua', 'geo']);
    expect(t.enrichers[0]).toMatchObject({ kind: 'enrichers', timeoutMs: 50, path: 'enrichers[0]', keys: ['**'] });
    expect(t.enrichers[1]!.options).toEqual({ db: 'GeoLite2-City.mmdb' });
    expect(t.handlers.map((c) => c.name)).toEqual(['session', 'checkout', 'echo', 'sys-echo']);
    expect(t.handlers[1]).toMatchObject({ options: { window: 3600, steps: ['cart', 'pay'] }, path: 'handlers[1]', timeoutMs: undefined });
    expect(t.handlers[1]!.definition).toBe(funnelHandler);
    expect(t.sinks.map((c) => [c.name, c.options])).toEqual([['memory', { batchRows: 100 }], ['sessions-only', { batchRows: 5 }]]);
  });

  it('routes a key to the subscribed components of each kind, in config order', () => {
    const { routes } = registry().resolve(config);
    expect(routes.handlers.match('in.gen.track.page').map((c) => c.name)).toEqual(['session', 'checkout']);
    expect(routes.handlers.match('in.gen.track.click').map((c) => c.name)).toEqual(['session', 'checkout', 'echo']);
    expect(routes.handlers.match('in.gen.other.x').map((c) => c.name)).toEqual(['session']);
    expect(routes.handlers.match('in.sys.session.start').map((c) => c.name)).toEqual(['sys-echo']);
    expect(routes.enrichers.match('in.gen.track.page').map((c) => c.name)).toEqual(['ua', 'geo']);
    expect(routes.enrichers.match('in.sys.session.start').map((c) => c.name)).toEqual(['ua']);
    expect(routes.sinks.match('in.sys.session.end').map((c) => c.name)).toEqual(['memory', 'sessions-only']);
    expect(routes.sinks.match('in.gen.track.page').map((c) => c.name)).toEqual(['memory']);
  });

  it('a component with overlapping keys is routed an event once', () => {
    const t = registry().resolve(parseConfig({
      handlers: [{ type: 'echo', keys: ['in.gen.track.*', 'in.gen.**', 'in.gen.track.page'] }],
      sinks: [{ type: 'memory', keys: ['**', 'in.**'] }],
    }));
    expect(t.routes.handlers.match('in.gen.track.page').map((c) => c.name)).toEqual(['echo']);
    expect(t.routes.sinks.match('in.gen.track.page').map((c) => c.name)).toEqual(['memory']);
  });

  it('the topology is frozen', () => {
    const t = registry().resolve(config);
    expect(Object.isFrozen(t)).toBe(true);
    expect(Object.isFrozen(t.routes)).toBe(true);
    expect(Object.isFrozen(t.warnings)).toBe(true);
  });

  it('a consistent config with sinks has no warnings', () => {
    expect(registry().resolve(config).warnings).toEqual([]);
  });
});

describe('registry - problems', () => {
  it('reports every problem together, each with its config path', () => {
    const problems = problemsOf(() => registry().resolve(parseConfig({
      enrichers: [
        { type: 'nope' },
        { type: 'geo' },
        { type: 'geo-alt' },
      ],
      handlers: [
        { type: 'funnel', timeoutMs: 100, options: { window: 'an hour', steps: ['a'] } },
        { type: 'funnel', name: 'f2', options: { window: 10, steps: ['a'], bogus: true } },
      ],
      sinks: [
        { type: 'memory' },
        { type: 'memory', keys: ['in.**.page'] },
      ],
    })));
    expect(problems).toContain('enrichers[0].type: unknown enricher type "nope" (registered: ua, geo, geo-alt)');
    expect(problems).toContain('enrichers[2]: namespace "geo" is already written by enrichers[1]');
    expect(problems).toContain('handlers[0].timeoutMs: only enrichers have a timeout');
    expect(problems.some((p) => p.startsWith('handlers[0].options.window: '))).toBe(true);
    expect(problems).toContain('handlers[1].options: unknown key(s) bogus');
    expect(problems).toContain('sinks[1].name: "memory" is used twice among sinks; give one a distinct name');
    expect(problems).toContain('sinks[1].keys[0]: "in.**.page" "**" is allowed only as the last segment');
    expect(problems).toHaveLength(7);
  });

  it('the error is a ConfigError whose message counts the problems', () => {
    let caught: unknown;
    try {
      registry().resolve(parseConfig({ handlers: [{ type: 'x' }, { type: 'y' }] }));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).code).toBe('FLOW_ERR_CONFIG_INVALID');
    expect((caught as ConfigError).message).toContain('2 problem(s)');
  });

  it('an unknown type lists the registered types of that kind only', () => {
    const problems = problemsOf(() => registry().resolve(parseConfig({ sinks: [{ type: 'clickhouse' }] })));
    expect(problems).toEqual(['sinks[0].type: unknown sink type "clickhouse" (registered: memory)']);
  });

  it('an unknown type with nothing registered says none', () => {
    const problems = problemsOf(() => createRegistry().resolve(parseConfig({ handlers: [{ type: 'echo' }] })));
    expect(problems).toEqual(['handlers[0].type: unknown handler type "echo" (registered: none)']);
  });

  it('the same enricher type twice under different names still clashes on its namespace', () => {
    const problems = problemsOf(() => registry().resolve(parseConfig({
      enrichers: [{ type: 'ua' }, { type: 'ua', name: 'ua2' }], sinks: [{ type: 'memory' }],
    })));
    expect(problems).toEqual(['enrichers[1]: namespace "ua" is already written by enrichers[0]']);
  });

  it('explicit duplicate names are refused, but the same name in two kinds is fine', () => {
    const problems = problemsOf(() => registry().resolve(parseConfig({
      handlers: [{ type: 'echo', name: 'main' }, { type: 'session', name: 'main' }],
      sinks: [{ type: 'memory', name: 'main' }],
    })));
    expect(problems).toEqual(['handlers[1].name: "main" is used twice among handlers; give one a distinct name']);
  });

  it('reports each invalid pattern by its index', () => {
    const problems = problemsOf(() => registry().resolve(parseConfig({
      handlers: [{ type: 'echo', keys: ['in.gen.track.page', 'in.gen.track', 'IN.**'] }],
      sinks: [{ type: 'memory' }],
    })));
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^handlers\[0\]\.keys\[1\]: "in\.gen\.track" fewer than 4 segments/);
    expect(problems[1]).toMatch(/^handlers\[0\]\.keys\[2\]: "IN\.\*\*" /);
  });

  it('a component declaring an invalid emitted key is a problem', () => {
    const r = createRegistry();
    r.register({ kind: 'handlers', type: 'bad-emitter', description: '', emits: ['in.sys.oops'], options: z.strictObject({}) });
    const problems = problemsOf(() => r.resolve(parseConfig({ handlers: [{ type: 'bad-emitter' }] })));
    expect(problems).toEqual(['handlers[0]: type "bad-emitter" declares an invalid emitted key "in.sys.oops": expected 4 segments, got 3']);
  });

  it('a sink timeoutMs is a problem too', () => {
    const problems = problemsOf(() => registry().resolve(parseConfig({ sinks: [{ type: 'memory', timeoutMs: 10 }] })));
    expect(problems).toEqual(['sinks[0].timeoutMs: only enrichers have a timeout']);
  });
});

describe('registry - warnings', () => {
  it('warns about a literal in.sys subscription that no component emits', () => {
    const t = registry().resolve(parseConfig({
      handlers: [{ type: 'echo', keys: ['in.sys.churn.score'] }],
      sinks: [{ type: 'memory' }],
    }));
    expect(t.warnings).toEqual(['handlers[0].keys: no component emits "in.sys.churn.score"']);
  });

  it('warns for enrichers too', () => {
    const t = registry().resolve(parseConfig({
      enrichers: [{ type: 'ua', keys: ['in.sys.churn.score'] }],
      sinks: [{ type: 'memory' }],
    }));
    expect(t.warnings).toEqual(['enrichers[0].keys: no component emits "in.sys.churn.score"']);
  });

  it('does not warn when a configured component declares it emits that key', () => {
    const t = registry().resolve(parseConfig({
      handlers: [{ type: 'session' }, { type: 'echo', keys: ['in.sys.session.start', 'in.sys.session.end'] }],
      sinks: [{ type: 'memory' }],
    }));
    expect(t.warnings).toEqual([]);
  });

  it('warns when the emitting type is registered but not configured', () => {
    const t = registry().resolve(parseConfig({
      handlers: [{ type: 'echo', keys: ['in.sys.session.start'] }],
      sinks: [{ type: 'memory' }],
    }));
    expect(t.warnings).toEqual(['handlers[0].keys: no component emits "in.sys.session.start"']);
  });

  it('does not warn about wildcard sys patterns or generic keys', () => {
    const t = registry().resolve(parseConfig({
      handlers: [{ type: 'echo', keys: ['in.sys.**', 'in.sys.session.*', 'in.gen.track.page', 'out.gen.a.b'] }],
      sinks: [{ type: 'memory' }],
    }));
    expect(t.warnings).toEqual([]);
  });

  it('does not warn when no extra sinks are configured (the ClickHouse store is always there)', () => {
    const t = registry().resolve(parseConfig({ handlers: [{ type: 'echo' }] }));
    expect(t.warnings).toEqual([]);
  });

  it('reports every warning together', () => {
    const t = registry().resolve(parseConfig({ handlers: [{ type: 'echo', keys: ['in.sys.churn.score', 'in.sys.funnel.cart'] }] }));
    expect(t.warnings).toHaveLength(2);
  });
});
