import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Row } from '../../sinks/schema/types.js';
import { adoptSpool, Spool } from '../../sinks/spool/index.js';

/** The spool against real files: one fsync'd file per batch, in arrival order. */

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'flowstat-spool-')); });
afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

const rows = (from: number, n: number): Row[] => Array.from({ length: n }, (_, i) => ({ event_id: `e${from + i}`, n: from + i }));
const files = (): string[] => readdirSync(dir).sort();

describe('spool - order and accounting', () => {
  it('spool - push, head, read and shift keep arrival order', async () => {
    const spool = new Spool<string>(dir, 1 << 20);
    expect(spool.head()).toBeUndefined();
    spool.push('events', rows(0, 3), 'first');
    spool.push('sessions', rows(3, 2), 'second');
    spool.push('events', rows(5, 1), 'third');
    expect(spool.length).toBe(3);

    const seen: { table: string; tag: string | null; rows: Row[] }[] = [];
    for (let head = spool.head(); head !== undefined; head = spool.head()) {
      seen.push({ table: head.table, tag: head.tag, rows: await spool.read(head) });
      spool.shift();
    }
    expect(seen).toEqual([
      { table: 'events', tag: 'first', rows: rows(0, 3) },
      { table: 'sessions', tag: 'second', rows: rows(3, 2) },
      { table: 'events', tag: 'third', rows: rows(5, 1) },
    ]);
    expect(spool.length).toBe(0);
    expect(files()).toEqual([]);
    spool.shift(); // shifting an empty spool is a no-op
    expect(spool.length).toBe(0);
  });

  it('spool - bytes and rows count what is on disk', () => {
    const spool = new Spool<null>(dir, 1 << 20);
    spool.push('events', rows(0, 4), null);
    spool.push('events', rows(4, 7), null);
    expect(spool.rows).toBe(11);
    expect(spool.bytes).toBe(spool.diskBytes());
    expect(spool.bytes).toBeGreaterThan(0);
    spool.shift();
    expect(spool.rows).toBe(7);
    expect(spool.bytes).toBe(spool.diskBytes());
    spool.shift();
    expect(spool.rows).toBe(0);
    expect(spool.bytes).toBe(0);
  });

  it('spool - full() once the bytes reach maxBytes, and not after a shift below it', () => {
    const probe = new Spool<null>(join(dir, 'probe'), 1 << 20);
    const size = probe.push('events', rows(0, 10), null).bytes;

    const spool = new Spool<null>(join(dir, 'bounded'), 2 * size);
    spool.push('events', rows(0, 10), null);
    expect(spool.full()).toBe(false);
    spool.push('events', rows(0, 10), null);
    expect(spool.bytes).toBe(2 * size);
    expect(spool.full()).toBe(true);
    spool.shift();
    expect(spool.full()).toBe(false);
  });

  it('spool - replaceHead rewrites the first entry in place and updates the accounting', async () => {
    const spool = new Spool<string>(dir, 1 << 20);
    const first = spool.push('events', rows(0, 6), 'six');
    spool.push('events', rows(6, 2), 'two');
    const before = files();

    spool.replaceHead(rows(3, 3), 'three');
    expect(files()).toEqual(before); // same file, same place in line
    const head = spool.head()!;
    expect(head.seq).toBe(first.seq);
    expect(head.rows).toBe(3);
    expect(head.tag).toBe('three');
    expect(await spool.read(head)).toEqual(rows(3, 3));
    expect(spool.rows).toBe(5);
    expect(spool.bytes).toBe(spool.diskBytes());

    spool.shift();
    expect(await spool.read(spool.head()!)).toEqual(rows(6, 2));
    expect(spool.head()!.tag).toBe('two');
  });

  it('spool - discard() empties memory and disk', () => {
    const spool = new Spool<null>(dir, 1 << 20);
    spool.push('events', rows(0, 2), null);
    spool.push('events', rows(2, 2), null);
    spool.discard();
    expect(spool.length).toBe(0);
    expect(spool.rows).toBe(0);
    expect(spool.bytes).toBe(0);
    expect(spool.head()).toBeUndefined();
    expect(files()).toEqual([]);
  });
});

describe('spool - restart', () => {
  it('spool - load() after a restart finds the entries in order, without their in-memory tags', async () => {
    const before = new Spool<string>(dir, 1 << 20);
    before.push('events', rows(0, 2), 'a');
    before.push('sessions', rows(2, 1), 'b');
    before.push('events', rows(3, 3), 'c');
    before.shift();

    const after = new Spool<string>(dir, 1 << 20);
    expect(after.load()).toBe(2);
    expect(after.rows).toBe(4);
    expect(after.bytes).toBe(before.bytes);
    const head = after.head()!;
    expect(head).toMatchObject({ table: 'sessions', rows: 1, tag: null });
    expect(await after.read(head)).toEqual(rows(2, 1));

    // New batches go behind the loaded ones and never reuse their files.
    after.push('events', rows(10, 1), 'new');
    const seen: Row[][] = [];
    for (let h = after.head(); h !== undefined; h = after.head()) { seen.push(await after.read(h)); after.shift(); }
    expect(seen).toEqual([rows(2, 1), rows(3, 3), rows(10, 1)]);
  });

  it('spool - load() removes *.tmp leftovers and files with a bad checksum', async () => {
    const before = new Spool<null>(dir, 1 << 20);
    before.push('events', rows(0, 1), null);
    const bad = before.push('events', rows(1, 1), null);
    before.push('events', rows(2, 1), null);
    const badFile = `${String(bad.seq).padStart(20, '0')}.spool`;
    const data = readFileSync(join(dir, badFile));
    data[data.length - 1] = data[data.length - 1]! ^ 0xff;
    writeFileSync(join(dir, badFile), data);
    writeFileSync(join(dir, `${String(99).padStart(20, '0')}.spool.tmp`), 'a write cut short');
    writeFileSync(join(dir, `${String(98).padStart(20, '0')}.spool`), Buffer.from([1, 2])); // shorter than the checksum

    const after = new Spool<null>(dir, 1 << 20);
    expect(after.load()).toBe(2);
    expect(files()).toHaveLength(2);
    expect(files()).not.toContain(badFile);
    expect(files().some((f) => f.endsWith('.tmp'))).toBe(false);
    expect(after.rows).toBe(2);
    expect(after.bytes).toBe(after.diskBytes());
    const seen: Row[][] = [];
    for (let h = after.head(); h !== undefined; h = after.head()) { seen.push(await after.read(h)); after.shift(); }
    expect(seen).toEqual([rows(0, 1), rows(2, 1)]);
  });
});

describe('spool - adoption', () => {
  it('spool - adoptSpool moves another spool\'s batches behind this one\'s, in their order, and leaves the other empty', async () => {
    const mine = join(dir, 'mine');
    const theirs = join(dir, 'theirs');
    const a = new Spool<null>(mine, 1 << 20);
    a.push('events', rows(0, 1), null);
    a.push('events', rows(1, 1), null);
    const b = new Spool<null>(theirs, 1 << 20);
    b.push('events', rows(10, 2), null);
    b.push('sessions', rows(12, 1), null);
    b.push('events', rows(13, 1), null);
    b.shift(); // a delivered batch is gone and not adopted

    expect(adoptSpool(theirs, mine)).toBe(2);
    expect(readdirSync(theirs)).toEqual([]);
    expect(adoptSpool(theirs, mine)).toBe(0);
    expect(adoptSpool(join(dir, 'missing'), mine)).toBe(0);

    const after = new Spool<null>(mine, 1 << 20);
    expect(after.load()).toBe(4);
    const seen: Row[][] = [];
    for (let h = after.head(); h !== undefined; h = after.head()) { seen.push(await after.read(h)); after.shift(); }
    expect(seen).toEqual([rows(0, 1), rows(1, 1), rows(12, 1), rows(13, 1)]);
  });
});
