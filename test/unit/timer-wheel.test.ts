import { describe, expect, it } from 'vitest';
import { createTimerWheel, type WheelEntry } from '../../engine/index.js';

interface Item extends WheelEntry { id: string }
const item = (id: string): Item => ({ id, wheelPrev: null, wheelNext: null, wheelDue: -1 });

describe('timer wheel - scheduling', () => {
  it('fires each entry at its tick, in tick order, and only then', () => {
    const wheel = createTimerWheel<Item>(16);
    const fired: string[] = [];
    wheel.schedule(item('c'), 7);
    wheel.schedule(item('a'), 2);
    wheel.schedule(item('b'), 5);
    wheel.advance(4, (e, t) => fired.push(`${e.id}@${t}`));
    expect(fired).toEqual(['a@2']);
    wheel.advance(10, (e, t) => fired.push(`${e.id}@${t}`));
    expect(fired).toEqual(['a@2', 'b@5', 'c@7']);
    expect(wheel.size).toBe(0);
  });

  it('keeps entries due more than one revolution ahead until their tick', () => {
    const wheel = createTimerWheel<Item>(4); // 8 slots
    const fired: number[] = [];
    wheel.schedule(item('far'), 21);
    wheel.advance(20, (_e, t) => fired.push(t));
    expect(fired).toEqual([]);
    wheel.advance(21, (_e, t) => fired.push(t));
    expect(fired).toEqual([21]);
  });

  it('reschedules and removes in place', () => {
    const wheel = createTimerWheel<Item>(16);
    const a = item('a');
    const b = item('b');
    wheel.schedule(a, 3);
    wheel.schedule(b, 3);
    wheel.schedule(a, 9);
    wheel.remove(b);
    const fired: string[] = [];
    wheel.advance(16, (e, t) => fired.push(`${e.id}@${t}`));
    expect(fired).toEqual(['a@9']);
  });

  it('scans from the nearest due entry, skipping empty slots', () => {
    const wheel = createTimerWheel<Item>(64);
    wheel.schedule(item('late'), 40);
    wheel.schedule(item('soon'), 12);
    wheel.schedule(item('mid'), 20);
    const order: string[] = [];
    wheel.scanFromNearest((e) => { order.push(e.id); return false; });
    expect(order).toEqual(['soon', 'mid', 'late']);
  });
});
