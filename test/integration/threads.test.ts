import { afterEach, describe, expect, inject, it } from 'vitest';
import { shardOf } from '../../engine/system/index.js';
import { startGateway, TestClient, track as rpcTrack, uniqueDatabase, type TestGateway } from '../support/gateway.js';
import { tempDir } from '../support/engine-process.js';
import { propsOf, waitFor } from '../support/storage.js';

/**
 * The session actors on worker threads (actors.threads, docs/threads.md):
 * the real engine with 2 threads (the compiled worker from dist/), events
 * over real WebSocket and HTTP, rows read back from the shared ClickHouse
 * server. What must hold as in one thread: every event answered and stored
 * once, one user's events in order, pushes reach the user's sockets, metrics
 * add up over the threads, and users' state outlives a restart — also one
 * with a different thread count.
 */

let open: TestGateway[] = [];
afterEach(async () => {
  for (const g of open) await g.stop('test done');
  open = [];
});

async function start(overrides: Record<string, unknown>): Promise<TestGateway> {
  const g = await startGateway('uws', { storage: { flushMs: 100 }, ...overrides });
  open.push(g);
  return g;
}

async function rows<T>(g: TestGateway, sql: string): Promise<T[]> {
  const store = await g.storage.store.get();
  return store.query<T>(sql);
}

async function metric(g: TestGateway, line: string): Promise<number> {
  const text = await (await fetch(`${g.url}/metrics`)).text();
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? Number.NaN : Number(found.slice(line.length + 1));
}

describe('worker threads', () => {
  it('answers and stores every event once, keeps each user\'s events in order, and adds the threads\' metrics up', async () => {
    const g = await start({ actors: { threads: 2 } });
    const db = (await g.storage.store.get()).database;
    const users = Array.from({ length: 24 }, (_, i) => `thread-user-${i}`);
    // Both threads get users (the test would prove nothing with one).
    expect(new Set(users.map((u) => shardOf(u, 2))).size).toBe(2);
    const perUser = 6;
    // One server-side connection sends for every user, interleaved, as a batch SDK does.
    const client = await TestClient.connect(`${g.wsUrl}?uid=sdk`);
    const t0 = Date.now() - 60_000;
    let id = 0;
    for (let n = 0; n < perUser; n++) {
      for (const uid of users) client.sendJson(rpcTrack(++id, { uid, ts: t0 + n * 1_000, data: { n } }));
    }
    const replies = new Map<number, Record<string, unknown>>();
    for (let i = 0; i < id; i++) {
      const r = await client.next(10_000) as { id: number; result: Record<string, unknown> };
      replies.set(r.id, r.result);
    }
    client.close();
    expect(replies.size).toBe(users.length * perUser);
    expect(replies.get(1)).toMatchObject({ key: 'in.gen.track.page', uid: users[0] });
    // HTTP goes through the threads too.
    const res = await fetch(`${g.url}/track/page.gif?uid=${users[1]}&ts=${t0 + perUser * 1_000}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/gif');

    const stored = await waitFor('every event stored', async () => {
      const r = await rows<{ uid: string; seq: number; props: string; session_id: string }>(g,
        `SELECT uid, seq, props, toString(session_id) AS session_id FROM ${db}.events FINAL WHERE key = 'in.gen.track.page' ORDER BY uid, ts`);
      return r.length === users.length * perUser + 1 && r;
    }, 20_000, 200);
    for (const uid of users) {
      const mine = stored.filter((r) => r.uid === uid);
      // seq is the actor's count: 1..n in the order the user's events were sent.
      expect(mine.slice(0, perUser).map((r) => Number(r.seq))).toEqual([1, 2, 3, 4, 5, 6]);
      expect(mine.slice(0, perUser).map((r) => Number(propsOf(r).n))).toEqual([0, 1, 2, 3, 4, 5]);
      expect(new Set(mine.map((r) => r.session_id)).size).toBe(1);
    }

    await waitFor('the threads\' numbers in /metrics', async () => (await metric(g, 'flowstat_actors_live')) === users.length, 5_000, 100);
    // Each user's sessions started once, counted in whichever thread owns it.
    expect(await metric(g, 'flowstat_sessions_total{event="started"}')).toBe(users.length);
    expect(await metric(g, 'flowstat_enricher_runs_total{enricher="ua"}')).toBeGreaterThan(0);
    // The stored events and their session rows, summed over the threads' sinks (their numbers come every 250 ms).
    const ready = await waitFor('the stored rows in /readyz', async () => {
      const r = await (await fetch(`${g.url}/readyz`)).json() as { ready: boolean; checks: { sinks: Record<string, { stored: number }> } };
      return Object.values(r.checks.sinks)[0]!.stored >= users.length * perUser + 1 && r;
    }, 5_000, 100);
    expect(ready.ready).toBe(true);
  });

  it('a push from an actor on a worker thread reaches every open connection of that user', async () => {
    const g = await start({
      actors: { threads: 2 },
      funnels: [{
        name: 'cart', mode: 'ordered', windowMs: 3_600_000,
        steps: [{ pattern: 'in.gen.track.page' }, { pattern: 'in.gen.shop.add_to_cart', actions: [{ type: 'push', params: { offer: 'free-shipping' } }] }],
      }],
    });
    const tab = await TestClient.connect(`${g.wsUrl}?uid=push-user`);
    const otherTab = await TestClient.connect(`${g.wsUrl}?uid=push-user`);
    try {
      await tab.call(rpcTrack(1));
      tab.sendJson(rpcTrack(2, { service: 'shop', name: 'add_to_cart' }));
      const got = [await tab.next(), await tab.next()] as Record<string, unknown>[];
      const push = { jsonrpc: '2.0', method: 'push', params: { offer: 'free-shipping' } };
      expect(got.find((m) => m.method === 'push')).toEqual(push);
      expect(got.find((m) => m.id === 2)).toMatchObject({ result: { key: 'in.gen.shop.add_to_cart', uid: 'push-user' } });
      expect(await otherTab.next()).toEqual(push);
      await waitFor('the push counted', async () => (await metric(g, 'flowstat_pushes_total{counted="actions"}')) === 1, 5_000, 100);
      expect(await metric(g, 'flowstat_pushes_total{counted="deliveries"}')).toBe(2);
    } finally {
      tab.close();
      otherTab.close();
    }
  });

  it('users\' state outlives a restart with a different thread count (one state store for all threads)', async () => {
    const dataDir = tempDir();
    const database = uniqueDatabase('threads');
    const uid = 'returning-user';
    const t0 = Date.now() - 10 * 60_000;
    const overrides = (threads: number): Record<string, unknown> => ({
      dataDir, actors: { threads }, clickhouse: { url: inject('clickhouseUrl'), database },
    });
    // The first run: two threads; the user's first event.
    const first = await start(overrides(2));
    expect((await fetch(`${first.url}/track/page?uid=${uid}&ts=${t0}`)).status).toBe(200);
    expect(await first.stop('restart')).toBe(true);
    open = open.filter((g) => g !== first);

    // The second: three threads (the user may now live on another one); five minutes later, same session.
    const second = await start(overrides(3));
    expect((await fetch(`${second.url}/track/page?uid=${uid}&ts=${t0 + 5 * 60_000}`)).status).toBe(200);
    const stored = await waitFor('both events stored', async () => {
      const r = await rows<{ seq: number; session_id: string }>(second,
        `SELECT seq, toString(session_id) AS session_id FROM ${database}.events FINAL WHERE uid = '${uid}' AND key = 'in.gen.track.page' ORDER BY ts`);
      return r.length === 2 && r;
    }, 20_000, 200);
    expect(stored.map((r) => Number(r.seq))).toEqual([1, 2]);
    expect(stored[1]!.session_id).toBe(stored[0]!.session_id);
    await waitFor('the restored actor counted', async () => (await metric(second, 'flowstat_actors_live')) === 1, 5_000, 100);
  });
  it('an event its thread refuses (mailbox full) is answered with the error and counted as refused, not accepted', async () => {
    // A remote enricher makes each event wait on I/O (here a port nobody listens on, failing fast), so the user's next events queue.
    const g = await start({
      actors: { threads: 1, mailboxCapacity: 2 },
      enrichers: [{
        type: 'remote', name: 'slow', keys: ['in.gen.**'], timeoutMs: 200,
        options: { url: 'http://127.0.0.1:9/enrich', namespace: 'slow', columns: ['utm_content'], reads: ['uid'] },
      }],
    });
    const client = await TestClient.connect(`${g.wsUrl}?uid=flooder`);
    try {
      // One frame with 50 calls for one user: they reach the thread in one batch, beyond its mailbox of 2.
      client.sendJson(Array.from({ length: 50 }, (_, i) => rpcTrack(i + 1)));
      const replies = await client.next(10_000) as { id: number; result?: unknown; error?: { code: number; data?: { code?: string } } }[];
      expect(replies).toHaveLength(50);
      const ok = replies.filter((r) => r.result !== undefined).length;
      const refused = replies.filter((r) => r.error !== undefined);
      expect(ok).toBeGreaterThan(0);
      expect(refused.length).toBeGreaterThan(0);
      expect(ok + refused.length).toBe(50);
      expect(JSON.stringify(refused[0])).toContain('FLOW_ERR_OVERLOADED');
      expect(await metric(g, 'flowstat_events_accepted_total{channel="gen"}')).toBe(ok);
      expect(await metric(g, 'flowstat_events_rejected_total{reason="FLOW_ERR_OVERLOADED"}')).toBe(refused.length);
    } finally {
      client.close();
    }
  });
});
