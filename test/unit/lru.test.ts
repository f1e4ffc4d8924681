import { describe, expect, it } from 'vitest';
import { Lru } from '../../actors/enrichers/lru.js';

describe('Lru (the enrichers\' cache)', () => {
  it('holds at most max entries and evicts the least recently used, a get counting as use', () => {
    const cache = new Lru<string, number>(3);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('c', 3);
    expect(cache.get('a')).toBe(1); // a is now the most recent: b is the oldest
    cache.set('d', 4);
    expect(cache.size).toBe(3);
    expect(cache.get('b')).toBeUndefined();
    expect([cache.get('a'), cache.get('c'), cache.get('d')]).toEqual([1, 3, 4]);
  });

  it('replaces a value set again under the same key, without growing', () => {
    const cache = new Lru<string, string>(2);
    cache.set('k', 'old');
    cache.set('k', 'new');
    expect(cache.get('k')).toBe('new');
    expect(cache.size).toBe(1);
  });

  it('keeps caches apart although each reuses its own options object', () => {
    const one = new Lru<string, number>(2);
    const two = new Lru<string, number>(2);
    for (let i = 0; i < 1_000; i++) { one.set(`k${i}`, i); two.set(`k${i % 2}`, -i); }
    expect(one.size).toBe(2);
    expect([one.get('k998'), one.get('k999'), one.get('k0')]).toEqual([998, 999, undefined]);
    expect([two.get('k0'), two.get('k1')]).toEqual([-998, -999]);
  });
});
