import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IngestMessage } from '../../engine/index.js';
import { PIXEL_GIF } from '../../gateway/index.js';
import { SERVERS, startGateway, type TestGateway } from '../support/gateway.js';
import { waitFor } from '../support/storage.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe.each(SERVERS)('gateway http (%s)', (server) => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway(server, {
      gateway: {
        pathAliases: { t4k: 'track' },
        redirectHosts: ['shop.example.com', '*.partner.example'],
        cors: { origins: ['https://shop.example.com'], open: true },
        cookie: { domain: '.example.com' },
        trustedProxies: ['10.0.0.0/8'],
        limits: { maxBodyBytes: 2048, maxDepth: 4 },
      },
    });
  });
  afterAll(async () => { await gw.stop('test over'); });

  it('GET /track/page answers {id, key, uid} and sets the uid cookie', async () => {
    const res = await fetch(`${gw.url}/track/page?foo=1`);
    expect(res.status).toBe(200);
    const body = await res.json() as { id: string; key: string; uid: string };
    expect(body.key).toBe('in.gen.track.page');
    expect(body.id).toMatch(UUID);
    expect(body.uid).toMatch(UUID);
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).toContain(`flowstat_uid=${body.uid}`);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('Max-Age=31536000');
    expect(cookie).toContain('Domain=.example.com');
  });

  it('reuses the uid from the cookie and refreshes its expiry', async () => {
    const res = await fetch(`${gw.url}/track/page`, { headers: { cookie: 'other=1; flowstat_uid=returning-user.42' } });
    const body = await res.json() as { uid: string };
    expect(body.uid).toBe('returning-user.42');
    expect(res.headers.get('set-cookie')).toContain('flowstat_uid=returning-user.42; Path=/; Max-Age=31536000');
  });

  it('an explicit uid in the query wins over the cookie', async () => {
    const res = await fetch(`${gw.url}/track/page?uid=explicit-1`, { headers: { cookie: 'flowstat_uid=cookie-uid' } });
    expect((await res.json() as { uid: string }).uid).toBe('explicit-1');
  });

  it('a malformed cookie uid is replaced by a fresh one, not rejected', async () => {
    const res = await fetch(`${gw.url}/track/page`, { headers: { cookie: 'flowstat_uid=<script>' } });
    expect(res.status).toBe(200);
    expect((await res.json() as { uid: string }).uid).toMatch(UUID);
  });

  it('never takes the cookie domain from the Host header', async () => {
    const res = await fetch(`${gw.url}/track/page`, { headers: { host: 'evil.test' } });
    expect(res.headers.get('set-cookie')).toContain('Domain=.example.com');
    expect(res.headers.get('set-cookie')).not.toContain('evil');
  });

  it('POST merges a JSON body with the query, the query winning', async () => {
    const res = await fetch(`${gw.url}/track/click.json?uid=from-query&id=client-id-1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ uid: 'from-body', data: { button: 'buy' } }),
    });
    expect(res.status).toBe(200);
    const body = await res.json() as { id: string; key: string; uid: string };
    expect(body).toMatchObject({ key: 'in.gen.track.click', uid: 'from-query' });
    // A client id is kept stable across retries.
    const again = await fetch(`${gw.url}/track/click.json?uid=from-query&id=client-id-1`, { method: 'POST', body: '{}' });
    expect((await again.json() as { id: string }).id).toBe(body.id);
  });

  it('POST accepts a form-urlencoded body', async () => {
    const res = await fetch(`${gw.url}/track/form`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'uid=form-user&title=Checkout',
    });
    expect(await res.json()).toMatchObject({ key: 'in.gen.track.form', uid: 'form-user' });
  });

  it('accepts sendBeacon text/plain JSON bodies', async () => {
    const res = await fetch(`${gw.url}/track/leave`, { method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8' }, body: '{"uid":"beacon-1"}' });
    expect(await res.json()).toMatchObject({ key: 'in.gen.track.leave', uid: 'beacon-1' });
  });

  it('maps path aliases and takes the project id from the path', async () => {
    const res = await fetch(`${gw.url}/t4k/page/12.json`);
    expect(res.status).toBe(200);
    expect((await res.json() as { key: string }).key).toBe('in.gen.track.page');
  });

  it('.gif answers a 1x1 GIF that is not cached', async () => {
    const res = await fetch(`${gw.url}/track/page.gif?url=https%3A%2F%2Fshop.example.com%2F`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/gif');
    expect(res.headers.get('cache-control')).toContain('no-store');
    expect(Buffer.from(await res.arrayBuffer())).toEqual(Buffer.from(PIXEL_GIF));
    expect(res.headers.get('set-cookie')).toContain('flowstat_uid=');
  });

  it('redirects only to allowlisted hosts', async () => {
    const ok = await fetch(`${gw.url}/redir?to=${encodeURIComponent('https://shop.example.com/sale?x=1')}`, { redirect: 'manual' });
    expect(ok.status).toBe(302);
    expect(ok.headers.get('location')).toBe('https://shop.example.com/sale?x=1');
    const sub = await fetch(`${gw.url}/redir?to=${encodeURIComponent('https://a.partner.example/')}`, { redirect: 'manual' });
    expect(sub.status).toBe(302);
    for (const bad of ['https://evil.test/', 'javascript:alert(1)', '//evil.test/', 'https://shop.example.com.evil.test/', 'https://partner.example/']) {
      const res = await fetch(`${gw.url}/redir?to=${encodeURIComponent(bad)}`, { redirect: 'manual' });
      expect(res.status, bad).toBe(400);
      expect((await res.json() as { error: { code: string } }).error.code).toBe('FLOW_ERR_REDIRECT_FORBIDDEN');
    }
  });

  it.each([
    ['/nope/x/y/z', 404, 'FLOW_ERR_NOT_FOUND'],
    ['/track/Pa%20ge', 400, 'FLOW_ERR_KEY_INVALID'],
    ['/track/page/abc', 400, 'FLOW_ERR_FIELD_INVALID'],
    ['/track/page?uid=' + 'x'.repeat(65), 400, 'FLOW_ERR_FIELD_INVALID'],
    ['/track/page?ts=yesterday', 400, 'FLOW_ERR_FIELD_INVALID'],
  ])('GET %s → %i %s', async (path, status, code) => {
    const res = await fetch(`${gw.url}${path}`);
    expect(res.status).toBe(status);
    const body = await res.json() as { error: { code: string; message: string } };
    expect(body.error.code).toBe(code);
    expect(body.error.message.length).toBeGreaterThan(5);
  });

  it('a bad field error names the field', async () => {
    const res = await fetch(`${gw.url}/track/page?ts=yesterday`);
    expect((await res.json() as { error: { message: string } }).error.message).toContain('"ts"');
  });

  it.each([
    ['malformed JSON', 400, 'FLOW_ERR_PARSE', '{"a":', 'application/json'],
    ['a JSON array', 400, 'FLOW_ERR_INVALID_REQUEST', '[1,2]', 'application/json'],
    ['too deep JSON', 400, 'FLOW_ERR_TOO_DEEP', '{"data":{"a":{"b":{"c":{"d":1}}}}}', 'application/json'],
    ['an oversized body', 413, 'FLOW_ERR_PAYLOAD_TOO_LARGE', JSON.stringify({ data: { x: 'y'.repeat(4096) } }), 'application/json'],
  ])('POST with %s → %i %s', async (_what, status, code, body, type) => {
    const res = await fetch(`${gw.url}/track/page`, { method: 'POST', headers: { 'content-type': type }, body });
    expect(res.status).toBe(status);
    expect((await res.json() as { error: { code: string } }).error.code).toBe(code);
  });

  it('POST with invalid UTF-8 → 400 FLOW_ERR_PARSE', async () => {
    const res = await fetch(`${gw.url}/track/page`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]) });
    expect(res.status).toBe(400);
    expect((await res.json() as { error: { code: string; message: string } }).error.message).toContain('UTF-8');
  });

  it('keeps serving after bad requests', async () => {
    const res = await fetch(`${gw.url}/track/page`);
    expect(res.status).toBe(200);
  });

  describe('cors', () => {
    it('echoes an allowlisted origin with credentials', async () => {
      const res = await fetch(`${gw.url}/track/page`, { headers: { origin: 'https://shop.example.com' } });
      expect(res.headers.get('access-control-allow-origin')).toBe('https://shop.example.com');
      expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    });

    it('answers other origins with * and no credentials in open mode', async () => {
      const res = await fetch(`${gw.url}/track/page`, { headers: { origin: 'https://random.test' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    });

    it('answers a preflight', async () => {
      const res = await fetch(`${gw.url}/track/page`, { method: 'OPTIONS', headers: { origin: 'https://shop.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'Content-Type' } });
      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-methods')).toContain('POST');
      expect(res.headers.get('access-control-allow-headers')).toBe('content-type');
      expect(res.headers.get('access-control-allow-origin')).toBe('https://shop.example.com');
    });
  });

  describe('client identity behind proxies', () => {
    it('ignores X-Forwarded-Proto from a peer that is not a trusted proxy', async () => {
      const res = await fetch(`${gw.url}/track/page`, { headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.9' } });
      const cookie = res.headers.get('set-cookie')!;
      expect(cookie).toContain('SameSite=Lax');
      expect(cookie).not.toContain('Secure');
    });
  });

  describe('health and metrics', () => {
    it('/healthz at once; /readyz 200 once the store answers, with each check in the body', async () => {
      expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
      // The store is probed every second from start (connect and migrate first): until it answers, /readyz is 503.
      const ready = await waitFor('/readyz 200', async () => {
        const res = await fetch(`${gw.url}/readyz`);
        const body = await res.json() as { ready: boolean; checks: Record<string, unknown> };
        expect(res.status).toBe(body.ready ? 200 : 503);
        return res.status === 200 ? body : false;
      });
      expect(ready).toMatchObject({ ready: true, checks: { gateway: true, store: { reachable: true } } });
    });

    it('/metrics counts received, accepted and rejected events in Prometheus text', async () => {
      await fetch(`${gw.url}/track/metric-check`);
      await fetch(`${gw.url}/track/page?ts=bad`);
      const text = await (await fetch(`${gw.url}/metrics`)).text();
      expect(text).toMatch(/flowstat_events_received_total\{channel="gen"\} \d+/);
      expect(text).toMatch(/flowstat_events_accepted_total\{channel="gen"\} \d+/);
      expect(text).toMatch(/flowstat_events_rejected_total\{reason="FLOW_ERR_FIELD_INVALID"\} \d+/);
      expect(text).toMatch(/flowstat_reply_latency_seconds_bucket/);
      expect(text).toMatch(/flowstat_websocket_connections 0/);
    });
  });
});

describe.each(SERVERS)('gateway http limits and policies (%s)', (server) => {
  it('refuses origins off the allowlist when open mode is off', async () => {
    const gw = await startGateway(server, { gateway: { cors: { origins: ['https://shop.example.com'], open: false } } });
    try {
      const res = await fetch(`${gw.url}/track/page`, { headers: { origin: 'https://evil.test' } });
      expect(res.status).toBe(403);
      expect((await res.json() as { error: { code: string } }).error.code).toBe('FLOW_ERR_ORIGIN_FORBIDDEN');
      const pre = await fetch(`${gw.url}/track/page`, { method: 'OPTIONS', headers: { origin: 'https://evil.test' } });
      expect(pre.status).toBe(403);
      const ok = await fetch(`${gw.url}/track/page`, { headers: { origin: 'https://shop.example.com' } });
      expect(ok.status).toBe(200);
    } finally {
      await gw.stop('test over');
    }
  });

  it('rate-limits per IP with 429 and Retry-After', async () => {
    const gw = await startGateway(server, { gateway: { limits: { ratePerSecond: 1, rateBurst: 5 } } });
    try {
      const statuses: number[] = [];
      let retryAfter: string | null = null;
      for (let i = 0; i < 8; i++) {
        const res = await fetch(`${gw.url}/track/page`);
        statuses.push(res.status);
        if (res.status === 429) retryAfter = res.headers.get('retry-after');
        await res.arrayBuffer();
      }
      expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
      expect(statuses.slice(5)).toEqual([429, 429, 429]);
      expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    } finally {
      await gw.stop('test over');
    }
  });

  it('believes X-Forwarded-For / -Proto only from a trusted proxy', async () => {
    const gw = await startGateway(server, { gateway: { trustedProxies: ['127.0.0.1'], limits: { ratePerSecond: 1, rateBurst: 1 } } });
    try {
      const res = await fetch(`${gw.url}/track/page`, { headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': '198.51.100.1' } });
      expect(res.headers.get('set-cookie')).toContain('SameSite=None; Secure');
      // Rate limits apply to the forwarded client, not to the proxy: a second client is not limited by the first.
      const other = await fetch(`${gw.url}/track/page`, { headers: { 'x-forwarded-for': '198.51.100.2' } });
      expect(other.status).toBe(200);
      const again = await fetch(`${gw.url}/track/page`, { headers: { 'x-forwarded-for': '198.51.100.1' } });
      expect(again.status).toBe(429);
    } finally {
      await gw.stop('test over');
    }
  });

  it('turns a full actor queue into 503 with Retry-After, and keeps serving other users', async () => {
    const gw = await startGateway(server, { actors: { mailboxCapacity: 2, receiveTimeoutMs: 0 }, shutdown: { timeoutMs: 300 } }, {
      behavior: () => ({
        initial: () => 0,
        receive: (n: unknown, msg: IngestMessage) => {
          if (msg.envelope.uid === 'stuck') return new Promise<number>(() => {});
          msg.responder?.respond(msg.envelope, { kind: 'json' });
          return (n as number) + 1;
        },
      }),
    });
    try {
      const pending = [0, 1, 2].map(() => fetch(`${gw.url}/track/page?uid=stuck`).catch(() => null));
      await new Promise((r) => setTimeout(r, 100));
      const res = await fetch(`${gw.url}/track/page?uid=stuck`);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect((await res.json() as { error: { code: string } }).error.code).toBe('FLOW_ERR_OVERLOADED');
      expect((await fetch(`${gw.url}/track/page?uid=free`)).status).toBe(200);
      void pending;
    } finally {
      await gw.stop('test over').catch(() => false);
    }
  });

  it('answers 500 FLOW_ERR_ACTOR_FAILED when the actor throws, and the next event works', async () => {
    const gw = await startGateway(server, {}, {
      behavior: () => ({
        initial: () => 0,
        receive: (n: unknown, msg: IngestMessage) => {
          if (msg.envelope.name === 'boom') throw new Error('handler broke');
          msg.responder?.respond(msg.envelope, { kind: 'json' });
          return n;
        },
      }),
    });
    try {
      const res = await fetch(`${gw.url}/track/boom?uid=u1`);
      expect(res.status).toBe(500);
      expect((await res.json() as { error: { code: string; message: string } }).error).toMatchObject({ code: 'FLOW_ERR_ACTOR_FAILED' });
      expect((await fetch(`${gw.url}/track/page?uid=u1`)).status).toBe(200);
    } finally {
      await gw.stop('test over');
    }
  });
});
