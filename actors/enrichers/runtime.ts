import { createKeyMatcher, type Envelope, type KeyMatcher } from '../../engine/index.js';
import type { Row } from '../../sinks/index.js';
import type { EnrichPatch, Enricher } from './types.js';

/**
 * Runs the enrichers that match an event's key and writes their patches
 * into its row. Local (synchronous) enrichers run inline — no promise, no
 * allocation beyond their cached patches; only when an asynchronous
 * (remote) enricher matches does the step return a promise, bounded by that
 * enricher's timeout. An enricher that throws, rejects or overruns is
 * counted and skipped; the event goes on without its columns.
 */

export interface EnricherEntry {
  readonly enricher: Enricher;
  readonly keys: readonly string[];
}

export interface EnrichmentStats {
  readonly runs: Record<string, number>;
  readonly failures: Record<string, number>;
  readonly timeouts: Record<string, number>;
  /** Patch columns an enricher is not allowed to write (dropped). */
  readonly stray: Record<string, number>;
  /** Events that got a pure enricher's patch from their session's memo instead of a run. */
  readonly reused: Record<string, number>;
}

export interface EnricherSet {
  /**
   * Writes the matching enrichers' columns into `row`; a promise only when
   * an async enricher ran. With a session's `memo`, a pure enricher whose
   * input fields equal the ones it last read for this session is not run:
   * its last patch is written again.
   */
  apply(envelope: Envelope, row: Row, memo?: EnrichMemo): void | Promise<void>;
  /** A fresh memo for one session, or undefined when no enricher is pure (nothing to remember). */
  memo(): EnrichMemo | undefined;
  stats(): EnrichmentStats;
  readonly size: number;
}

/**
 * What one session remembers of its pure enrichers: the fields each last
 * read and the patch it returned. It lives in the session actor's live
 * state, not in its snapshot: a passivated user costs nothing for it, and a
 * returning one starts with an empty memo. Opaque: one flat object per
 * session, its fields named by the set that made it (see createMemoLayout).
 */
export interface EnrichMemo {
  readonly __enrichMemo: never;
}

interface Compiled {
  readonly enricher: Enricher;
  readonly index: number;
  readonly write: ColumnWriter;
  /** For a pure enricher: its memo check and store; null otherwise. */
  readonly memo: MemoAccess | null;
}

interface MemoAccess {
  /** The patch remembered for this enricher when every field it reads equals the remembered one; else undefined. */
  readonly reuse: (envelope: Envelope, memo: EnrichMemo) => EnrichPatch | undefined;
  readonly remember: (envelope: Envelope, memo: EnrichMemo, patch: EnrichPatch) => void;
  /** The source of `reuse`'s parts, for the fused hit path: the patch's field and the input check. */
  readonly patchField: string;
  readonly sameSource: string;
}

/**
 * The memo is one object literal with a field per remembered input (`i0`,
 * `i1`, …) and per pure enricher's patch (`p0`, …), so checking it costs
 * one memory load for the memo itself. Arrays of inputs and patches (as it
 * was) cost three dependent loads, each a cache miss on a user not seen for
 * a while. In the enrichment bench's warm pass, old and new builds run
 * interleaved: 1.9–2.2 against 1.7–2.1 µs per event for the default set,
 * 1.5–1.9 against 1.2–1.4 µs for the page enricher alone (with its memo
 * and eventRow). The accessors are compiled for the same reason as the
 * column writer: constant property names keep the loads monomorphic. The
 * source is only field names and `e["field"]`, quoted with JSON.stringify.
 */
function createMemoLayout(pure: readonly { readonly index: number; readonly reads: readonly (keyof Envelope)[] }[]): {
  readonly create: (() => EnrichMemo) | null;
  readonly access: ReadonlyMap<number, MemoAccess>;
} {
  const fields: string[] = [];
  const access = new Map<number, MemoAccess>();
  for (const { index, reads } of pure) {
    const inputs = reads.map((f) => {
      const name = `i${fields.length}`;
      fields.push(name);
      return { name, read: `e[${JSON.stringify(f)}]` };
    });
    const patch = `p${index}`;
    fields.push(patch);
    const same = inputs.map((x) => `m.${x.name} === ${x.read}`).join(' && ');
    const store = inputs.map((x) => `m.${x.name} = ${x.read};`).join(' ');
    access.set(index, {
      reuse: new Function('e', 'm', `const p = m.${patch}; return p !== undefined && ${same} ? p : undefined;`) as MemoAccess['reuse'],
      remember: new Function('e', 'm', 'p', `${store} m.${patch} = p;`) as MemoAccess['remember'],
      patchField: patch,
      sameSource: same,
    });
  }
  const create = fields.length === 0 ? null : (new Function(`return { ${fields.map((f) => `${f}: undefined`).join(', ')} };`) as () => EnrichMemo);
  return { create, access };
}

/** Copies a patch's declared columns into a row; returns how many it wrote. */
type ColumnWriter = (patch: EnrichPatch, row: Row) => number;

/**
 * The session-memo hit path for one list of matched enrichers, as one
 * compiled function: for each in order, the memo check and its columns'
 * writes, straight-line. Returns how many of the list it handled — all of
 * them when each was a memo hit; at the first miss (or an enricher with no
 * memo) the generic loop takes over from there. In the generic loop the
 * four enrichers' checks and writers meet at the same two call sites, which
 * go megamorphic: no inlining, an indirect call each.
 */
type MemoHits = (e: Envelope, m: EnrichMemo, row: Row, reused: Float64Array) => number;

function createMemoHits(list: readonly Compiled[]): MemoHits {
  const lines = ['let p, v;'];
  list.forEach((c, i) => {
    if (c.memo === null) { lines.push(`return ${i};`); return; }
    lines.push(`p = m.${c.memo.patchField};`, `if (p === undefined || !(${c.memo.sameSource})) return ${i};`, `reused[${c.index}]++;`);
    for (const col of c.enricher.columns) {
      const name = JSON.stringify(col);
      lines.push(`v = p[${name}]; if (v !== undefined) row[${name}] = v;`);
    }
  });
  lines.push(`return ${list.length};`);
  return new Function('e', 'm', 'row', 'reused', lines.join('\n')) as MemoHits;
}

/**
 * Built once per enricher: every read and write names its column as a
 * constant, so V8 caches each store's shape transition and the rows come
 * out in one shape (which the sinks' value loaders also rely on). A loop
 * over `row[columns[i]] = …` goes megamorphic and takes the runtime's slow
 * path on each new property: measured 1.3 µs vs 0.24 µs per event for the
 * 31 default columns. The source is only `v = patch["col"]; …` lines, names
 * quoted with JSON.stringify.
 */
function createColumnWriter(columns: readonly string[]): ColumnWriter {
  const lines = ['let written = 0;', 'let v;'];
  for (const col of columns) {
    const name = JSON.stringify(col);
    lines.push(`v = patch[${name}]; if (v !== undefined) { row[${name}] = v; written++; }`);
  }
  lines.push('return written;');
  return new Function('patch', 'row', lines.join('\n')) as ColumnWriter;
}

export function createEnricherSet(entries: readonly EnricherEntry[]): EnricherSet {
  // A pure enricher that reads nothing would match every event of a session: not memoized.
  const isPure = (e: Enricher): boolean => e.pure === true && e.reads.length > 0;
  const layout = createMemoLayout(entries.flatMap((e, index) => (isPure(e.enricher) ? [{ index, reads: e.enricher.reads }] : [])));
  const compiled: Compiled[] = entries.map(({ enricher }, index) => ({
    enricher, index, write: createColumnWriter(enricher.columns), memo: layout.access.get(index) ?? null,
  }));
  const matcher: KeyMatcher<Compiled> = createKeyMatcher(entries.flatMap((e, i) => e.keys.map((pattern) => ({ pattern, value: compiled[i]! }))));
  const n = entries.length;
  const runs = new Float64Array(n);
  const failures = new Float64Array(n);
  const timeouts = new Float64Array(n);
  const stray = new Float64Array(n);
  const reused = new Float64Array(n);
  // The hit path per matched list: by the list (the matcher returns one per
  // key), and by which enrichers are in it, so a flood of keys compiles
  // nothing new — there are only as many lists as distinct enricher subsets.
  const hitsByList = new WeakMap<readonly Compiled[], MemoHits>();
  const hitsBySet = new Map<string, MemoHits>();
  function memoHitsFor(list: readonly Compiled[]): MemoHits {
    let hits = hitsByList.get(list);
    if (hits === undefined) {
      const set = list.map((c) => c.index).join(',');
      hits = hitsBySet.get(set);
      if (hits === undefined) hitsBySet.set(set, hits = createMemoHits(list));
      hitsByList.set(list, hits);
    }
    return hits;
  }

  function merge(c: Compiled, patch: EnrichPatch, row: Row): void {
    const written = c.write(patch, row);
    // A patch with more keys than were written holds a stray: look for it
    // only then. Counting keys costs ~25 ns an event for the default four.
    let keys = 0;
    for (const _ in patch) keys++;
    if (keys > written) {
      const { columns } = c.enricher;
      for (const k in patch) if (!columns.includes(k)) stray[c.index]!++;
    }
  }

  function runAsync(c: Compiled, pending: Promise<EnrichPatch>, row: Row): Promise<void> {
    const ms = c.enricher.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), ms); });
    return Promise.race([pending, timeout]).then(
      (r) => {
        clearTimeout(timer);
        if (r === 'timeout') timeouts[c.index]!++;
        else merge(c, r, row);
      },
      () => { clearTimeout(timer); failures[c.index]!++; },
    );
  }

  const record = (arr: Float64Array): Record<string, number> => {
    const out: Record<string, number> = {};
    compiled.forEach((c) => { out[c.enricher.name] = arr[c.index]!; });
    return out;
  };

  return {
    size: n,
    apply(envelope, row, memo) {
      const matched = matcher.match(envelope.key);
      if (matched.length === 0) return;
      let waits: Promise<void>[] | null = null;
      // A warm session: every matched enricher's memo hits, and this is all.
      const from = memo === undefined ? 0 : memoHitsFor(matched)(envelope, memo, row, reused);
      for (let i = from; i < matched.length; i++) {
        const c = matched[i]!;
        const access = memo === undefined ? null : c.memo;
        if (access !== null) {
          const last = access.reuse(envelope, memo!);
          if (last !== undefined) {
            reused[c.index]!++;
            // The patch merged last time, its strays already counted: only its columns are written.
            c.write(last, row);
            continue;
          }
        }
        runs[c.index]!++;
        let result: EnrichPatch | Promise<EnrichPatch>;
        try {
          result = c.enricher.enrich(envelope);
        } catch {
          failures[c.index]!++;
          continue;
        }
        if (result instanceof Promise) {
          (waits ??= []).push(runAsync(c, result, row));
          continue;
        }
        merge(c, result, row);
        if (access !== null) access.remember(envelope, memo!, result);
      }
      if (waits === null) return;
      return Promise.all(waits).then(() => undefined);
    },
    memo: () => layout.create?.(),
    stats: () => ({ runs: record(runs), failures: record(failures), timeouts: record(timeouts), stray: record(stray), reused: record(reused) }),
  };
}
