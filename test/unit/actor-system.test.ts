import { describe, expect, it } from 'vitest';
import {
  createActorSystem, createManualClock, createMemoryStateStore, tellError,
  TELL_ACCEPTED, TELL_MAILBOX_FULL, TELL_NO_CAPACITY, TELL_OVERLOADED, TELL_STOPPED,
  type ActorBehavior, type DeadLetter, type StateStore,
} from '../../engine/index.js';

/** A user's state: the sequence numbers it processed, in order. */
type Seen = readonly number[];
interface Msg { seq: number; delay?: number; fail?: boolean }

function recordingBehavior(options: { async?: boolean } = {}): ActorBehavior<Seen, Msg> {
  return {
    initial: () => [],
    receive(state, msg) {
      if (msg.fail) throw new Error(`boom on ${msg.seq}`);
      const next = [...state, msg.seq];
      if (options.async && msg.delay !== undefined) {
        return new Promise((resolve) => setTimeout(() => resolve(next), msg.delay));
      }
      return next;
    },
  };
}

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('actor system - ordering', () => {
  it('processes 10k users x 100 interleaved events in each user\'s send order', async () => {
    const users = 10_000;
    const perUser = 100;
    const store = createMemoryStateStore();
    // State: how many events arrived in order so far; -1 once one arrived out of order.
    const system = createActorSystem<number, Msg>({
      behavior: {
        initial: () => 0,
        receive(count, msg) {
          const next = count >= 0 && msg.seq === count ? count + 1 : -1;
          return msg.delay === undefined ? next : new Promise((r) => setTimeout(() => r(next), msg.delay));
        },
      },
      store,
      shards: 4,
      maxQueued: users * perUser,
      mailboxCapacity: perUser,
    });
    const rand = mulberry32(42);
    const next = new Uint16Array(users);
    let remaining = users * perUser;
    let refused = 0;
    // Interleave: pick a random user with events left; a few events go async
    // so the ones behind them must wait in the mailbox.
    while (remaining > 0) {
      let u = Math.floor(rand() * users);
      while (next[u] === perUser) u = (u + 1) % users;
      const seq = next[u]!++;
      const delay = rand() < 0.02 ? Math.floor(rand() * 3) : undefined;
      if (system.tell(1, `user-${u}`, { seq, delay }) !== TELL_ACCEPTED) refused++;
      remaining--;
    }
    expect(refused).toBe(0);
    await system.drain();
    await system.passivateAll();
    const counts = new Map<unknown, number>();
    for (let u = 0; u < users; u++) {
      const c = store.get(1, `user-${u}`);
      counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    expect([...counts]).toEqual([[perUser, users]]);
    expect(system.stats().processed).toBe(users * perUser);
  });

  it('keeps projects apart: the same uid in two projects is two actors', () => {
    const store = createMemoryStateStore();
    const system = createActorSystem<Seen, Msg>({ behavior: recordingBehavior(), store });
    system.tell(1, 'same', { seq: 1 });
    system.tell(2, 'same', { seq: 2 });
    expect(system.stats().live).toBe(2);
    return system.passivateAll().then(() => {
      expect(store.get(1, 'same')).toEqual([1]);
      expect(store.get(2, 'same')).toEqual([2]);
    });
  });
});

describe('actor system - passivation', () => {
  it('passivates an idle actor after the idle timeout and restores its state on the next message', () => {
    const clock = createManualClock(1_000_000);
    const store = createMemoryStateStore();
    const system = createActorSystem<Seen, Msg>({ behavior: recordingBehavior(), store, clock, idleTimeoutMs: 60_000, tickMs: 1_000 });
    system.start();
    system.tell(1, 'alice', { seq: 1 });
    system.tell(1, 'alice', { seq: 2 });
    clock.advance(30_000);
    system.tell(1, 'bob', { seq: 1 });
    clock.advance(31_000);
    // alice idle 61 s: passivated and saved; bob idle 31 s: still live.
    expect(system.stats()).toMatchObject({ live: 1, passivated: 1 });
    expect(store.get(1, 'alice')).toEqual([1, 2]);
    expect(store.get(1, 'bob')).toBeUndefined();

    system.tell(1, 'alice', { seq: 3 });
    expect(system.stats()).toMatchObject({ live: 2, restored: 1 });
    clock.advance(61_000);
    expect(system.stats().live).toBe(0);
    expect(store.get(1, 'alice')).toEqual([1, 2, 3]);
    expect(store.get(1, 'bob')).toEqual([1]);
  });

  it('an actor that keeps receiving messages is never passivated', () => {
    const clock = createManualClock(0);
    const store = createMemoryStateStore();
    const system = createActorSystem<Seen, Msg>({ behavior: recordingBehavior(), store, clock, idleTimeoutMs: 10_000, tickMs: 500 });
    system.start();
    for (let i = 0; i < 100; i++) {
      system.tell(1, 'busy-user', { seq: i });
      clock.advance(5_000);
    }
    expect(system.stats()).toMatchObject({ live: 1, passivated: 0 });
  });

  it('caps live actors by passivating the least recently used idle one', () => {
    const clock = createManualClock(0);
    const store = createMemoryStateStore();
    const system = createActorSystem<Seen, Msg>({ behavior: recordingBehavior(), store, clock, idleTimeoutMs: 600_000, tickMs: 1_000, maxLiveActors: 3 });
    system.start();
    system.tell(1, 'a', { seq: 1 });
    clock.advance(1_000);
    system.tell(1, 'b', { seq: 1 });
    clock.advance(1_000);
    system.tell(1, 'c', { seq: 1 });
    clock.advance(1_000);
    system.tell(1, 'a', { seq: 2 }); // a is now the most recent; b the least
    clock.advance(1_000);
    system.tell(1, 'd', { seq: 1 });
    expect(system.stats()).toMatchObject({ live: 3, passivated: 1 });
    expect(store.get(1, 'b')).toEqual([1]);
    expect(store.get(1, 'a')).toBeUndefined();
    clock.advance(1_000);
    system.tell(1, 'e', { seq: 1 });
    expect(store.get(1, 'c')).toEqual([1]);
  });

  it('restores from an async state store, queueing messages until the state arrives', async () => {
    const saved = new Map<string, unknown>([['1/carol', [7, 8]]]);
    const store: StateStore = {
      get: async (p, u) => { await new Promise((r) => setTimeout(r, 5)); return saved.get(`${p}/${u}`); },
      set: async (p, u, s) => { await new Promise((r) => setTimeout(r, 5)); saved.set(`${p}/${u}`, s); },
      delete: (p, u) => { saved.delete(`${p}/${u}`); },
    };
    const system = createActorSystem<Seen, Msg>({ behavior: recordingBehavior(), store });
    system.tell(1, 'carol', { seq: 9 });
    system.tell(1, 'carol', { seq: 10 });
    expect(system.stats().queued).toBe(2);
    await system.drain();
    await system.passivateAll();
    expect(saved.get('1/carol')).toEqual([7, 8, 9, 10]);
  });
});

describe('actor system - supervision', () => {
  it('a throwing handler loses none of the user\'s other events and the failing event reaches dead letters', async () => {
    const letters: DeadLetter<Msg>[] = [];
    const store = createMemoryStateStore();
    const system = createActorSystem<Seen, Msg>({
      behavior: recordingBehavior({ async: true }),
      store,
      onDeadLetter: (l) => letters.push(l),
    });
    for (let seq = 0; seq < 10; seq++) {
      system.tell(3, 'dave', { seq, fail: seq === 4, delay: seq === 2 ? 1 : undefined });
    }
    await system.drain();
    await system.passivateAll();
    expect(store.get(3, 'dave')).toEqual([0, 1, 2, 3, 5, 6, 7, 8, 9]);
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ projectId: 3, uid: 'dave', message: { seq: 4 } });
    expect(letters[0]!.error.message).toBe('boom on 4');
    expect(system.stats().failed).toBe(1);
  });

  it('keeps the last good state when an async receive rejects', async () => {
    const store = createMemoryStateStore();
    const letters: DeadLetter<number>[] = [];
    const system = createActorSystem<number, number>({
      store,
      onDeadLetter: (l) => letters.push(l),
      behavior: {
        initial: () => 0,
        receive: async (s, m) => { if (m < 0) throw new Error('negative'); return s + m; },
      },
    });
    system.tell(1, 'erin', 5);
    system.tell(1, 'erin', -1);
    system.tell(1, 'erin', 2);
    await system.drain();
    await system.passivateAll();
    expect(store.get(1, 'erin')).toBe(7);
    expect(letters.map((l) => l.message)).toEqual([-1]);
  });

  it('fails an async receive that overruns its timeout and moves on to the next event', async () => {
    const clock = createManualClock(0);
    const store = createMemoryStateStore();
    const letters: DeadLetter<number>[] = [];
    const system = createActorSystem<number, number>({
      store, clock, receiveTimeoutMs: 1_000,
      onDeadLetter: (l) => letters.push(l),
      behavior: {
        initial: () => 0,
        receive: (s, m) => (m === 0 ? new Promise<number>(() => {}) : s + m),
      },
    });
    system.tell(1, 'frank', 0);
    system.tell(1, 'frank', 4);
    expect(system.stats().busy).toBe(1);
    clock.advance(1_000);
    await system.drain();
    expect(letters).toHaveLength(1);
    expect(letters[0]!.error.message).toContain('timed out after 1000 ms');
    await system.passivateAll();
    expect(store.get(1, 'frank')).toBe(4);
  });

  it('a dead-letter listener that throws does not stop processing', () => {
    const errors: string[] = [];
    const system = createActorSystem<Seen, Msg>({
      behavior: recordingBehavior(),
      onDeadLetter: () => { throw new Error('listener broke'); },
      onError: (e, ctx) => errors.push(`${ctx}: ${e.message}`),
    });
    expect(system.tell(1, 'gina', { seq: 1, fail: true })).toBe(TELL_ACCEPTED);
    expect(system.tell(1, 'gina', { seq: 2 })).toBe(TELL_ACCEPTED);
    expect(errors).toEqual(['dead-letter listener: listener broke']);
    expect(system.stats().processed).toBe(1);
  });
});

describe('actor system - overload', () => {
  const never = <T>(): ActorBehavior<T, number> => ({
    initial: () => undefined as T,
    receive: () => new Promise<T>(() => {}),
  });

  it('a full shard queue rejects with the overload result instead of growing', () => {
    const system = createActorSystem<unknown, number>({ behavior: never(), maxQueued: 100, receiveTimeoutMs: 0 });
    for (let u = 0; u < 100; u++) system.tell(1, `u${u}`, 0); // each becomes busy
    for (let u = 0; u < 100; u++) expect(system.tell(1, `u${u}`, 1)).toBe(TELL_ACCEPTED);
    const results = Array.from({ length: 1_000 }, (_, i) => system.tell(1, `u${i % 100}`, 2));
    expect(new Set(results)).toEqual(new Set([TELL_OVERLOADED]));
    expect(system.stats()).toMatchObject({ queued: 100, rejected: 1_000 });
    const err = tellError(TELL_OVERLOADED)!;
    expect(err.code).toBe('FLOW_ERR_OVERLOADED');
    expect(err.status).toBe(503);
    expect(err.retryable).toBe(true);
  });

  it('one user flooding its mailbox is refused without affecting others', () => {
    const system = createActorSystem<unknown, number>({ behavior: never(), mailboxCapacity: 10, receiveTimeoutMs: 0 });
    system.tell(1, 'flood', 0);
    for (let i = 0; i < 10; i++) expect(system.tell(1, 'flood', i)).toBe(TELL_ACCEPTED);
    expect(system.tell(1, 'flood', 11)).toBe(TELL_MAILBOX_FULL);
    expect(system.tell(1, 'calm', 0)).toBe(TELL_ACCEPTED);
  });

  it('refuses a new user when the live-actor cap is reached and every actor is busy', () => {
    const system = createActorSystem<unknown, number>({ behavior: never(), maxLiveActors: 5, receiveTimeoutMs: 0 });
    for (let u = 0; u < 5; u++) expect(system.tell(1, `u${u}`, 0)).toBe(TELL_ACCEPTED);
    expect(system.tell(1, 'sixth', 0)).toBe(TELL_NO_CAPACITY);
    expect(tellError(TELL_NO_CAPACITY)!.status).toBe(503);
  });

  it('refuses everything after stop, with the shutting-down error', async () => {
    const system = createActorSystem<Seen, Msg>({ behavior: recordingBehavior() });
    system.stop();
    expect(system.tell(1, 'late', { seq: 1 })).toBe(TELL_STOPPED);
    expect(tellError(TELL_STOPPED)!.code).toBe('FLOW_ERR_SHUTTING_DOWN');
    await system.drain();
  });
});
