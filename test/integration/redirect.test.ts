import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ClickHouseStore } from '../../sinks/index.js';
import { SERVERS, startGateway, uniqueDatabase, type TestGateway } from '../support/gateway.js';
import { serverStore, waitFor } from '../support/storage.js';

/**
 * GET /redir?to=… over real HTTP on both servers: a 302 only to allowlisted
 * hosts (Rockstat's redirect was open), recorded as in.gen.redir.click.
 */

const GOOD: readonly (readonly [string, string])[] = [
  ['https://shop.example.com/sale?x=1&y=%C3%A9', 'https://shop.example.com/sale?x=1&y=%C3%A9'],
  ['http://shop.example.com', 'http://shop.example.com/'],
  ['HTTPS://SHOP.EXAMPLE.COM/Cart', 'https://shop.example.com/Cart'],
  ['https://a.partner.example/landing#top', 'https://a.partner.example/landing#top'],
  ['https://x.y.partner.example:8443/', 'https://x.y.partner.example:8443/'],
];

const HOSTILE: readonly string[] = [
  'https://evil.example/',
  'https://shop.example.com.evil.example/',
  'https://evilshop.example.com/',
  'https://partner.example/',
  'https://partner.example.evil.example/',
  'javascript:alert(document.cookie)',
  'JavaScript:alert(1)//https://shop.example.com/',
  'data:text/html,<script>alert(1)</script>',
  'ftp://shop.example.com/',
  '/account',
  '//evil.example/',
  '//shop.example.com/',
  '/\\evil.example/',
  'shop.example.com/x',
  'https://shop.example.com@evil.example/',
  'https://shop.example.com:443@evil.example/',
  'https://user:pass@shop.example.com/',
  'https://evil.example\\@shop.example.com/',
  'https://shop.example.com\\@evil.example/',
  'https:\\\\evil.example/',
  'https://evil.example#@shop.example.com/',
  'https://evil.example?@shop.example.com/',
  'https://shop.example.com%2eevil.example/',
  ' https://shop.example.com/',
  'https://shop.example.com/\r\nset-cookie: x=1',
  `https://shop.example.com/${'a'.repeat(2100)}`,
  '',
];

describe.each(SERVERS)('redirect (%s)', (server) => {
  let gw: TestGateway;
  let store: ClickHouseStore;
  const database = uniqueDatabase('redir');

  beforeAll(async () => {
    gw = await startGateway(server, {
      clickhouse: { url: inject('clickhouseUrl'), database },
      storage: { flushMs: 50 },
      gateway: { redirectHosts: ['shop.example.com', '*.partner.example'] },
    });
    store = await serverStore(inject('clickhouseUrl'), database);
  });
  afterAll(async () => {
    await store?.close();
    await gw?.stop('test over');
  });

  it.each(GOOD)('redirect - %s → 302 %s', async (to, location) => {
    const res = await fetch(`${gw.url}/redir?to=${encodeURIComponent(to)}`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe(location);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('set-cookie')).toContain('flowstat_uid=');
  });

  it.each(HOSTILE.map((to) => [JSON.stringify(to).slice(0, 90), to]))('redirect - %s → 400 FLOW_ERR_REDIRECT_FORBIDDEN', async (_name, to) => {
    const res = await fetch(`${gw.url}/redir?to=${encodeURIComponent(to)}`, { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect((await res.json() as { error: { code: string } }).error.code).toBe('FLOW_ERR_REDIRECT_FORBIDDEN');
  });

  it('redirect - without a target it is refused too', async () => {
    const res = await fetch(`${gw.url}/redir`, { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect((await res.json() as { error: { code: string } }).error.code).toBe('FLOW_ERR_REDIRECT_FORBIDDEN');
  });

  it('redirect - a followed redirect is stored as in.gen.redir.click with its target; a refused one is not stored', async () => {
    const refused = await fetch(`${gw.url}/redir?uid=redir-user&to=${encodeURIComponent('https://evil.example/')}`, { redirect: 'manual' });
    expect(refused.status).toBe(400);
    const to = 'https://shop.example.com/spring?utm_source=mail';
    const res = await fetch(`${gw.url}/redir?uid=redir-user&to=${encodeURIComponent(to)}`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    // One user's events are stored in order: once the followed one is there, a refused one would be too.
    // (Derived in.sys.* events of the same user, such as a session start, are not what this is about.)
    const rows = await waitFor('the click event', async () => {
      const r = await store.query<{ key: string; props: unknown }>(`SELECT key, props FROM ${database}.events FINAL WHERE uid = 'redir-user' AND channel = 'gen'`);
      return r.length > 0 && r;
    });
    expect(rows).toHaveLength(1);
    expect(rows[0]!.key).toBe('in.gen.redir.click');
    // 18.16 keeps props as a JSON string, modern servers as a Map.
    const props = typeof rows[0]!.props === 'string' ? JSON.parse(rows[0]!.props) as Record<string, unknown> : rows[0]!.props;
    expect(props).toMatchObject({ to });
  });
});
