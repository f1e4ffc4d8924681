import { createError } from '../errors/index.js';
import { KEY_SEGMENTS, clip, keyProblem, segmentProblem } from './grammar.js';

/**
 * Compiled subscription matching. All patterns go into one trie of segments;
 * matching a key walks at most KEY_SEGMENTS levels (with `*` branches), so the
 * cost depends on the key, not on how many subscriptions exist. Results are
 * memoized per key — real traffic has a few hundred distinct keys — so the hot
 * path is one Map lookup. Result arrays are frozen and shared.
 */

export const ANY_SEGMENT = '*';
export const ANY_REST = '**';

export interface Subscription<T> {
  readonly pattern: string;
  readonly value: T;
}

export interface KeyMatcher<T> {
  /** Values whose patterns match `key`, in subscription order, without duplicates. */
  match(key: string): readonly T[];
  readonly size: number;
}

/** Why a pattern is invalid, or null. */
export function patternProblem(pattern: string): string | null {
  if (pattern.length > KEY_SEGMENTS * 70) return 'too long';
  const segments = pattern.split('.');
  if (segments.length > KEY_SEGMENTS) return `more than ${KEY_SEGMENTS} segments`;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    if (seg === ANY_REST) {
      if (i !== segments.length - 1) return '"**" is allowed only as the last segment';
      continue;
    }
    if (seg === ANY_SEGMENT) continue;
    const problem = segmentProblem(seg);
    if (problem !== null) return problem;
  }
  if (segments.length < KEY_SEGMENTS && segments[segments.length - 1] !== ANY_REST) {
    return `fewer than ${KEY_SEGMENTS} segments without a trailing "**"`;
  }
  return null;
}

export function assertPattern(pattern: string): string {
  const problem = patternProblem(pattern);
  if (problem !== null) throw createError('FLOW_ERR_PATTERN_INVALID', { pattern: clip(pattern), reason: problem });
  return pattern;
}

interface TrieNode {
  readonly literal: Map<string, TrieNode>;
  star: TrieNode | null;
  /** Subscriber indexes whose pattern ends in `**` here. */
  readonly rest: number[];
  /** Subscriber indexes whose pattern ends exactly here (depth KEY_SEGMENTS). */
  readonly exact: number[];
}

function createNode(): TrieNode {
  return { literal: new Map(), star: null, rest: [], exact: [] };
}

const EMPTY: readonly never[] = Object.freeze([]);
const DEFAULT_CACHE_SIZE = 4096;

export function createKeyMatcher<T>(
  subscriptions: readonly Subscription<T>[],
  options: { cacheSize?: number } = {},
): KeyMatcher<T> {
  const root = createNode();
  const values = subscriptions.map((s) => s.value);
  subscriptions.forEach((sub, index) => {
    assertPattern(sub.pattern);
    let node = root;
    for (const seg of sub.pattern.split('.')) {
      if (seg === ANY_REST) { node.rest.push(index); return; }
      if (seg === ANY_SEGMENT) {
        node = node.star ??= createNode();
      } else {
        let next = node.literal.get(seg);
        if (next === undefined) { next = createNode(); node.literal.set(seg, next); }
        node = next;
      }
    }
    node.exact.push(index);
  });

  const cacheSize = options.cacheSize ?? DEFAULT_CACHE_SIZE;
  const cache = new Map<string, readonly T[]>();

  function collect(node: TrieNode, segments: readonly string[], depth: number, out: Set<number>): void {
    // `**` must match at least one segment, and keys always have KEY_SEGMENTS.
    if (depth < KEY_SEGMENTS) for (const i of node.rest) out.add(i);
    if (depth === KEY_SEGMENTS) { for (const i of node.exact) out.add(i); return; }
    const seg = segments[depth]!;
    const lit = node.literal.get(seg);
    if (lit !== undefined) collect(lit, segments, depth + 1, out);
    if (node.star !== null) collect(node.star, segments, depth + 1, out);
  }

  function compute(key: string): readonly T[] {
    // Only on a cache miss: an invalid key ("in.gen.track.") would otherwise
    // match `*` and `**` with an empty segment.
    if (keyProblem(key) !== null) return EMPTY;
    const hits = new Set<number>();
    collect(root, key.split('.'), 0, hits);
    if (hits.size === 0) return EMPTY;
    // One value may subscribe with several patterns (a component with two
    // overlapping keys); it must be returned, and so run, once.
    const out = new Set<T>();
    for (const i of [...hits].sort((a, b) => a - b)) out.add(values[i] as T);
    return Object.freeze([...out]);
  }

  return {
    size: subscriptions.length,
    match(key: string): readonly T[] {
      let hit = cache.get(key);
      if (hit === undefined) {
        hit = compute(key);
        // A flood of distinct (hostile) keys must not grow memory: start over.
        if (cache.size >= cacheSize) cache.clear();
        cache.set(key, hit);
      }
      return hit;
    },
  };
}
