import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFingerprintEnricher, fingerprint } from '../../actors/enrichers/fingerprint.js';
import { createPageEnricher, PAGE_COLUMNS } from '../../actors/enrichers/page.js';
import { createRemoteEnricher } from '../../actors/enrichers/remote.js';
import { createEnricherSet, type EnricherEntry, type EnricherSet } from '../../actors/enrichers/runtime.js';
import type { EnrichPatch, Enricher } from '../../actors/enrichers/types.js';
import { createUaEnricher, UA_COLUMNS } from '../../actors/enrichers/ua.js';
import { createEnvelope, type Envelope } from '../../engine/index.js';
import { eventRow, type ClickHouseStore, type Row } from '../../sinks/index.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { waitFor } from '../support/storage.js';

/**
 * The enricher runtime with the real local enrichers, a real HTTP service
 * for the remote one, and the whole engine: an enricher that throws,
 * overruns, answers 500 or never answers costs its own columns only — the
 * event keeps the others, is stored, and its sender gets a reply.
 */

const CHROME_UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const PAGE_URL = 'https://shop.example.com/p/42?utm_source=newsletter&utm_medium=email&utm_campaign=spring';
const REFERRER = 'https://www.bing.com/search?q=red+shoes';
const IP = '81.2.69.142';

function envelope(key = 'in.gen.track.page', uid = 'user-1'): Envelope {
  return createEnvelope({ key, projectId: 1, uid, receivedAt: Date.now(), ip: IP, userAgent: CHROME_UA, pageUrl: PAGE_URL, pageReferrer: REFERRER, pageTitle: 'Shoe 42' });
}

/** ua, page and fingerprint on every incoming event, then `extra`. */
function realSet(...extra: EnricherEntry[]): EnricherSet {
  return createEnricherSet([
    { enricher: createUaEnricher(), keys: ['in.**'] },
    { enricher: createPageEnricher(), keys: ['in.**'] },
    { enricher: createFingerprintEnricher(), keys: ['in.**'] },
    ...extra,
  ]);
}

/** An enricher whose columns are `${namespace}_a` and `${namespace}_b`. */
function local(name: string, enrich: (e: Envelope) => EnrichPatch | Promise<EnrichPatch>, timeoutMs = 0): Enricher {
  return { name, namespace: name, columns: [`${name}_a`, `${name}_b`], reads: ['uid'], timeoutMs, enrich };
}

/** What the real enrichers write for envelope(): checked in every test, so a failing neighbour is seen to cost nothing. */
function expectRealColumns(row: Row): void {
  for (const col of [...UA_COLUMNS, ...PAGE_COLUMNS, 'fpid']) expect(row, col).toHaveProperty(col);
  expect(row).toMatchObject({
    ua_browser: 'Chrome', ua_browser_major: '131', ua_os: 'Windows', ua_device_type: 'desktop', is_bot: 0,
    page_host: 'shop.example.com', page_path: '/p/42', referrer_host: 'www.bing.com',
    utm_source: 'newsletter', utm_campaign: 'spring', source_type: 'email', search_keyword: 'red shoes',
    fpid: fingerprint(IP, CHROME_UA),
  });
}

async function timed<T>(fn: () => T | Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
}

interface Received {
  readonly path: string;
  readonly contentType: string | undefined;
  readonly body: unknown;
}

/**
 * A remote enricher service: /ok answers columns (declared and not), /fail
 * answers 500, /hang never answers, /vip answers {utm_content: 'vip-'+uid}.
 */
async function startService(): Promise<{ server: Server; url: string; received: Received[]; hanging: number }> {
  const received: Received[] = [];
  const state = { hanging: 0 };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      received.push({ path: req.url ?? '', contentType: req.headers['content-type'], body });
      const json = (status: number, obj: unknown): void => { res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(obj)); };
      switch (req.url) {
        case '/ok': return json(200, { crm_segment: 'gold', crm_score: 7, crm_secret: 'not declared', page_host: 'hijacked.example' });
        case '/fail': return json(500, { error: 'boom' });
        case '/vip': return json(200, { utm_content: `vip-${String(body.uid)}`, utm_source: 'not declared' });
        case '/hang': state.hanging++; return; // never answers
        default: return json(404, {});
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}`, received, get hanging() { return state.hanging; } };
}

async function stopService(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describe('enricher runtime - local enrichers', () => {
  it('the real ua, page and fingerprint enrichers fill their columns synchronously', () => {
    const set = realSet();
    const row = eventRow(envelope());
    expect(set.apply(envelope(), row)).toBeUndefined();
    expectRealColumns(row);
    expect(set.stats().runs).toEqual({ ua: 1, page: 1, fingerprint: 1 });
  });

  it('an enricher that throws is counted as a failure; the others still write and apply stays synchronous', () => {
    const boom = local('boom', () => { throw new Error('enricher bug'); });
    const set = realSet({ enricher: boom, keys: ['in.**'] });
    const row = eventRow(envelope());
    expect(set.apply(envelope(), row)).toBeUndefined();
    expectRealColumns(row);
    expect(row).not.toHaveProperty('boom_a');
    const stats = set.stats();
    expect(stats.failures).toEqual({ ua: 0, page: 0, fingerprint: 0, boom: 1 });
    expect(stats.runs.boom).toBe(1);
  });

  it('an enricher subscribed to in.gen.track.* does not run for in.gen.shop.buy', () => {
    const calls: string[] = [];
    const trackOnly = local('trk', (e) => { calls.push(e.key); return { trk_a: 'seen' }; });
    const set = realSet({ enricher: trackOnly, keys: ['in.gen.track.*'] });

    const buy = eventRow(envelope('in.gen.shop.buy'));
    expect(set.apply(envelope('in.gen.shop.buy'), buy)).toBeUndefined();
    expectRealColumns(buy);
    expect(buy).not.toHaveProperty('trk_a');

    const page = eventRow(envelope('in.gen.track.page'));
    expect(set.apply(envelope('in.gen.track.page'), page)).toBeUndefined();
    expect(page.trk_a).toBe('seen');

    expect(calls).toEqual(['in.gen.track.page']);
    expect(set.stats().runs).toEqual({ ua: 2, page: 2, fingerprint: 2, trk: 1 });
  });

  it('a column outside an enricher\'s declared columns is not written and is counted as stray', () => {
    // One stray next to all declared columns, one next to a missing declared column.
    const full = local('full', () => ({ full_a: 1, full_b: 2, page_host: 'hijacked.example' }));
    const partial = local('part', () => ({ part_a: 'x', ua_browser: 'Netscape' }));
    const set = realSet({ enricher: full, keys: ['in.**'] }, { enricher: partial, keys: ['in.**'] });
    const row = eventRow(envelope());
    expect(set.apply(envelope(), row)).toBeUndefined();
    expectRealColumns(row);
    expect(row).toMatchObject({ full_a: 1, full_b: 2, part_a: 'x' });
    expect(row).not.toHaveProperty('part_b');
    expect(set.stats().stray).toEqual({ ua: 0, page: 0, fingerprint: 0, full: 1, part: 1 });
  });
});

describe('enricher runtime - session memo', () => {
  const OTHER_UA = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';

  /** envelope() with some fields changed; strings rebuilt so equality is by content, as off the wire. */
  function variant(changes: Partial<{ userAgent: string; pageUrl: string; ip: string }>): Envelope {
    const fresh = (s: string): string => JSON.parse(JSON.stringify(s)) as string;
    return createEnvelope({
      key: 'in.gen.track.page', projectId: 1, uid: 'user-1', receivedAt: Date.now(),
      ip: fresh(changes.ip ?? IP), userAgent: fresh(changes.userAgent ?? CHROME_UA),
      pageUrl: fresh(changes.pageUrl ?? PAGE_URL), pageReferrer: fresh(REFERRER), pageTitle: 'Shoe 42',
    });
  }

  it('a pure enricher is not run again while the fields it reads are unchanged; its columns are written all the same', () => {
    const set = realSet();
    const memo = set.memo();
    expect(memo).toBeDefined();
    const first = eventRow(variant({}));
    expect(set.apply(variant({}), first, memo)).toBeUndefined();
    const second = eventRow(variant({}));
    expect(set.apply(variant({}), second, memo)).toBeUndefined();
    expectRealColumns(second);
    expect(second).toEqual({ ...first, event_id: second.event_id, event_date: second.event_date, ts: second.ts, received_at: second.received_at });
    expect(set.stats().runs).toEqual({ ua: 1, page: 1, fingerprint: 1 });
    expect(set.stats().reused).toEqual({ ua: 1, page: 1, fingerprint: 1 });
  });

  it('a changed field re-runs exactly the enrichers that read it', () => {
    const set = realSet();
    const memo = set.memo();
    expect(set.apply(variant({}), eventRow(variant({})), memo)).toBeUndefined();

    // A new page: page runs; ua and fingerprint do not read the URL.
    const nextPage = 'https://shop.example.com/cart';
    const row = eventRow(variant({ pageUrl: nextPage }));
    expect(set.apply(variant({ pageUrl: nextPage }), row, memo)).toBeUndefined();
    expect(row).toMatchObject({ page_path: '/cart', ua_browser: 'Chrome', utm_source: '' });
    expect(set.stats().runs).toEqual({ ua: 1, page: 2, fingerprint: 1 });

    // A new user agent: ua and fingerprint (ip + ua) run; page does not.
    const phone = eventRow(variant({ pageUrl: nextPage, userAgent: OTHER_UA }));
    expect(set.apply(variant({ pageUrl: nextPage, userAgent: OTHER_UA }), phone, memo)).toBeUndefined();
    expect(phone).toMatchObject({ ua_browser: 'Mobile Safari', ua_os: 'iOS', page_path: '/cart', fpid: fingerprint(IP, OTHER_UA) });
    expect(set.stats().runs).toEqual({ ua: 2, page: 2, fingerprint: 2 });
  });

  it('each session has its own memo, and an event without one runs everything', () => {
    const set = realSet();
    const alice = set.memo();
    const bob = set.memo();
    expect(set.apply(variant({}), eventRow(variant({})), alice)).toBeUndefined();
    expect(set.apply(variant({ userAgent: OTHER_UA }), eventRow(variant({ userAgent: OTHER_UA })), bob)).toBeUndefined();
    // Alice's next event matches her memo, not Bob's.
    const row = eventRow(variant({}));
    expect(set.apply(variant({}), row, alice)).toBeUndefined();
    expect(row.ua_browser).toBe('Chrome');
    expect(set.apply(variant({}), eventRow(variant({})))).toBeUndefined();
    expect(set.stats().runs).toEqual({ ua: 3, page: 3, fingerprint: 3 });
    expect(set.stats().reused).toEqual({ ua: 1, page: 1, fingerprint: 1 });
  });

  it('an enricher not declared pure runs on every event, memo or not', () => {
    let calls = 0;
    const counter = local('cnt', () => ({ cnt_a: ++calls }));
    const set = realSet({ enricher: counter, keys: ['in.**'] });
    const memo = set.memo();
    for (let i = 1; i <= 3; i++) {
      const row = eventRow(variant({}));
      expect(set.apply(variant({}), row, memo)).toBeUndefined();
      expect(row.cnt_a).toBe(i);
    }
    expect(set.stats().runs.cnt).toBe(3);
    expect(set.stats().reused.cnt).toBe(0);
  });

  it('a reused patch writes its declared columns again and drops its stray without counting it twice', () => {
    const leaky = { ...local('leak', () => ({ leak_a: 'kept', page_host: 'hijacked.example' })), pure: true };
    const set = realSet({ enricher: leaky, keys: ['in.**'] });
    const memo = set.memo();
    const rows = [eventRow(variant({})), eventRow(variant({}))];
    for (const row of rows) expect(set.apply(variant({}), row, memo)).toBeUndefined();
    for (const row of rows) {
      expect(row.leak_a).toBe('kept');
      expect(row.page_host).toBe('shop.example.com');
    }
    expect(set.stats().reused.leak).toBe(1);
    // Counted when the enricher ran and returned it, not again when the memo served it.
    expect(set.stats().stray.leak).toBe(1);
  });

  it('a set with no pure enricher has no memo to give', () => {
    expect(createEnricherSet([{ enricher: local('x', () => ({})), keys: ['in.**'] }]).memo()).toBeUndefined();
  });
});

describe('enricher runtime - async enrichers', () => {
  it('a slow async enricher is cut off at its timeout; the event keeps the other columns', async () => {
    const slow = local('slow', () => new Promise<EnrichPatch>((resolve) => { setTimeout(() => resolve({ slow_a: 'late' }), 2_000).unref(); }), 50);
    const set = realSet({ enricher: slow, keys: ['in.**'] });
    const row = eventRow(envelope());
    const pending = set.apply(envelope(), row);
    expect(pending).toBeInstanceOf(Promise);
    // The local enrichers have written before the first await.
    expectRealColumns(row);
    const { ms } = await timed(() => pending);
    expect(ms).toBeLessThan(1_000);
    expect(ms).toBeGreaterThanOrEqual(45);
    expect(row).not.toHaveProperty('slow_a');
    expect(set.stats().timeouts).toEqual({ ua: 0, page: 0, fingerprint: 0, slow: 1 });
    expect(set.stats().failures.slow).toBe(0);
  });

  it('an async enricher that rejects is counted as a failure', async () => {
    const rejects = local('rej', () => Promise.reject(new Error('service down')), 500);
    const set = realSet({ enricher: rejects, keys: ['in.**'] });
    const row = eventRow(envelope());
    await set.apply(envelope(), row);
    expectRealColumns(row);
    expect(set.stats().failures.rej).toBe(1);
    expect(set.stats().timeouts.rej).toBe(0);
  });
});

describe('enricher runtime - remote enricher over HTTP', () => {
  let service: Awaited<ReturnType<typeof startService>>;
  beforeAll(async () => { service = await startService(); });
  afterAll(async () => { await stopService(service.server); });

  const remote = (path: string, timeoutMs: number): Enricher => createRemoteEnricher({
    name: 'crm', url: `${service.url}${path}`, namespace: 'crm', columns: ['crm_segment', 'crm_score'],
    reads: ['uid', 'key', 'pageUrl'], timeoutMs,
  });

  it('sends exactly the declared fields and writes only the declared columns of the answer', async () => {
    const set = realSet({ enricher: remote('/ok', 2_000), keys: ['in.**'] });
    const e = envelope('in.gen.track.page', 'crm-user-1');
    const row = eventRow(e);
    await set.apply(e, row);
    const got = service.received.at(-1)!;
    expect(got.path).toBe('/ok');
    expect(got.contentType).toBe('application/json');
    expect(got.body).toEqual({ uid: 'crm-user-1', key: 'in.gen.track.page', pageUrl: PAGE_URL });
    expect(row).toMatchObject({ crm_segment: 'gold', crm_score: 7 });
    expect(row).not.toHaveProperty('crm_secret');
    // page_host is the page enricher's, not the service's.
    expectRealColumns(row);
    const stats = set.stats();
    expect(stats.failures.crm).toBe(0);
    expect(stats.timeouts.crm).toBe(0);
  });

  it('a 500 answer is counted as a failure and writes nothing', async () => {
    const set = realSet({ enricher: remote('/fail', 2_000), keys: ['in.**'] });
    const row = eventRow(envelope());
    await set.apply(envelope(), row);
    expect(row).not.toHaveProperty('crm_segment');
    expectRealColumns(row);
    expect(set.stats().failures.crm).toBe(1);
    expect(set.stats().timeouts.crm).toBe(0);
  });

  it('a service that never answers is counted as a timeout, and apply resolves near the timeout', async () => {
    const set = realSet({ enricher: remote('/hang', 100), keys: ['in.**'] });
    const row = eventRow(envelope());
    const hangingBefore = service.hanging;
    const { ms } = await timed(() => set.apply(envelope(), row));
    expect(service.hanging).toBe(hangingBefore + 1);
    expect(ms).toBeGreaterThanOrEqual(95);
    expect(ms).toBeLessThan(1_000);
    expect(row).not.toHaveProperty('crm_segment');
    expectRealColumns(row);
    expect(set.stats().timeouts.crm).toBe(1);
    expect(set.stats().failures.crm).toBe(0);
  });
});

describe('enricher runtime - through the engine', () => {
  let service: Awaited<ReturnType<typeof startService>>;
  beforeAll(async () => { service = await startService(); });
  afterAll(async () => { await stopService(service.server); });

  async function startWithRemote(path: string): Promise<TestGateway> {
    return startGateway('uws', {
      storage: { flushMs: 100 },
      enrichers: [{
        type: 'remote', name: 'crm', keys: ['in.gen.**'], timeoutMs: 100,
        options: { url: `${service.url}${path}`, namespace: 'crm', columns: ['utm_content'], reads: ['uid'] },
      }],
    });
  }

  async function storedRow(gw: TestGateway, id: string): Promise<Record<string, unknown>> {
    const store: ClickHouseStore = await gw.storage.store.get();
    return waitFor(`event ${id} stored`, async () => {
      const rows = await store.query<Record<string, unknown>>(
        `SELECT uid, utm_content, utm_source FROM \`${store.database}\`.events FINAL WHERE toString(event_id) = '${id}'`,
      );
      return rows[0];
    });
  }

  it('a user\'s repeated events reuse the session memo: counted in /metrics, and every stored row has its columns', async () => {
    const gw = await startGateway('uws', { storage: { flushMs: 100 } });
    try {
      const headers = { 'user-agent': CHROME_UA };
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${gw.url}/track/scroll?uid=memo-user&depth=${i}`, { headers });
        expect(res.status).toBe(200);
        ids.push(((await res.json()) as { id: string }).id);
      }
      const text = await (await fetch(`${gw.url}/metrics`)).text();
      expect(text).toContain('flowstat_enricher_runs_total{enricher="ua"} 1');
      expect(text).toContain('flowstat_enricher_reused_total{enricher="ua"} 2');
      const store: ClickHouseStore = await gw.storage.store.get();
      const rows = await waitFor('three events stored', async () => {
        const got = await store.query<Record<string, unknown>>(
          `SELECT ua_browser, ua_os, fpid FROM \`${store.database}\`.events FINAL WHERE uid = 'memo-user' AND channel = 'gen'`,
        );
        return got.length === 3 ? got : undefined;
      });
      expect(rows).toEqual(ids.map(() => ({ ua_browser: 'Chrome', ua_os: 'Windows', fpid: expect.stringMatching(/^[0-9a-f]{16}$/) })));
    } finally {
      await gw.stop('test over');
    }
  });

  it('a remote enricher\'s column is stored with the event', async () => {
    const gw = await startWithRemote('/vip');
    try {
      const res = await fetch(`${gw.url}/track/page?uid=alice-7`);
      expect(res.status).toBe(200);
      const { id } = await res.json() as { id: string };
      expect(service.received.at(-1)).toMatchObject({ path: '/vip', body: { uid: 'alice-7' } });
      expect(await storedRow(gw, id)).toEqual({ uid: 'alice-7', utm_content: 'vip-alice-7', utm_source: '' });
    } finally {
      await gw.stop('test over');
    }
  });

  it('a remote enricher that never answers delays the reply by its timeout only; the event is stored without its column', async () => {
    const gw = await startWithRemote('/hang');
    try {
      const hangingBefore = service.hanging;
      const { value: res, ms } = await timed(() => fetch(`${gw.url}/track/page?uid=bob-8`));
      expect(res.status).toBe(200);
      const { id } = await res.json() as { id: string };
      expect(service.hanging).toBe(hangingBefore + 1);
      expect(ms).toBeGreaterThanOrEqual(95);
      expect(ms).toBeLessThan(2_000);
      expect(await storedRow(gw, id)).toEqual({ uid: 'bob-8', utm_content: '', utm_source: '' });
    } finally {
      await gw.stop('test over');
    }
  });
});
