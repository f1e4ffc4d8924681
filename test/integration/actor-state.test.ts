import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { asBinary, open } from 'lmdb';
import {
  createActorSystem, createEngine, createLmdbStateStore, createManualClock, createSilentLogger, parseConfig, StateStoreError,
  type ActorBehavior, type ActorSystem, type LmdbStateStore,
} from '../../engine/index.js';
import { waitFor } from '../support/storage.js';

/**
 * Users' state through the actor system on the real disk store: passivated
 * to lmdb, restored from it, and carried over to a new system (a restart) on
 * the same files.
 */

interface Count { readonly events: number }
/** The snapshot is its own shape (not the state), so a restore that skipped the store would show. */
interface CountSnapshot { readonly n: number }

const counting: ActorBehavior<Count, 'event'> = {
  initial: () => ({ events: 0 }),
  receive: (state) => ({ events: state.events + 1 }),
  snapshot: (state): CountSnapshot => ({ n: state.events }),
  restore: (snapshot) => ({ events: (snapshot as CountSnapshot).n }),
};

/** Reads a live user's count: one more event, which the behaviour reports through `seen`. */
function observing(seen: Map<string, number>): ActorBehavior<Count, 'event'> {
  return { ...counting, receive: (state, _m, actor) => { seen.set(actor.uid, state.events + 1); return counting.receive(state, 'event', actor) as Count; } };
}

const dirs: string[] = [];
const stores: LmdbStateStore[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'flowstat-actor-state-'));
  dirs.push(dir);
  return dir;
}
function openStore(path: string): LmdbStateStore {
  const store = createLmdbStateStore({ path });
  stores.push(store);
  return store;
}
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const IDLE_MS = 60_000;

function systemOn(store: LmdbStateStore, behavior: ActorBehavior<Count, 'event'>, errors: { err: Error; context: string }[] = []) {
  const clock = createManualClock(1_000_000);
  const system: ActorSystem<'event'> = createActorSystem<Count, 'event'>({
    behavior, store, clock, idleTimeoutMs: IDLE_MS, tickMs: 1_000, shards: 2,
    onError: (err, context) => errors.push({ err, context }),
  });
  system.start();
  return { system, clock, errors };
}

function send(system: ActorSystem<'event'>, uid: string, times: number): void {
  for (let i = 0; i < times; i++) expect(system.tell(1, uid, 'event')).toBe(0);
}

describe('actor state on disk - passivation', () => {
  it('an idle user is passivated to disk and restored from it, its count continuing', async () => {
    const store = openStore(join(tempDir(), 'state'));
    const seen = new Map<string, number>();
    const { system, clock } = systemOn(store, observing(seen));
    send(system, 'alice', 3);
    send(system, 'bob', 1);

    clock.advance(IDLE_MS + 2_000);
    expect(system.stats()).toMatchObject({ live: 0, passivated: 2 });
    // The saves are asynchronous commits; wait until both are readable from the file.
    await waitFor('snapshots committed', () => Promise.resolve(store.count() === 2));
    expect(store.get(1, 'alice')).toEqual({ n: 3 });
    expect(store.get(1, 'bob')).toEqual({ n: 1 });

    send(system, 'alice', 2);
    expect(seen.get('alice')).toBe(5);
    expect(system.stats()).toMatchObject({ live: 1, restored: 1, created: 2 });
    await system.passivateAll();
    expect(store.get(1, 'alice')).toEqual({ n: 5 });
  });
});

describe('actor state on disk - restart', () => {
  it('after passivateAll and close, a new system on the same path continues every user\'s count', async () => {
    const path = join(tempDir(), 'state');
    const first = openStore(path);
    const { system } = systemOn(first, counting);
    const users = 2_000;
    for (let u = 0; u < users; u++) send(system, `u${u}`, 1 + (u % 5));
    // The engine's shutdown order: stop, drain, passivate every live actor, close the store.
    system.stop();
    await system.drain();
    await system.passivateAll();
    await first.close();

    const seen = new Map<string, number>();
    const second = openStore(path);
    expect(second.count()).toBe(users);
    const restarted = systemOn(second, observing(seen)).system;
    for (let u = 0; u < users; u++) send(restarted, `u${u}`, 1);
    for (let u = 0; u < users; u++) {
      if (seen.get(`u${u}`) !== 2 + (u % 5)) expect.fail(`u${u} counted ${seen.get(`u${u}`)}, expected ${2 + (u % 5)}`);
    }
    expect(restarted.stats()).toMatchObject({ restored: users, created: 0 });
  });

  it('the engine opens the disk store under dataDir/state by default, and its shutdown leaves the state there for the next engine', async () => {
    const dataDir = tempDir();
    const config = parseConfig({ dataDir });
    const seen = new Map<string, number>();
    const start = () => createEngine<Count, 'event'>({ config, logger: createSilentLogger(), behavior: observing(seen) });

    const first = start();
    first.start();
    send(first.system, 'carol', 4);
    expect((await first.shutdown.run('test')).ok).toBe(true);

    const second = start();
    second.start();
    send(second.system, 'carol', 1);
    expect(seen.get('carol')).toBe(5);
    expect((await second.shutdown.run('test')).ok).toBe(true);

    const store = openStore(join(dataDir, 'state'));
    expect(store.get(1, 'carol')).toEqual({ n: 5 });
  });

  it('with actors.stateStore memory nothing is written under dataDir and a new engine starts users afresh', async () => {
    const dataDir = tempDir();
    const config = parseConfig({ dataDir, actors: { stateStore: 'memory' } });
    const seen = new Map<string, number>();
    for (let run = 0; run < 2; run++) {
      const engine = createEngine<Count, 'event'>({ config, logger: createSilentLogger(), behavior: observing(seen) });
      engine.start();
      send(engine.system, 'dave', 2);
      expect(seen.get('dave')).toBe(2);
      expect((await engine.shutdown.run('test')).ok).toBe(true);
    }
    expect(existsSync(join(dataDir, 'state'))).toBe(false);
  });
});

describe('actor state on disk - failures', () => {
  it('an unreadable snapshot is reported and the user starts as new; its next passivation repairs it', async () => {
    const path = join(tempDir(), 'state');
    const raw = open({ path });
    await raw.put([1, 'mallory'], asBinary(Buffer.from([0xc1, 0xff])));
    await raw.close();

    const store = openStore(path);
    const seen = new Map<string, number>();
    const { system, errors } = systemOn(store, observing(seen));
    send(system, 'mallory', 1);
    expect(seen.get('mallory')).toBe(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.context).toBe('state store get');
    expect(errors[0]!.err).toBeInstanceOf(StateStoreError);

    await system.passivateAll();
    expect(store.get(1, 'mallory')).toEqual({ n: 1 });
  });

  it('a snapshot restore() rejects is reported and the user starts as new (no throw out of tell)', async () => {
    const store = openStore(join(tempDir(), 'state'));
    await store.set(1, 'old-shape', { legacy: true });
    const strict: ActorBehavior<Count, 'event'> = {
      ...counting,
      restore(snapshot) {
        const n = (snapshot as Partial<CountSnapshot>).n;
        if (typeof n !== 'number') throw new Error('snapshot without n');
        return { events: n };
      },
    };
    const { system, errors } = systemOn(store, strict);
    send(system, 'old-shape', 1);
    expect(errors.map((e) => `${e.context}: ${e.err.message}`)).toEqual(['state restore: snapshot without n']);
    await system.passivateAll();
    expect(store.get(1, 'old-shape')).toEqual({ n: 1 });
  });

  it('a save lmdb refuses is reported through onError; the other users are saved and the system goes on', async () => {
    const store = openStore(join(tempDir(), 'state'));
    const { system, errors } = systemOn(store, counting);
    const tooLong = 'x'.repeat(3_000); // over lmdb's 1978-byte key limit: a real write failure
    send(system, tooLong, 1);
    send(system, 'erin', 2);
    await system.passivateAll();

    expect(errors.map((e) => e.context)).toEqual(['state store set']);
    expect(errors[0]!.err).toBeInstanceOf(StateStoreError);
    expect(store.get(1, 'erin')).toEqual({ n: 2 });
    // Still serving: the failed user comes back as new, others as saved.
    send(system, 'erin', 1);
    send(system, tooLong, 1);
    expect(system.stats()).toMatchObject({ live: 2, restored: 1 });
  });
});
