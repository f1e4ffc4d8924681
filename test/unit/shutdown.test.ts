import { describe, expect, it } from 'vitest';
import {
  createEngine, createShutdown, createSilentLogger, parseConfig, SHUTDOWN_PHASES,
  createMemoryStateStore, TELL_STOPPED,
} from '../../engine/index.js';

describe('shutdown - order', () => {
  it('runs stop-accepting, drain, passivate, flush-sinks, close in that order', async () => {
    const shutdown = createShutdown({ logger: createSilentLogger(), timeoutMs: 5_000 });
    const order: string[] = [];
    // Registered out of order on purpose: the phase decides, not registration.
    for (const phase of [...SHUTDOWN_PHASES].reverse()) {
      shutdown.on(phase, `${phase}-1`, async () => { await new Promise((r) => setTimeout(r, 2)); order.push(`${phase}-1`); });
      shutdown.on(phase, `${phase}-2`, () => { order.push(`${phase}-2`); });
    }
    const result = await shutdown.run('test');
    expect(order).toEqual(SHUTDOWN_PHASES.flatMap((p) => [`${p}-1`, `${p}-2`]));
    expect(result.ok).toBe(true);
    expect(await shutdown.run('again')).toBe(result);
  });

  it('reports a failing step, keeps going, and returns not ok', async () => {
    const shutdown = createShutdown({ logger: createSilentLogger(), timeoutMs: 5_000 });
    const order: string[] = [];
    shutdown.on('flush-sinks', 'broken sink', () => { throw new Error('disk gone'); });
    shutdown.on('close', 'store', () => { order.push('close'); });
    const result = await shutdown.run('test');
    expect(result.ok).toBe(false);
    expect(result.steps.find((s) => s.name === 'broken sink')?.error).toBe('disk gone');
    expect(order).toEqual(['close']);
  });

  it('gives up at the deadline instead of hanging', async () => {
    const shutdown = createShutdown({ logger: createSilentLogger(), timeoutMs: 50 });
    shutdown.on('drain', 'stuck', () => new Promise(() => {}));
    const result = await shutdown.run('test');
    expect(result.ok).toBe(false);
    expect(result.steps[0]?.error).toContain('deadline');
  });
});

describe('shutdown - engine', () => {
  it('stops accepting, then finishes queued events before saving state and flushing sinks', async () => {
    const store = createMemoryStateStore();
    const order: string[] = [];
    let processed = 0;
    const engine = createEngine<number, number>({
      config: parseConfig({}),
      logger: createSilentLogger(),
      store,
      behavior: {
        initial: () => 0,
        receive: async (n, m) => { await new Promise((r) => setTimeout(r, 1)); processed++; return n + m; },
      },
    });
    engine.shutdown.on('stop-accepting', 'listener', () => { order.push(`stop-accepting processed=${processed}`); });
    engine.shutdown.on('flush-sinks', 'sink', () => { order.push(`flush-sinks processed=${processed} saved=${store.size()}`); });
    engine.start();
    for (let i = 0; i < 20; i++) engine.system.tell(1, `u${i % 4}`, 1);
    const done = engine.shutdown.run('test');
    expect(engine.system.tell(1, 'late', 1)).not.toBe(TELL_STOPPED); // not stopped until the drain phase begins
    const result = await done;
    expect(result.ok).toBe(true);
    expect(order).toEqual(['stop-accepting processed=0', 'flush-sinks processed=21 saved=5']);
    expect(store.get(1, 'u0')).toBe(5);
    expect(engine.system.tell(1, 'after', 1)).toBe(TELL_STOPPED);
  });
});
