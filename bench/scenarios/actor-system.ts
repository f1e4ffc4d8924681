import { createActorSystem, type ActorSystem } from '../../engine/system/index.js';
import { gc, heapUsed, round, timeIt } from '../lib/measure.js';
import { createZipf, mulberry32, permutation } from '../lib/random.js';
import type { Scenario, ScenarioResult } from '../lib/scenario.js';

/**
 * Router + mailbox + a trivial actor (a per-user counter) for 1M users.
 * Measures routing throughput (hash(uid) → shard → actor → behaviour) under
 * Zipf activity — how real traffic looks — and under uniform random access,
 * the cache-hostile worst case, next to a bare Map doing only the lookup in
 * the same run (the ceiling for "find this user's object" in JS). Also heap
 * bytes per idle live actor, uid string included.
 */

const USERS = 1_000_000;
const EVENTS = 10_000_000;
const SHARDS = Number(process.env.BENCH_SHARDS ?? 4); // > 1 so every event pays for hashing its uid
const SEED = 20261123;

export const actorSystemScenario: Scenario = {
  name: 'actor-system',
  description: 'router + mailbox + trivial actor, 1M users',
  async run(progress): Promise<ScenarioResult> {
    const rand = mulberry32(SEED);
    const uidNumbers = permutation(USERS, rand);

    progress('creating 1M actors');
    const system: ActorSystem<number> = createActorSystem<number, number>({
      behavior: { initial: () => 0, receive: (count, n) => count + n },
      shards: SHARDS,
      maxLiveActors: USERS * 2,
    });
    const before = heapUsed();
    // The uid strings are made inside the measured window: a live actor keeps
    // its uid. They come out of JSON.parse, as they do from the wire — flat
    // strings, not the ropes a template literal makes (a rope costs an extra
    // pointer chase on every lookup).
    const uids = JSON.parse(JSON.stringify(Array.from(uidNumbers, (n) => `u-${n.toString(36).padStart(6, '0')}-${(n * 2654435761 >>> 0).toString(16)}`))) as string[];
    for (let i = 0; i < USERS; i++) system.tell(1, uids[i]!, 1);
    const after = heapUsed();
    const bytesPerActor = (after - before) / USERS;
    const uidBytes = 16 + Math.ceil((uids[0]!.length) / 8) * 8; // V8 sequential one-byte string header + payload
    if (system.stats().live !== USERS) throw new Error(`expected ${USERS} live actors, got ${system.stats().live}`);

    progress('generating workloads');
    const zipf = createZipf(USERS, 1.0, rand);
    const zipfOrder = new Uint32Array(EVENTS);
    for (let i = 0; i < EVENTS; i++) zipfOrder[i] = zipf();
    const uniformOrder = new Uint32Array(EVENTS);
    for (let i = 0; i < EVENTS; i++) uniformOrder[i] = Math.floor(rand() * USERS);

    // Each event carries its own uid string, as an event parsed off the wire
    // does: a fresh flat string, laid out in arrival order, not the object the
    // actor holds. (Reusing the actor's own string object would add a cache
    // miss per event that production never pays, and skip the key compare it
    // always pays.)
    const wireUids = (order: Uint32Array): string[] => {
      const out: string[] = [];
      for (let start = 0; start < order.length; start += 1_000_000) {
        const chunk = Array.from(order.subarray(start, start + 1_000_000), (i) => uids[i]!);
        for (const uid of JSON.parse(JSON.stringify(chunk)) as string[]) out.push(uid);
      }
      return out;
    };
    const run = (events: readonly string[]): number => {
      let refused = 0;
      const seconds = timeIt(() => {
        for (let i = 0; i < events.length; i++) if (system.tell(1, events[i]!, 1) !== 0) refused++;
      });
      if (refused > 0) throw new Error(`${refused} events refused`);
      return events.length / seconds;
    };
    // One warm-up pass so the measured passes run optimized code.
    progress('warm-up');
    run(wireUids(zipfOrder.subarray(0, 1_000_000)));
    let events = wireUids(zipfOrder);
    gc();
    progress('zipf pass');
    const zipfRate = run(events);
    events = wireUids(uniformOrder);
    gc();
    progress('uniform pass');
    const uniformRate = run(events);

    // The same 1M actors live, but traffic from 1,000 of them: what routing
    // and the mailbox cost when memory latency is not what limits.
    progress('hot-set pass');
    const hotOrder = new Uint32Array(EVENTS);
    for (let i = 0; i < EVENTS; i++) hotOrder[i] = zipfOrder[i]! % 1_000;
    events = wireUids(hotOrder);
    gc();
    const hotRate = run(events);

    const processed = system.stats().processed;
    const expected = USERS + 1_000_000 + 3 * EVENTS;
    if (processed !== expected) throw new Error(`processed ${processed}, expected ${expected}`);

    progress('baseline: bare Map lookup');
    events = wireUids(uniformOrder);
    const bare = new Map<string, { n: number }>();
    for (const uid of uids) bare.set(uid, { n: 0 });
    const bareRun = (list: readonly string[]): number => list.length / timeIt(() => {
      for (let i = 0; i < list.length; i++) bare.get(list[i]!)!.n++;
    });
    const bareUniform = bareRun(events);
    events = wireUids(zipfOrder);
    gc();
    const bareZipf = bareRun(events);

    return {
      scenario: 'actor-system',
      description: this.description,
      params: { users: USERS, events: EVENTS, shards: SHARDS, zipfS: 1.0, seed: SEED },
      metrics: [
        { name: 'events/s (Zipf activity)', value: round(zipfRate), unit: 'events/s', target: { op: '>=', value: 5_000_000 } },
        { name: 'events/s (uniform random users)', value: round(uniformRate), unit: 'events/s', note: 'cache-hostile worst case' },
        { name: 'events/s (1,000 active users of the 1M live)', value: round(hotRate), unit: 'events/s', note: 'routing + mailbox cost without memory stalls' },
        { name: 'baseline bare Map lookup, Zipf', value: round(bareZipf), unit: 'lookups/s' },
        { name: 'baseline bare Map lookup, uniform', value: round(bareUniform), unit: 'lookups/s' },
        { name: 'ratio to bare Map, Zipf', value: round(zipfRate / bareZipf, 2), unit: 'x' },
        { name: 'ratio to bare Map, uniform', value: round(uniformRate / bareUniform, 2), unit: 'x' },
        { name: 'heap per idle actor (uid included)', value: round(bytesPerActor, 1), unit: 'bytes', target: { op: '<=', value: 300 } },
        { name: 'of which the uid string', value: uidBytes, unit: 'bytes' },
      ],
    };
  },
};
