import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { asBinary, open } from 'lmdb';
import { createLmdbStateStore, parseConfig, stateKey, StateStoreError, type LmdbStateStore } from '../../engine/index.js';

/** Real lmdb files in a temp directory per test; every store a test opens is closed and the directory removed after it. */
const dirs: string[] = [];
const stores: LmdbStateStore[] = [];

function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'flowstat-state-'));
  dirs.push(dir);
  return join(dir, 'state');
}

function openStore(path: string): LmdbStateStore {
  const store = createLmdbStateStore({ path });
  stores.push(store);
  return store;
}

/** Writes raw bytes (or a value without the store's format tag) where the store keeps a user's snapshot. */
async function writeRaw(path: string, projectId: number, uid: string, value: unknown): Promise<void> {
  const raw = open({ path });
  await raw.put(stateKey(projectId, uid), value);
  await raw.close();
}

/** Writes a value where a build before 2026-12-05 kept it: under the key `[projectId, uid]`. */
async function writeLegacy(path: string, projectId: number, uid: string, value: unknown): Promise<void> {
  const raw = open({ path });
  await raw.put([projectId, uid], value);
  await raw.close();
}

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('lmdb state store - round trip', () => {
  it('gives back a saved snapshot of plain values, per project and uid', async () => {
    const store = openStore(tempPath());
    const snapshot = {
      events: 42, score: -0.125, big: 2 ** 40, name: 'Zoë 🛒', empty: '',
      pages: ['/a', '/b'], nested: { funnel: { step: 2, at: [1_700_000_000_000, null] } }, flag: true,
    };
    await store.set(1, 'user-1', snapshot);
    await store.set(2, 'user-1', { events: 1 });

    expect(store.get(1, 'user-1')).toEqual(snapshot);
    expect(store.get(2, 'user-1')).toEqual({ events: 1 });
    expect(store.get(1, 'user-2')).toBeUndefined();
    expect(store.get(3, 'user-1')).toBeUndefined();
  });

  it('keeps 20,000 users apart and counts them', async () => {
    const store = openStore(tempPath());
    const users = 20_000;
    // All in one event turn: lmdb commits them together, and each promise resolves on that commit.
    const writes: Promise<void>[] = [];
    for (let i = 0; i < users; i++) writes.push(store.set(1 + (i % 3), `u${i}`, { events: i, last: `/p/${i}` }));
    await Promise.all(writes);

    expect(store.count()).toBe(users);
    for (let i = 0; i < users; i++) {
      const got = store.get(1 + (i % 3), `u${i}`) as { events: number; last: string };
      if (got?.events !== i || got.last !== `/p/${i}`) expect.fail(`user u${i}: ${JSON.stringify(got)}`);
    }
  });

  it('deletes a user\'s snapshot; deleting one never saved is fine', async () => {
    const store = openStore(tempPath());
    await store.set(1, 'a', { events: 1 });
    await store.set(1, 'b', { events: 2 });
    await store.delete(1, 'a');
    await store.delete(1, 'never-seen');

    expect(store.get(1, 'a')).toBeUndefined();
    expect(store.get(1, 'b')).toEqual({ events: 2 });
    expect(store.count()).toBe(1);
  });
});

describe('lmdb state store - close and reopen', () => {
  it('close() lands writes that were never awaited; a reopened store reads them', async () => {
    const path = tempPath();
    const store = openStore(path);
    // Fire and forget, as the shard's passivation does; close must not lose them.
    for (let i = 0; i < 1_000; i++) void store.set(7, `u${i}`, { events: i });
    void store.delete(7, 'u0');
    await store.close();

    const reopened = openStore(path);
    expect(reopened.count()).toBe(999);
    expect(reopened.get(7, 'u0')).toBeUndefined();
    expect(reopened.get(7, 'u999')).toEqual({ events: 999 });
  });

  it('close() twice is harmless, and a closed store refuses reads and writes with errors (not a crash)', async () => {
    const store = openStore(tempPath());
    await store.set(1, 'a', { events: 1 });
    await Promise.all([store.close(), store.close()]);
    expect(() => store.get(1, 'a')).toThrow(StateStoreError);
    await expect(store.set(1, 'a', { events: 2 })).rejects.toBeInstanceOf(StateStoreError);
  });
});

describe('lmdb state store - unreadable values', () => {
  it('a corrupt value throws a StateStoreError naming the user; other users still read; a new set repairs it', async () => {
    const path = tempPath();
    const store = openStore(path);
    await store.set(1, 'good', { events: 5 });
    await store.close();
    // 0xc1 is never valid MessagePack.
    await writeRaw(path, 1, 'broken', asBinary(Buffer.from([0xc1, 0xff, 0x00])));

    const reopened = openStore(path);
    let thrown: unknown;
    try { reopened.get(1, 'broken'); } catch (err) { thrown = err; }
    expect(thrown).toBeInstanceOf(StateStoreError);
    expect(thrown).toMatchObject({ projectId: 1, uid: 'broken' });
    expect((thrown as Error).message).toContain('"broken" is unreadable');
    expect((thrown as Error).cause).toBeInstanceOf(Error);
    expect(reopened.get(1, 'good')).toEqual({ events: 5 });

    await reopened.set(1, 'broken', { events: 0 });
    expect(reopened.get(1, 'broken')).toEqual({ events: 0 });
  });

  it('a value that decodes but was not written by this store is refused, not handed to restore', async () => {
    const path = tempPath();
    // A lone 0x01 byte decodes as the number 1; a bare object lacks the format tag.
    await writeRaw(path, 1, 'one-byte', asBinary(Buffer.from([0x01])));
    await writeRaw(path, 1, 'untagged', { events: 3 });
    const store = openStore(path);
    expect(() => store.get(1, 'one-byte')).toThrow(/not in state format 1/);
    expect(() => store.get(1, 'untagged')).toThrow(/not in state format 1/);
  });
});

describe('lmdb state store - encoding', () => {
  /** The shape of a real snapshot: a session with its many fields, funnels, churn. */
  const snapshotOf = (i: number): Record<string, unknown> => ({
    events: i, arrival: i, userId: '',
    session: {
      id: `01a242bf-e27a-72ed-bead-${String(i).padStart(12, '0')}`, seq: 1, pages: 1, startedAt: 1_764_800_000_000 + i, lastAt: 1_764_800_000_000 + i,
      lastReceivedAt: 1_764_800_000_000 + i, splitAt: 0, campaign: '', landing: `https://shop.example.com/p/${i}`, exit: `https://shop.example.com/p/${i}`,
      referrer: '', sourceType: 'direct', utmSource: '', utmMedium: '', utmCampaign: '', deviceType: 'desktop', browser: 'Chrome', os: 'Linux',
      country: 'DE', city: 'Berlin', isBot: 0, endedAtSeq: 1,
    },
    dedup: null, funnels: { engaged: { s: 1, t0: i } }, churn: { a: 0.5, hi: i }, funnelProgress: 0, churnAt: 0, wakeAt: 0,
  });

  it('stores the key names of a snapshot shape once, not in every snapshot, and compresses what is left', async () => {
    const path = tempPath();
    const store = openStore(path);
    await Promise.all(Array.from({ length: 100 }, (_, i) => store.set(1, `u${i}`, snapshotOf(i))));
    expect(store.count()).toBe(100);
    await store.close();

    // As stored (compressed), and decompressed with the store's setting: the msgpack the store wrote.
    const stored = open({ path, encoding: 'binary', readOnly: true });
    const storedBytes = stored.getBinary(stateKey(1, 'u7')) as Uint8Array;
    await stored.close();
    const raw = open({ path, encoding: 'binary', readOnly: true, compression: { threshold: 64 } });
    const bytes = raw.getBinary(stateKey(1, 'u7')) as Uint8Array;
    await raw.close();
    expect(storedBytes.length).toBeLessThan(bytes.length); // LZ4 over 64 bytes
    const text = Buffer.from(bytes).toString('latin1');
    expect(text).toContain('shop.example.com/p/7'); // the values are there…
    expect(text).not.toContain('lastReceivedAt'); // …the key names are not
    // The same snapshot with its structure inline, as written before shared structures: about twice the bytes.
    const inlinePath = tempPath();
    await writeRaw(inlinePath, 1, 'u7', [1, snapshotOf(7)]);
    const inline = open({ path: inlinePath, encoding: 'binary', readOnly: true });
    const inlineBytes = inline.getBinary(stateKey(1, 'u7')) as Uint8Array;
    await inline.close();
    expect(Buffer.from(inlineBytes).toString('latin1')).toContain('lastReceivedAt');
    expect(bytes.length).toBeLessThan(inlineBytes.length * 0.6);
  });

  it('reads snapshots written with their structures inline, uncompressed and under array keys (before 2026-12-04) beside new ones, across reopens', async () => {
    const path = tempPath();
    await writeLegacy(path, 1, 'old', [1, snapshotOf(1)]);
    await writeLegacy(path, 1, 'old-2', [1, { other: 'shape', n: 2 }]);
    const store = openStore(path);
    expect(store.get(1, 'old')).toEqual(snapshotOf(1));
    await store.set(1, 'new', snapshotOf(2));
    await store.set(1, 'new-2', { yet: ['another', 'shape'] });
    expect(store.get(1, 'old')).toEqual(snapshotOf(1));
    expect(store.get(1, 'old-2')).toEqual({ other: 'shape', n: 2 });
    expect(store.get(1, 'new')).toEqual(snapshotOf(2));
    expect(store.count()).toBe(4);
    await store.close();

    const reopened = openStore(path);
    expect(reopened.get(1, 'new')).toEqual(snapshotOf(2));
    expect(reopened.get(1, 'new-2')).toEqual({ yet: ['another', 'shape'] });
    expect(reopened.get(1, 'old-2')).toEqual({ other: 'shape', n: 2 });
    expect(reopened.get(1, 'old')).toEqual(snapshotOf(1));
    expect(reopened.count()).toBe(4);
  });
});

describe('lmdb state store - keys', () => {
  const uuid = (i: number): string => `${i.toString(16).padStart(8, '0')}-7a1b-4c2d-8e3f-${(i * 7919).toString(16).padStart(12, '0')}`;

  it('keys a canonical UUID uid by its 16 bytes, any other uid by its text, and keeps them apart', async () => {
    const path = tempPath();
    const store = openStore(path);
    const id = '56383633-824c-4e85-8a8e-f62f50e0126d';
    // Not canonical (upper case, no dashes): other users, keyed by their text.
    const others = [id.toUpperCase(), id.replace(/-/g, ''), `${id}x`, ':' + Buffer.from(id.replace(/-/g, ''), 'hex').toString('base64url')];
    await store.set(1, id, { events: 1 });
    for (const [i, uid] of others.entries()) await store.set(1, uid, { events: 2 + i });
    expect(store.get(1, id)).toEqual({ events: 1 });
    for (const [i, uid] of others.entries()) expect(store.get(1, uid)).toEqual({ events: 2 + i });
    expect(store.get(2, id)).toBeUndefined();
    expect(store.get(11, id)).toBeUndefined();
    expect(store.count()).toBe(1 + others.length);
    await store.close();

    const raw = open({ path, readOnly: true });
    const keys = [...raw.getKeys()];
    await raw.close();
    expect(keys).toContain('1:Vjg2M4JMToWKjvYvUOASbQ'); // 24 bytes where [1, uid] took 46
    expect(keys.filter((k) => typeof k === 'string' && k.startsWith('1/')).sort()).toEqual(others.map((u) => `1/${u}`).sort());

    const reopened = openStore(path);
    expect(reopened.get(1, id)).toEqual({ events: 1 });
    await reopened.delete(1, id);
    expect(reopened.get(1, id)).toBeUndefined();
    expect(reopened.count()).toBe(others.length);
  });

  it('rewrites a store with [projectId, uid] keys (before 2026-12-05) once, in batches, reporting progress; every user reads back', async () => {
    const path = tempPath();
    const users = 25_000;
    // As the build before wrote them: shared structures, LZ4 over 64 bytes, array keys.
    const legacy = open({ path, sharedStructuresKey: Symbol.for('flowstat.state.structures'), compression: { threshold: 64 } });
    const snapshot = (i: number): object => (i % 2 === 0 ? { events: i } : { events: i, landing: `https://shop.example.com/p/${i}?utm_source=newsletter&utm_medium=email` });
    legacy.transactionSync(() => {
      for (let i = 0; i < users; i++) legacy.putSync([1 + (i % 2), uuid(i)], [1, snapshot(i)]);
      legacy.putSync([1, 'cookie-7'], [1, { events: -7 }]);
      legacy.putSync([1, 'broken'], asBinary(Buffer.from([0xc1, 0xff, 0x00])));
    });
    await legacy.close();

    const progress: { moved: number; done: boolean }[] = [];
    const store = createLmdbStateStore({ path, onMigration: (p) => progress.push(p) });
    stores.push(store);
    expect(progress.at(-1)).toEqual({ moved: users + 2, done: true });
    expect(progress.filter((p) => !p.done).map((p) => p.moved)).toEqual([10_000, 20_000, 25_002]);
    expect(store.count()).toBe(users + 2);
    for (const i of [0, 1, 9_999, 10_000, 17_777, users - 1]) expect(store.get(1 + (i % 2), uuid(i))).toEqual(snapshot(i));
    expect(store.get(1, 'cookie-7')).toEqual({ events: -7 });
    // Moved as the bytes it was: still unreadable, and still named.
    expect(() => store.get(1, 'broken')).toThrow(/state of project 1 uid "broken" is unreadable/);
    await store.close();

    const raw = open({ path, readOnly: true });
    const keys = [...raw.getKeys()];
    await raw.close();
    expect(keys.filter((k) => typeof k !== 'string')).toEqual([]);
    expect(keys).toContain('1/cookie-7');

    // Done once: a reopen has nothing to rewrite.
    const again: unknown[] = [];
    const reopened = createLmdbStateStore({ path, onMigration: (p) => again.push(p) });
    stores.push(reopened);
    expect(again).toEqual([]);
    expect(reopened.get(1, uuid(17_778))).toEqual(snapshot(17_778));
    expect(reopened.get(2, uuid(17_777))).toEqual(snapshot(17_777));
  });

  it('a new store has nothing to rewrite', () => {
    const progress: unknown[] = [];
    stores.push(createLmdbStateStore({ path: tempPath(), onMigration: (p) => progress.push(p) }));
    expect(progress).toEqual([]);
  });
});

describe('lmdb state store - writes', () => {
  it('writes to one key land in call order: the last set or delete wins', async () => {
    const store = openStore(tempPath());
    const settled: string[] = [];
    const track = (name: string, p: Promise<void>): Promise<void> => p.then(() => { settled.push(name); });
    // None awaited in between, as when a user is passivated, restored and passivated again quickly.
    await Promise.all([
      track('set 1', store.set(1, 'a', { events: 1 })),
      track('set 2', store.set(1, 'a', { events: 2 })),
      track('delete', store.delete(1, 'a')),
      track('set 3', store.set(1, 'a', { events: 3 })),
      track('set b', store.set(1, 'b', { events: 1 })),
      track('delete b', store.delete(1, 'b')),
    ]);
    expect(store.get(1, 'a')).toEqual({ events: 3 });
    expect(store.get(1, 'b')).toBeUndefined();
    expect(settled).toEqual(['set 1', 'set 2', 'delete', 'set 3', 'set b', 'delete b']);

    // Once a set has resolved, every get sees it.
    await store.set(1, 'a', { events: 4 });
    expect(store.get(1, 'a')).toEqual({ events: 4 });
  });

  it('a write lmdb refuses (key over 1978 bytes) rejects with a StateStoreError, and the store goes on', async () => {
    const store = openStore(tempPath());
    const uid = 'x'.repeat(3_000);
    const failed = store.set(1, uid, { events: 1 });
    await expect(failed).rejects.toBeInstanceOf(StateStoreError);
    await expect(failed).rejects.toThrow(/was not saved: Key size is larger than the maximum key size/);

    await store.set(1, 'normal', { events: 1 });
    expect(store.get(1, 'normal')).toEqual({ events: 1 });
  });
});

describe('state store - config', () => {
  it('actors.stateStore defaults to disk, accepts memory, and FLOWSTAT_STATE_STORE overrides the file', () => {
    expect(parseConfig({}).actors.stateStore).toBe('disk');
    expect(parseConfig({ actors: { stateStore: 'memory' } }).actors.stateStore).toBe('memory');
    expect(parseConfig({ actors: { stateStore: 'disk' } }, { FLOWSTAT_STATE_STORE: 'memory' }).actors.stateStore).toBe('memory');
    expect(() => parseConfig({}, { FLOWSTAT_STATE_STORE: 'nats' })).toThrow(/actors\.stateStore \(from FLOWSTAT_STATE_STORE\)/);
  });
});
