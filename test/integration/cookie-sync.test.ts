import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ClickHouseStore } from '../../sinks/index.js';
import { PIXEL_GIF } from '../../gateway/index.js';
import { SERVERS, startGateway, uniqueDatabase, type TestGateway } from '../support/gateway.js';
import { count, serverStore, waitFor } from '../support/storage.js';

/**
 * Cookie-sync over real HTTP on both servers, with the real storage: the
 * partner redirect, the way back, and the identities row in ClickHouse.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PUBLIC_URL = 'https://t.example.com';
const PARTNERS = {
  acme: { url: 'https://sync.acme.example/match?our_uid={uid}&back={back}' },
  plain: { url: 'https://px.other.example/c/{uid}.gif' },
};

interface IdentityRow { project_id: number; kind: string; uid: string; partner: string; external_id: string }

async function identities(store: ClickHouseStore, uid: string): Promise<IdentityRow[]> {
  const rows = await store.query<IdentityRow>(
    `SELECT project_id, kind, uid, partner, external_id FROM ${store.database}.identities FINAL WHERE uid = '${uid}' ORDER BY external_id`,
  );
  return rows.map((r) => ({ ...r, project_id: Number(r.project_id) }));
}

let clients = 0;
/**
 * Every request comes from its own client IP (the gateway trusts the test's
 * loopback as a proxy), so the small rate limit set for the rate-limit test
 * does not throttle the others.
 */
function get(gw: TestGateway, path: string, headers: Record<string, string> = {}): Promise<Response> {
  clients++;
  return fetch(`${gw.url}${path}`, {
    redirect: 'manual',
    headers: { 'x-forwarded-for': `10.${(clients >> 16) & 255}.${(clients >> 8) & 255}.${clients & 255}`, ...headers },
  });
}

async function errorCode(res: Response): Promise<string> {
  return (await res.json() as { error: { code: string } }).error.code;
}

describe.each(SERVERS)('cookie-sync (%s)', (server) => {
  let gw: TestGateway;
  let store: ClickHouseStore;
  const database = uniqueDatabase('sync');

  beforeAll(async () => {
    gw = await startGateway(server, {
      clickhouse: { url: inject('clickhouseUrl'), database },
      storage: { flushMs: 50 },
      gateway: {
        trustedProxies: ['127.0.0.1'],
        limits: { ratePerSecond: 1, rateBurst: 3 },
        cors: { origins: ['https://shop.example.com'], open: false },
        cookieSync: { publicUrl: `${PUBLIC_URL}/`, partners: PARTNERS },
      },
    });
    store = await serverStore(inject('clickhouseUrl'), database);
  });
  afterAll(async () => {
    await store?.close();
    await gw?.stop('test over');
  });

  it('cookie-sync - the round trip stores uid ↔ partner uid and answers a pixel', async () => {
    const cookie = 'flowstat_uid=sync-user.1';
    const res = await get(gw, '/sync/acme', { cookie });
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get('location')!);
    expect(location.origin + location.pathname).toBe('https://sync.acme.example/match');
    expect(location.searchParams.get('our_uid')).toBe('sync-user.1');
    const back = location.searchParams.get('back')!;
    expect(back).toBe(`${PUBLIC_URL}/sync/acme/back`);
    expect(res.headers.get('set-cookie')).toContain('flowstat_uid=sync-user.1;');
    expect(res.headers.get('cache-control')).toBe('no-store');

    // The partner sends the browser back to {back} with its own id.
    const pixel = await get(gw, `${back.slice(PUBLIC_URL.length)}?puid=ACME-42`, { cookie });
    expect(pixel.status).toBe(200);
    expect(pixel.headers.get('content-type')).toBe('image/gif');
    expect(Buffer.from(await pixel.arrayBuffer())).toEqual(Buffer.from(PIXEL_GIF));
    expect(pixel.headers.get('set-cookie')).toContain('flowstat_uid=sync-user.1;');

    const rows = await waitFor('the identities row', async () => {
      const r = await identities(store, 'sync-user.1');
      return r.length > 0 && r;
    });
    expect(rows).toEqual([{ project_id: 1, kind: 'partner', uid: 'sync-user.1', partner: 'acme', external_id: 'ACME-42' }]);
  });

  it('cookie-sync - a first-time visitor gets a new uid, sent to the partner and set as the cookie', async () => {
    const res = await get(gw, '/sync/acme');
    expect(res.status).toBe(302);
    const uid = new URL(res.headers.get('location')!).searchParams.get('our_uid')!;
    expect(uid).toMatch(UUID);
    expect(res.headers.get('set-cookie')).toContain(`flowstat_uid=${uid};`);
  });

  it('cookie-sync - an explicit uid wins over the cookie and is URL-encoded into the template', async () => {
    const res = await get(gw, '/sync/plain?uid=crm:77', { cookie: 'flowstat_uid=cookie-uid' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('https://px.other.example/c/crm%3A77.gif');
  });

  it('cookie-sync - the project named on the way out travels in the back URL and lands on the row', async () => {
    const viaPath = await get(gw, '/sync/acme/7?uid=proj-user');
    const back7 = new URL(viaPath.headers.get('location')!).searchParams.get('back');
    expect(back7).toBe(`${PUBLIC_URL}/sync/acme/back/7`);
    const viaQuery = await get(gw, '/sync/acme?uid=proj-user&projectId=3');
    expect(new URL(viaQuery.headers.get('location')!).searchParams.get('back')).toBe(`${PUBLIC_URL}/sync/acme/back/3`);

    expect((await get(gw, '/sync/acme/back/7?puid=P7&uid=proj-user')).status).toBe(200);
    expect((await get(gw, '/sync/acme/back?puid=P3&uid=proj-user&projectId=3')).status).toBe(200);
    const rows = await waitFor('both rows', async () => {
      const r = await identities(store, 'proj-user');
      return r.length === 2 && r;
    });
    expect(rows.map((r) => [r.project_id, r.external_id])).toEqual([[3, 'P3'], [7, 'P7']]);
  });

  it.each([
    ['/sync/nobody', 404, 'FLOW_ERR_PARTNER_UNKNOWN'],
    ['/sync/nobody/back?puid=x', 404, 'FLOW_ERR_PARTNER_UNKNOWN'],
    ['/sync/ACME', 404, 'FLOW_ERR_PARTNER_UNKNOWN'],
    ['/sync/acme/back/7/more?puid=x', 404, 'FLOW_ERR_NOT_FOUND'],
    ['/sync/acme/sideways', 404, 'FLOW_ERR_NOT_FOUND'],
    ['/sync/acme?uid=' + 'x'.repeat(65), 400, 'FLOW_ERR_FIELD_INVALID'],
    ['/sync/acme?projectId=seven', 400, 'FLOW_ERR_FIELD_INVALID'],
    ['/sync/acme/99999999999', 404, 'FLOW_ERR_NOT_FOUND'],
  ])('cookie-sync - GET %s → %i %s', async (path, status, code) => {
    const res = await get(gw, path);
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await errorCode(res)).toBe(code);
  });

  it('cookie-sync - a POST is no sync request', async () => {
    const res = await fetch(`${gw.url}/sync/acme`, { method: 'POST', body: '{}', headers: { 'x-forwarded-for': '10.200.0.1' } });
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe('FLOW_ERR_NOT_FOUND');
  });

  it.each([
    ['missing', ''],
    ['empty', '&puid='],
    ['129 characters', `&puid=${'p'.repeat(129)}`],
    ['a control character', `&puid=${encodeURIComponent('ab\u0001c')}`],
    ['a newline', `&puid=${encodeURIComponent('ab\nc')}`],
    ['DEL', `&puid=${encodeURIComponent('ab\u007fc')}`],
    ['a C1 control', `&puid=${encodeURIComponent('ab\u0085c')}`],
    ['a zero-width space', `&puid=${encodeURIComponent('ab\u200bc')}`],
    ['a right-to-left override', `&puid=${encodeURIComponent('ab\u202ec')}`],
    ['a line separator', `&puid=${encodeURIComponent('ab\u2028c')}`],
  ])('cookie-sync - a puid with %s is refused with 400 and not stored', async (_what, puid) => {
    const res = await get(gw, `/sync/acme/back?uid=bad-puid${puid}`);
    expect(res.status).toBe(400);
    const body = await res.json() as { error: { code: string; message: string } };
    expect(body.error.code).toBe('FLOW_ERR_FIELD_INVALID');
    expect(body.error.message).toContain('"puid"');
  });

  it('cookie-sync - refused puids left no row, the limits of a good one are kept', async () => {
    const longest = 'p'.repeat(128);
    const unicode = 'ユーザー 42';
    for (const puid of [longest, unicode]) {
      expect((await get(gw, `/sync/acme/back?uid=bad-puid&puid=${encodeURIComponent(puid)}`)).status).toBe(200);
    }
    // Rows of one user go out in order: once the good ones are stored, any refused one would be too.
    const rows = await waitFor('the good rows', async () => {
      const r = await identities(store, 'bad-puid');
      return r.length >= 2 && r;
    });
    expect(rows.map((r) => r.external_id).sort()).toEqual([longest, unicode].sort());
  });

  it('cookie-sync - replies carry CORS headers, and a forbidden origin is refused', async () => {
    const ok = await get(gw, '/sync/acme', { origin: 'https://shop.example.com' });
    expect(ok.status).toBe(302);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://shop.example.com');
    const pixel = await get(gw, '/sync/acme/back?puid=cors-1&uid=cors-user', { origin: 'https://shop.example.com' });
    expect(pixel.status).toBe(200);
    expect(pixel.headers.get('access-control-allow-credentials')).toBe('true');
    for (const path of ['/sync/acme', '/sync/acme/back?puid=cors-2&uid=cors-user']) {
      const res = await get(gw, path, { origin: 'https://evil.example' });
      expect(res.status, path).toBe(403);
      expect(await errorCode(res)).toBe('FLOW_ERR_ORIGIN_FORBIDDEN');
    }
  });

  it('cookie-sync - both routes are rate limited per client IP', async () => {
    for (const path of ['/sync/acme', '/sync/acme/back?puid=rl&uid=rate-user']) {
      const ip = path.includes('back') ? '10.250.0.2' : '10.250.0.1';
      const statuses: number[] = [];
      let last: Response | undefined;
      for (let i = 0; i < 4; i++) {
        last = await fetch(`${gw.url}${path}`, { redirect: 'manual', headers: { 'x-forwarded-for': ip } });
        statuses.push(last.status);
      }
      // A burst of 3 goes through; the 4th (well within the second) is refused.
      expect(statuses.slice(0, 3).every((s) => s !== 429), path).toBe(true);
      expect(statuses[3], path).toBe(429);
      expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await errorCode(last!)).toBe('FLOW_ERR_RATE_LIMITED');
    }
  });
});

describe.each(SERVERS)('cookie-sync durability (%s)', (server) => {
  it('cookie-sync - the pixel waits for the write-ahead log, not for ClickHouse; shutdown delivers the row', async () => {
    const database = uniqueDatabase('syncwal');
    // A long flush interval: the row stays in the log, not yet in ClickHouse, while the test looks.
    const gw = await startGateway(server, {
      clickhouse: { url: inject('clickhouseUrl'), database },
      storage: { durability: 'wal', flushMs: 600_000 },
      gateway: { cookieSync: { partners: { plain: PARTNERS.plain } } },
    });
    // Tables exist once the engine's store has connected and migrated.
    await gw.storage.store.get();
    const store = await serverStore(inject('clickhouseUrl'), database);
    try {
      const res = await fetch(`${gw.url}/sync/plain/back?puid=durable-puid-1&uid=wal-user`);
      expect(res.status).toBe(200);
      const walDir = join(gw.engine.config.dataDir, 'wal');
      const logged = readdirSync(walDir).some((f) => readFileSync(join(walDir, f)).includes('durable-puid-1'));
      expect(logged).toBe(true);
      expect(await count(store, `SELECT count() AS n FROM ${database}.identities`)).toBe(0);
      expect(await gw.stop('test over')).toBe(true);
      expect(await identities(store, 'wal-user')).toEqual([
        { project_id: 1, kind: 'partner', uid: 'wal-user', partner: 'plain', external_id: 'durable-puid-1' },
      ]);
    } finally {
      await store.close();
      await gw.stop('test cleanup');
    }
  });
});
