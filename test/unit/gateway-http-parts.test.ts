import { describe, expect, it } from 'vitest';
import { isFlowError, type ErrorCode } from '../../engine/index.js';
import { EVENT_FIELDS, keyOfPayload, lenientEvent, projectIdOf, strictEvent, type EventContext } from '../../gateway/events.js';
import { readCookie, uidCookie } from '../../gateway/http/cookies.js';
import { createCors } from '../../gateway/http/cors.js';
import { bodyObject, queryObject } from '../../gateway/http/payload.js';
import { createRedirectPolicy } from '../../gateway/http/redirect.js';
import { formatIp, normalizeIp } from '../../gateway/transport/ip.js';

/** Runs `fn`, expects a FlowError with `code`, and returns its message. */
function flowErrorOf(fn: () => unknown, code: ErrorCode): string {
  try {
    fn();
  } catch (err) {
    expect(isFlowError(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
    return (err as Error).message;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

describe('cookies', () => {
  const header = 'theme=dark; flowstat_uid=u-123; other_uid=nope; empty=; enc=a%20b%3Bc';

  it('cookies - reads the named cookie among several', () => {
    expect(readCookie(header, 'flowstat_uid')).toBe('u-123');
    expect(readCookie(header, 'theme')).toBe('dark');
    expect(readCookie(header, 'other_uid')).toBe('nope');
  });

  it('cookies - does not match a name that is only a suffix or prefix of another', () => {
    expect(readCookie('xflowstat_uid=evil; flowstat_uidx=evil', 'flowstat_uid')).toBeUndefined();
    expect(readCookie('other_uid=1', 'uid')).toBeUndefined();
  });

  it('cookies - tolerates spaces around names, values and separators', () => {
    expect(readCookie('  a=1 ;   flowstat_uid =  u-9  ;b=2', 'flowstat_uid')).toBe('u-9');
    expect(readCookie('a=1;flowstat_uid=u-10', 'flowstat_uid')).toBe('u-10');
  });

  it('cookies - decodes percent-encoded values and keeps malformed ones raw', () => {
    expect(readCookie(header, 'enc')).toBe('a b;c');
    expect(readCookie('uid=%E0%A4%A', 'uid')).toBe('%E0%A4%A');
  });

  it('cookies - the first of duplicate cookies wins, and "=" may appear in a value', () => {
    expect(readCookie('uid=first; uid=second', 'uid')).toBe('first');
    expect(readCookie('uid=a=b=c', 'uid')).toBe('a=b=c');
  });

  it('cookies - missing, empty header and valueless entries give undefined or empty', () => {
    expect(readCookie(header, 'flowstat')).toBeUndefined();
    expect(readCookie('', 'flowstat_uid')).toBeUndefined();
    expect(readCookie('flowstat_uid; theme=dark', 'flowstat_uid')).toBeUndefined();
    expect(readCookie(header, 'empty')).toBe('');
  });

  it('cookies - over https the uid cookie is SameSite=None; Secure', () => {
    const cookie = uidCookie('u-123', { name: 'flowstat_uid', maxAgeDays: 365 }, true);
    expect(cookie).toBe('flowstat_uid=u-123; Path=/; Max-Age=31536000; HttpOnly; SameSite=None; Secure');
  });

  it('cookies - over plain http the uid cookie falls back to SameSite=Lax without Secure', () => {
    const cookie = uidCookie('u-123', { name: 'flowstat_uid', maxAgeDays: 365 }, false);
    expect(cookie).toBe('flowstat_uid=u-123; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax');
    expect(cookie).not.toContain('Secure');
    expect(cookie).not.toContain('SameSite=None');
  });

  it('cookies - a configured domain is added; without one the cookie is host-only', () => {
    const withDomain = uidCookie('u', { name: 'uid', domain: '.example.com', maxAgeDays: 1 }, true);
    expect(withDomain.split('; ')).toContain('Domain=.example.com');
    expect(uidCookie('u', { name: 'uid', domain: undefined, maxAgeDays: 1 }, true)).not.toContain('Domain=');
  });

  it('cookies - Max-Age is the configured days in seconds', () => {
    expect(uidCookie('u', { name: 'uid', maxAgeDays: 1 }, false)).toContain('; Max-Age=86400;');
    expect(uidCookie('u', { name: 'uid', maxAgeDays: 30 }, false)).toContain('; Max-Age=2592000;');
  });

  it('cookies - the uid is encoded and reads back unchanged', () => {
    const uid = 'a b;c=d';
    const cookie = uidCookie(uid, { name: 'uid', maxAgeDays: 1 }, true);
    const pair = cookie.split('; ')[0]!;
    expect(pair).toBe('uid=a%20b%3Bc%3Dd');
    expect(readCookie(`x=1; ${pair}`, 'uid')).toBe(uid);
  });
});

describe('redirect policy', () => {
  const allowed = createRedirectPolicy(['shop.example.com', 'localhost:8443', '*.example.org']);

  it('redirect policy - an exact host is allowed with any path, query and port', () => {
    expect(allowed('https://shop.example.com/cart?x=1#top')).toEqual({ ok: true, url: 'https://shop.example.com/cart?x=1#top' });
    expect(allowed('http://shop.example.com')).toEqual({ ok: true, url: 'http://shop.example.com/' });
    expect(allowed('https://shop.example.com:9000/').ok).toBe(true);
  });

  it('redirect policy - a host:port entry allows that port only', () => {
    expect(allowed('https://localhost:8443/done')).toEqual({ ok: true, url: 'https://localhost:8443/done' });
    expect(allowed('https://localhost:9443/done')).toEqual({ ok: false, host: 'localhost:9443' });
    expect(allowed('https://localhost/done')).toEqual({ ok: false, host: 'localhost' });
  });

  it('redirect policy - other hosts are refused, naming the host', () => {
    expect(allowed('https://evil.test/x')).toEqual({ ok: false, host: 'evil.test' });
    expect(allowed('https://example.com/')).toEqual({ ok: false, host: 'example.com' });
    expect(allowed('https://shop.example.com.evil.test/')).toEqual({ ok: false, host: 'shop.example.com.evil.test' });
    expect(allowed('https://evilshop.example.com/').ok).toBe(false);
  });

  it('redirect policy - a wildcard matches subdomains at any depth, not the apex', () => {
    expect(allowed('https://www.example.org/').ok).toBe(true);
    expect(allowed('https://a.b.example.org:8080/x').ok).toBe(true);
    expect(allowed('https://example.org/')).toEqual({ ok: false, host: 'example.org' });
  });

  it('redirect policy - a wildcard does not match look-alike hosts', () => {
    expect(allowed('https://example.org.evil.test/').ok).toBe(false);
    expect(allowed('https://notexample.org/').ok).toBe(false);
    expect(allowed('https://www.example.org.evil.test/').ok).toBe(false);
  });

  it('redirect policy - userinfo and backslash tricks are judged by the real host', () => {
    expect(allowed('https://shop.example.com@evil.test/')).toEqual({ ok: false, host: 'evil.test' });
    expect(allowed('https://evil.test\\@shop.example.com/')).toEqual({ ok: false, host: 'evil.test' });
    expect(allowed('https://evil.test#@shop.example.com/')).toEqual({ ok: false, host: 'evil.test' });
  });

  it('redirect policy - non-http schemes are refused, naming the scheme', () => {
    expect(allowed('javascript:alert(document.cookie)//shop.example.com')).toEqual({ ok: false, host: 'javascript:' });
    expect(allowed('JavaScript:alert(1)')).toEqual({ ok: false, host: 'javascript:' });
    expect(allowed('data:text/html,<script>alert(1)</script>')).toEqual({ ok: false, host: 'data:' });
    expect(allowed('ftp://shop.example.com/file')).toEqual({ ok: false, host: 'ftp:' });
  });

  it('redirect policy - relative and protocol-relative locations are refused', () => {
    expect(allowed('/account')).toEqual({ ok: false, host: '/account' });
    expect(allowed('//evil.test/x')).toEqual({ ok: false, host: '//evil.test/x' });
    expect(allowed('//shop.example.com/x').ok).toBe(false);
    expect(allowed('shop.example.com/x').ok).toBe(false);
    expect(allowed('').ok).toBe(false);
  });

  it('redirect policy - a refused unparseable location is clipped to 80 characters', () => {
    const result = allowed(`/${'x'.repeat(500)}`);
    expect(result.ok).toBe(false);
    expect((result as { host: string }).host).toHaveLength(80);
  });

  it('redirect policy - hosts and schemes compare case-insensitively', () => {
    expect(allowed('HTTPS://SHOP.EXAMPLE.COM/Path')).toEqual({ ok: true, url: 'https://shop.example.com/Path' });
    expect(allowed('https://WWW.Example.ORG/').ok).toBe(true);
    const upperConfig = createRedirectPolicy(['Shop.Example.COM', '*.Example.NET']);
    expect(upperConfig('https://shop.example.com/').ok).toBe(true);
    expect(upperConfig('https://cdn.example.net/').ok).toBe(true);
  });

  it('redirect policy - an empty allowlist refuses everything', () => {
    expect(createRedirectPolicy([])('https://shop.example.com/')).toEqual({ ok: false, host: 'shop.example.com' });
  });
});

describe('cors', () => {
  const SHOP = 'https://shop.example.com';
  const closed = createCors({ origins: [SHOP, 'http://localhost:3000'], open: false });
  const open = createCors({ origins: [SHOP], open: true });

  it('cors - an allowlisted origin is echoed with credentials', () => {
    for (const cors of [closed, open]) {
      expect(cors.headers(SHOP)).toEqual([
        ['access-control-allow-origin', SHOP],
        ['access-control-allow-credentials', 'true'],
        ['vary', 'Origin'],
      ]);
    }
    expect(closed.headers('http://localhost:3000')).toContainEqual(['access-control-allow-origin', 'http://localhost:3000']);
  });

  it('cors - allowlist matching is case-insensitive', () => {
    expect(closed.headers('HTTPS://SHOP.EXAMPLE.COM')).toContainEqual(['access-control-allow-credentials', 'true']);
  });

  it('cors - open mode answers other origins with * and no credentials', () => {
    const h = open.headers('https://blog.other.test');
    expect(h).toEqual([['access-control-allow-origin', '*'], ['vary', 'Origin']]);
    expect(h!.map(([name]) => name)).not.toContain('access-control-allow-credentials');
  });

  it('cors - closed mode refuses origins not on the allowlist', () => {
    expect(closed.headers('https://blog.other.test')).toBeNull();
    expect(closed.headers('https://shop.example.com.evil.test')).toBeNull();
    expect(closed.headers('http://shop.example.com')).toBeNull();
    expect(closed.headers('null')).toBeNull();
  });

  it('cors - no Origin header means no CORS headers, in either mode', () => {
    expect(closed.headers('')).toEqual([]);
    expect(open.headers('')).toEqual([]);
  });

  it('cors - a preflight adds methods, allowed headers and max-age to the origin headers', () => {
    const h = closed.preflight(SHOP, 'Content-Type, X-Flow-Client');
    expect(h).toEqual([
      ['access-control-allow-origin', SHOP],
      ['access-control-allow-credentials', 'true'],
      ['vary', 'Origin'],
      ['access-control-allow-methods', 'GET, POST, OPTIONS'],
      ['access-control-allow-headers', 'content-type, x-flow-client'],
      ['access-control-max-age', '600'],
    ]);
  });

  it('cors - a preflight without requested headers allows content-type and authorization', () => {
    expect(open.preflight('https://any.test', '')).toContainEqual(['access-control-allow-headers', 'content-type, authorization']);
  });

  it('cors - requested header names are sanitized before being echoed', () => {
    const allowHeaders = (requested: string): string | undefined =>
      open.preflight(SHOP, requested)!.find(([name]) => name === 'access-control-allow-headers')?.[1];
    expect(allowHeaders('X-Ok,  bad header, evil\r\nSet-Cookie: x=1, x_under, ,authorization')).toBe('x-ok, authorization');
    expect(allowHeaders('<script>, a b')).toBe('content-type, authorization');
    expect(allowHeaders(`x-${'a'.repeat(62)}, x-${'a'.repeat(63)}`)).toBe(`x-${'a'.repeat(62)}`);
    const many = Array.from({ length: 30 }, (_, i) => `x-h${i}`).join(',');
    expect(allowHeaders(many)!.split(', ')).toHaveLength(20);
  });

  it('cors - a preflight from a refused origin is refused', () => {
    expect(closed.preflight('https://blog.other.test', 'content-type')).toBeNull();
  });

  it('cors - WebSockets are allowed from allowlisted origins, any origin in open mode, and non-browsers', () => {
    expect(closed.allowsWebSocket(SHOP)).toBe(true);
    expect(closed.allowsWebSocket('HTTPS://Shop.Example.com')).toBe(true);
    expect(closed.allowsWebSocket('')).toBe(true);
    expect(closed.allowsWebSocket('https://blog.other.test')).toBe(false);
    expect(open.allowsWebSocket('https://blog.other.test')).toBe(true);
  });
});

describe('ip formatting', () => {
  const v6 = (...groups: number[]): Uint8Array => {
    const bytes = new Uint8Array(16);
    groups.forEach((g, i) => { bytes[i * 2] = g >> 8; bytes[i * 2 + 1] = g & 0xff; });
    return bytes;
  };

  it('ip formatting - 4-byte addresses are dotted decimal', () => {
    expect(formatIp(new Uint8Array([203, 0, 113, 7]))).toBe('203.0.113.7');
    expect(formatIp(new Uint8Array([0, 0, 0, 0]))).toBe('0.0.0.0');
    expect(formatIp(new Uint8Array([255, 255, 255, 255]))).toBe('255.255.255.255');
  });

  it('ip formatting - IPv4-mapped IPv6 addresses become IPv4', () => {
    expect(formatIp(v6(0, 0, 0, 0, 0, 0xffff, 0xcb00, 0x7107))).toBe('203.0.113.7');
    expect(formatIp(v6(0, 0, 0, 0, 0, 0xffff, 0x7f00, 0x0001))).toBe('127.0.0.1');
  });

  it('ip formatting - near-mapped addresses stay IPv6', () => {
    expect(formatIp(v6(0, 0, 0, 0, 1, 0xffff, 0xcb00, 0x7107))).toBe('::1:ffff:cb00:7107');
    expect(formatIp(v6(0, 0, 0, 0, 0, 0xfffe, 0xcb00, 0x7107))).toBe('::fffe:cb00:7107');
  });

  it('ip formatting - IPv6 per RFC 5952: lower case, no leading zeros, longest zero run compressed', () => {
    expect(formatIp(v6(0x2001, 0x0db8, 0, 0, 0, 0, 0, 1))).toBe('2001:db8::1');
    expect(formatIp(v6(0xfe80, 0, 0, 0, 0x0202, 0xb3ff, 0xfe1e, 0x8329))).toBe('fe80::202:b3ff:fe1e:8329');
    expect(formatIp(v6(0x2001, 0xdb8, 0xABCD, 0x0012, 1, 2, 3, 4))).toBe('2001:db8:abcd:12:1:2:3:4');
  });

  it('ip formatting - all zeros, loopback and runs at either end', () => {
    expect(formatIp(new Uint8Array(16))).toBe('::');
    expect(formatIp(v6(0, 0, 0, 0, 0, 0, 0, 1))).toBe('::1');
    expect(formatIp(v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0))).toBe('2001:db8::');
  });

  it('ip formatting - a single zero group is not compressed', () => {
    expect(formatIp(v6(0x2001, 0xdb8, 0, 1, 1, 1, 1, 1))).toBe('2001:db8:0:1:1:1:1:1');
  });

  it('ip formatting - the longest run wins, the first of equal runs wins', () => {
    expect(formatIp(v6(0x2001, 0, 0, 1, 0, 0, 0, 1))).toBe('2001:0:0:1::1');
    expect(formatIp(v6(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1))).toBe('2001:db8::1:0:0:1');
  });

  it('ip formatting - other lengths give an empty string', () => {
    expect(formatIp(new Uint8Array(0))).toBe('');
    expect(formatIp(new Uint8Array(6))).toBe('');
  });

  it('ip formatting - normalizeIp turns IPv4-mapped addresses into IPv4 and leaves others alone', () => {
    expect(normalizeIp('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(normalizeIp('203.0.113.7')).toBe('203.0.113.7');
    expect(normalizeIp('2001:db8::1')).toBe('2001:db8::1');
    expect(normalizeIp('::ffff:cb00:7107')).toBe('::ffff:cb00:7107');
    expect(normalizeIp(undefined)).toBe('');
  });
});

describe('payload', () => {
  const LIMIT = 64 * 1024;
  const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

  it('payload - queryObject decodes the query string, last duplicate winning', () => {
    expect(queryObject('')).toEqual({});
    expect(queryObject('service=track&name=page&url=https%3A%2F%2Fx.test%2F%3Fa%3D1&title=Hello+World')).toEqual({
      service: 'track', name: 'page', url: 'https://x.test/?a=1', title: 'Hello World',
    });
    expect(queryObject('a=1&a=2&flag')).toEqual({ a: '2', flag: '' });
  });

  it('payload - a JSON body becomes an object', () => {
    const body = { service: 'track', name: 'page', data: { n: 1, tags: ['a'] } };
    expect(bodyObject(json(body), 'application/json', LIMIT)).toEqual(body);
    expect(bodyObject(json(body), 'application/json; charset=utf-8', LIMIT)).toEqual(body);
  });

  it('payload - a form body is decoded like a query string', () => {
    const body = Buffer.from('service=track&name=click&label=Buy+now%21');
    expect(bodyObject(body, 'application/x-www-form-urlencoded', LIMIT)).toEqual({ service: 'track', name: 'click', label: 'Buy now!' });
    expect(bodyObject(body, 'application/x-www-form-urlencoded; charset=UTF-8', LIMIT)).toMatchObject({ name: 'click' });
  });

  it('payload - a text/plain body (navigator.sendBeacon) is read as JSON', () => {
    expect(bodyObject(json({ name: 'beacon' }), 'text/plain;charset=UTF-8', LIMIT)).toEqual({ name: 'beacon' });
    expect(bodyObject(json({ name: 'no-type' }), '', LIMIT)).toEqual({ name: 'no-type' });
  });

  it('payload - multi-byte UTF-8 survives', () => {
    expect(bodyObject(json({ title: 'Привет 👋' }), 'application/json', LIMIT)).toEqual({ title: 'Привет 👋' });
  });

  it('payload - no body or an empty body is an empty object', () => {
    expect(bodyObject(null, 'application/json', LIMIT)).toEqual({});
    expect(bodyObject(Buffer.alloc(0), 'application/json', LIMIT)).toEqual({});
  });

  it('payload - invalid UTF-8 is FLOW_ERR_PARSE', () => {
    const body = Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]); // {"a":"\xff\xfe"}
    expect(flowErrorOf(() => bodyObject(body, 'application/json', LIMIT), 'FLOW_ERR_PARSE')).toContain('not valid UTF-8');
    expect(flowErrorOf(() => bodyObject(Buffer.from([0x61, 0x3d, 0xc3]), 'application/x-www-form-urlencoded', LIMIT), 'FLOW_ERR_PARSE'))
      .toContain('UTF-8');
  });

  it('payload - malformed JSON is FLOW_ERR_PARSE', () => {
    expect(flowErrorOf(() => bodyObject(Buffer.from('{"a":'), 'application/json', LIMIT), 'FLOW_ERR_PARSE')).toContain('not JSON');
    flowErrorOf(() => bodyObject(Buffer.from('service=track'), 'text/plain', LIMIT), 'FLOW_ERR_PARSE');
  });

  it('payload - JSON that is not an object is FLOW_ERR_INVALID_REQUEST', () => {
    for (const text of ['[1,2]', '"text"', '42', 'null', 'true']) {
      const message = flowErrorOf(() => bodyObject(Buffer.from(text), 'application/json', LIMIT), 'FLOW_ERR_INVALID_REQUEST');
      expect(message).toContain('must be a JSON object');
    }
  });

  it('payload - a body past the limit is FLOW_ERR_PAYLOAD_TOO_LARGE with the size and limit', () => {
    const message = flowErrorOf(() => bodyObject({ tooLarge: 70_000 }, 'application/json', LIMIT), 'FLOW_ERR_PAYLOAD_TOO_LARGE');
    expect(message).toBe(`payload of 70000 bytes exceeds the limit of ${LIMIT} bytes`);
  });
});

describe('events', () => {
  const ctx: EventContext = {
    key: 'in.gen.track.page', projectId: 3, uid: 'uid-1', ip: '203.0.113.7', userAgent: 'Mozilla/5.0 test', receivedAt: 1_700_000_000_000,
  };

  it('events - a strict event maps page, user, data and context into the envelope', () => {
    const env = strictEvent({
      service: 'track', name: 'page', id: 'client-1', ts: 1_699_999_999_000,
      page: { url: 'https://shop.example.com/', ref: 'https://google.test/', title: 'Home' },
      user: { id: 'customer-7', traits: { plan: 'pro' } },
      data: { cart: 2 },
    }, ctx);
    expect(env).toMatchObject({
      key: 'in.gen.track.page', projectId: 3, uid: 'uid-1', ip: '203.0.113.7', userAgent: 'Mozilla/5.0 test',
      ts: 1_699_999_999_000, userId: 'customer-7',
      pageUrl: 'https://shop.example.com/', pageReferrer: 'https://google.test/', pageTitle: 'Home',
      data: { cart: 2 },
    });
  });

  it('events - a strict event takes ua from the payload over the connection user agent', () => {
    expect(strictEvent({ ua: 'server-sdk/1.0' }, ctx).userAgent).toBe('server-sdk/1.0');
    expect(strictEvent({}, ctx).userAgent).toBe('Mozilla/5.0 test');
  });

  it('events - a strict event rejects an unknown top-level field, naming it', () => {
    const message = flowErrorOf(() => strictEvent({ service: 'track', name: 'page', colour: 'red' }, ctx), 'FLOW_ERR_FIELD_INVALID');
    expect(message).toBe('invalid field "colour": unknown field');
    // The flat HTTP spellings are unknown here too.
    expect(flowErrorOf(() => strictEvent({ url: 'https://x.test/' }, ctx), 'FLOW_ERR_FIELD_INVALID')).toContain('"url"');
  });

  it('events - a strict event rejects unknown page and user fields, naming them with their parent', () => {
    expect(flowErrorOf(() => strictEvent({ page: { url: 'https://x.test/', path: '/' } }, ctx), 'FLOW_ERR_FIELD_INVALID'))
      .toBe('invalid field "page.path": unknown field');
    expect(flowErrorOf(() => strictEvent({ user: { id: 'u', email: 'a@b.test' } }, ctx), 'FLOW_ERR_FIELD_INVALID'))
      .toBe('invalid field "user.email": unknown field');
  });

  it('events - a strict event rejects page or user that is not an object', () => {
    expect(flowErrorOf(() => strictEvent({ page: 'https://x.test/' }, ctx), 'FLOW_ERR_FIELD_INVALID')).toBe('invalid field "page": must be an object');
    expect(flowErrorOf(() => strictEvent({ user: ['u'] }, ctx), 'FLOW_ERR_FIELD_INVALID')).toBe('invalid field "user": must be an object');
  });

  it('events - every documented field is accepted by the strict check', () => {
    expect([...EVENT_FIELDS].sort()).toEqual(['data', 'id', 'name', 'page', 'projectId', 'service', 'ts', 'ua', 'uid', 'user']);
    expect(() => strictEvent({ service: 'track', name: 'page', projectId: 3, uid: 'x', page: null, user: null, data: null }, ctx)).not.toThrow();
  });

  it('events - a lenient event puts unknown top-level fields into data', () => {
    const env = lenientEvent({ service: 'track', name: 'click', label: 'Buy', price: '9.99', page: { url: 'https://x.test/' } }, ctx);
    expect(env.data).toEqual({ label: 'Buy', price: '9.99' });
    expect(env.pageUrl).toBe('https://x.test/');
  });

  it('events - a lenient event merges data with the unknown fields, data winning on conflicts', () => {
    const env = lenientEvent({ label: 'from-query', extra: 1, data: { label: 'from-data', cart: 2 } }, ctx);
    expect(env.data).toEqual({ label: 'from-data', extra: 1, cart: 2 });
  });

  it('events - a lenient event with neither unknown fields nor data has empty data', () => {
    expect(lenientEvent({ service: 'track', name: 'page' }, ctx).data).toEqual({});
    expect(lenientEvent({ data: { a: 1 } }, ctx).data).toEqual({ a: 1 });
  });

  it('events - a lenient event maps flat url, ref, referrer, title and userId, not into data', () => {
    const env = lenientEvent({ url: 'https://x.test/p', ref: 'https://r.test/', title: 'P', userId: 'cust-1' }, ctx);
    expect(env).toMatchObject({ pageUrl: 'https://x.test/p', pageReferrer: 'https://r.test/', pageTitle: 'P', userId: 'cust-1' });
    expect(env.data).toEqual({});
    expect(lenientEvent({ referrer: 'https://r2.test/' }, ctx).pageReferrer).toBe('https://r2.test/');
  });

  it('events - nested page and user win over their flat spellings', () => {
    const env = lenientEvent({ url: 'flat', title: 'flat', userId: 'flat', page: { url: 'https://nested.test/', title: 'Nested' }, user: { id: 'nested' } }, ctx);
    expect(env).toMatchObject({ pageUrl: 'https://nested.test/', pageTitle: 'Nested', userId: 'nested' });
  });

  it('events - a lenient event still validates the envelope', () => {
    expect(flowErrorOf(() => lenientEvent({ data: 'text' }, ctx), 'FLOW_ERR_FIELD_INVALID')).toBe('invalid field "data": must be an object');
    expect(flowErrorOf(() => lenientEvent({ url: 42 }, ctx), 'FLOW_ERR_FIELD_INVALID')).toContain('"page.url"');
  });

  it('events - keyOfPayload requires service and name', () => {
    expect(flowErrorOf(() => keyOfPayload({ name: 'page' }, {}), 'FLOW_ERR_FIELD_INVALID')).toBe('invalid field "service": is required');
    expect(flowErrorOf(() => keyOfPayload({ service: 'track' }, {}), 'FLOW_ERR_FIELD_INVALID')).toBe('invalid field "name": is required');
  });

  it('events - keyOfPayload builds the generic key, lower-cased, with aliases applied', () => {
    expect(keyOfPayload({ service: 'track', name: 'page' }, {})).toBe('in.gen.track.page');
    expect(keyOfPayload({ service: 'Track', name: 'PageView' }, undefined)).toBe('in.gen.track.pageview');
    expect(keyOfPayload({ service: 't4k', name: 'page' }, { t4k: 'track' })).toBe('in.gen.track.page');
    expect(keyOfPayload({ service: 'T4K', name: 'page' }, { t4k: 'track' })).toBe('in.gen.track.page');
    // Aliases rename services only.
    expect(keyOfPayload({ service: 'track', name: 't4k' }, { t4k: 'track' })).toBe('in.gen.track.t4k');
  });

  it('events - keyOfPayload refuses bad segments', () => {
    flowErrorOf(() => keyOfPayload({ service: 'track', name: 'Bad Name' }, {}), 'FLOW_ERR_KEY_INVALID');
    flowErrorOf(() => keyOfPayload({ service: 7, name: 'page' }, {}), 'FLOW_ERR_KEY_INVALID');
  });

  it('events - projectIdOf reads numbers and numeric strings, else falls back', () => {
    expect(projectIdOf(undefined, 1)).toBe(1);
    expect(projectIdOf(null, 1)).toBe(1);
    expect(projectIdOf('', 1)).toBe(1);
    expect(projectIdOf('42', 1)).toBe(42);
    expect(projectIdOf(42, 1)).toBe(42);
    expect(projectIdOf('0', 1)).toBe(0);
  });

  it('events - projectIdOf passes non-numeric values through for the envelope to refuse', () => {
    for (const v of ['-1', '4.5', 'abc', '12345678901', ' 4']) expect(projectIdOf(v, 1)).toBe(v);
    expect(projectIdOf(true, 1)).toBe(true);
  });
});
