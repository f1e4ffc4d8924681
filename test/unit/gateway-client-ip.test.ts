import { describe, expect, it } from 'vitest';
import { createClientIp } from '../../gateway/http/client-ip.js';
import { EMPTY_HEADERS, type RequestHead, type RequestHeaders } from '../../gateway/transport/types.js';

function head(peerIp: string, headers: Partial<RequestHeaders> = {}): RequestHead {
  return { method: 'GET', path: '/track/page', query: '', headers: { ...EMPTY_HEADERS, ...headers }, peerIp, receivedAt: 0 };
}

const CLIENT = '203.0.113.7';
const OTHER = '198.51.100.23';

describe('client ip - no trusted proxies', () => {
  const clientIp = createClientIp([]);

  it('client ip - the socket peer is the client', () => {
    expect(clientIp(head(CLIENT))).toEqual({ ip: CLIENT, https: false });
    expect(clientIp(head('2001:db8::42'))).toEqual({ ip: '2001:db8::42', https: false });
  });

  it('client ip - forwarding headers are ignored when nobody is trusted', () => {
    const info = clientIp(head('10.0.0.1', { forwardedFor: CLIENT, realIp: OTHER, forwardedProto: 'https' }));
    expect(info).toEqual({ ip: '10.0.0.1', https: false });
  });
});

describe('client ip - trusted proxies', () => {
  it('client ip - a single trusted IPv4 address is believed, its neighbour is not', () => {
    const clientIp = createClientIp(['10.0.0.1']);
    expect(clientIp(head('10.0.0.1', { forwardedFor: CLIENT })).ip).toBe(CLIENT);
    expect(clientIp(head('10.0.0.2', { forwardedFor: CLIENT })).ip).toBe('10.0.0.2');
  });

  it('client ip - an IPv4 CIDR covers its range and nothing outside it', () => {
    const clientIp = createClientIp(['192.168.4.0/22']);
    expect(clientIp(head('192.168.4.1', { forwardedFor: CLIENT })).ip).toBe(CLIENT);
    expect(clientIp(head('192.168.7.254', { forwardedFor: CLIENT })).ip).toBe(CLIENT);
    expect(clientIp(head('192.168.8.1', { forwardedFor: CLIENT })).ip).toBe('192.168.8.1');
    expect(clientIp(head('192.168.3.255', { forwardedFor: CLIENT })).ip).toBe('192.168.3.255');
  });

  it('client ip - a single trusted IPv6 address is believed in any spelling, its neighbour is not', () => {
    const clientIp = createClientIp(['fd00::1']);
    expect(clientIp(head('fd00::1', { forwardedFor: CLIENT })).ip).toBe(CLIENT);
    expect(clientIp(head('fd00:0:0:0:0:0:0:1', { forwardedFor: CLIENT })).ip).toBe(CLIENT);
    expect(clientIp(head('fd00::2', { forwardedFor: CLIENT })).ip).toBe('fd00::2');
  });

  it('client ip - an IPv6 CIDR covers its range and nothing outside it', () => {
    const clientIp = createClientIp(['2001:db8:aa00::/40']);
    expect(clientIp(head('2001:db8:aa00::1', { forwardedFor: '2001:db8:ffff::9' })).ip).toBe('2001:db8:ffff::9');
    expect(clientIp(head('2001:db8:aaff:ffff::1', { forwardedFor: CLIENT })).ip).toBe(CLIENT);
    expect(clientIp(head('2001:db8:ab00::1', { forwardedFor: CLIENT })).ip).toBe('2001:db8:ab00::1');
  });

  it('client ip - IPv4 and IPv6 entries can be mixed', () => {
    const clientIp = createClientIp(['10.0.0.0/8', '2001:db8::/32']);
    expect(clientIp(head('10.1.2.3', { forwardedFor: CLIENT })).ip).toBe(CLIENT);
    expect(clientIp(head('2001:db8::1', { forwardedFor: CLIENT })).ip).toBe(CLIENT);
    expect(clientIp(head('2001:db9::1', { forwardedFor: CLIENT })).ip).toBe('2001:db9::1');
  });
});

describe('client ip - X-Forwarded-For', () => {
  const clientIp = createClientIp(['10.0.0.0/8']);

  it('client ip - the chain is walked from the right, skipping trusted hops', () => {
    expect(clientIp(head('10.0.0.1', { forwardedFor: `${CLIENT}, 10.0.0.2` })).ip).toBe(CLIENT);
    expect(clientIp(head('10.0.0.1', { forwardedFor: `${CLIENT},10.9.9.9, 10.0.0.2` })).ip).toBe(CLIENT);
  });

  it('client ip - spoofed left-most entries are ignored when an untrusted hop is nearer', () => {
    // The client sent "X-Forwarded-For: 1.1.1.1, 10.0.0.99"; our proxy appended the real address.
    const info = clientIp(head('10.0.0.1', { forwardedFor: `1.1.1.1, 10.0.0.99, ${CLIENT}` }));
    expect(info.ip).toBe(CLIENT);
    // The nearest untrusted hop wins even when an earlier one is also untrusted.
    expect(clientIp(head('10.0.0.1', { forwardedFor: `${OTHER}, ${CLIENT}, 10.0.0.2` })).ip).toBe(CLIENT);
  });

  it('client ip - IPv6 hops are read like IPv4 ones', () => {
    expect(clientIp(head('10.0.0.1', { forwardedFor: '2001:db8::7, 10.0.0.2' })).ip).toBe('2001:db8::7');
  });

  it('client ip - garbage in the chain stops the walk instead of being reported as an address', () => {
    // Garbage before any untrusted hop: nothing in the chain is believable, the peer is reported.
    expect(clientIp(head('10.0.0.1', { forwardedFor: `${CLIENT}, not-an-ip, 10.0.0.2` })).ip).toBe('10.0.0.1');
    expect(clientIp(head('10.0.0.1', { forwardedFor: `${CLIENT}, ${CLIENT}:8080` })).ip).toBe('10.0.0.1');
    expect(clientIp(head('10.0.0.1', { forwardedFor: `${CLIENT}, ` })).ip).toBe('10.0.0.1');
    // Garbage further left than the first untrusted hop does not matter.
    expect(clientIp(head('10.0.0.1', { forwardedFor: `<script>, unknown, ${CLIENT}, 10.0.0.2` })).ip).toBe(CLIENT);
  });

  it('client ip - garbage in the chain falls back to a valid X-Real-IP', () => {
    const info = clientIp(head('10.0.0.1', { forwardedFor: 'garbage', realIp: OTHER }));
    expect(info.ip).toBe(OTHER);
  });
});

describe('client ip - X-Real-IP', () => {
  const clientIp = createClientIp(['10.0.0.0/8']);

  it('client ip - X-Real-IP is used when there is no X-Forwarded-For', () => {
    expect(clientIp(head('10.0.0.1', { realIp: ` ${CLIENT} ` })).ip).toBe(CLIENT);
    expect(clientIp(head('10.0.0.1', { realIp: '2001:db8::5' })).ip).toBe('2001:db8::5');
  });

  it('client ip - X-Forwarded-For wins over X-Real-IP', () => {
    expect(clientIp(head('10.0.0.1', { forwardedFor: CLIENT, realIp: OTHER })).ip).toBe(CLIENT);
  });

  it('client ip - an invalid X-Real-IP leaves the peer', () => {
    expect(clientIp(head('10.0.0.1', { realIp: 'localhost' })).ip).toBe('10.0.0.1');
    expect(clientIp(head('10.0.0.1', { realIp: '999.1.1.1' })).ip).toBe('10.0.0.1');
  });

  it('client ip - X-Real-IP from an untrusted peer is ignored', () => {
    expect(clientIp(head(OTHER, { realIp: CLIENT })).ip).toBe(OTHER);
  });

  it('client ip - a trusted peer with no forwarding headers is itself the client', () => {
    expect(clientIp(head('10.0.0.1'))).toEqual({ ip: '10.0.0.1', https: false });
  });
});

describe('client ip - X-Forwarded-Proto', () => {
  const clientIp = createClientIp(['10.0.0.0/8']);

  it('client ip - https is believed from a trusted peer, in any case, first hop only', () => {
    expect(clientIp(head('10.0.0.1', { forwardedFor: CLIENT, forwardedProto: 'https' })).https).toBe(true);
    expect(clientIp(head('10.0.0.1', { forwardedProto: 'HTTPS' })).https).toBe(true);
    expect(clientIp(head('10.0.0.1', { forwardedProto: 'https, http' })).https).toBe(true);
    expect(clientIp(head('10.0.0.1', { forwardedProto: 'http, https' })).https).toBe(false);
    expect(clientIp(head('10.0.0.1', { forwardedProto: 'http' })).https).toBe(false);
    expect(clientIp(head('10.0.0.1')).https).toBe(false);
  });

  it('client ip - https claimed by an untrusted peer is not believed', () => {
    expect(clientIp(head(CLIENT, { forwardedProto: 'https' }))).toEqual({ ip: CLIENT, https: false });
  });
});

describe('client ip - IPv4-mapped IPv6', () => {
  it('client ip - a mapped peer address matches an IPv4 trusted range', () => {
    const clientIp = createClientIp(['10.0.0.0/8']);
    expect(clientIp(head('::ffff:10.0.0.1', { forwardedFor: CLIENT })).ip).toBe(CLIENT);
    expect(clientIp(head('::ffff:10.0.0.1', { forwardedFor: CLIENT, forwardedProto: 'https' })).https).toBe(true);
  });

  it('client ip - a mapped peer address outside the trusted range is not believed', () => {
    const clientIp = createClientIp(['10.0.0.0/8']);
    const info = clientIp(head('::ffff:192.0.2.1', { forwardedFor: CLIENT, forwardedProto: 'https' }));
    expect(info.https).toBe(false);
    expect(info.ip).not.toBe(CLIENT);
  });

  it('client ip - a mapped hop in X-Forwarded-For is skipped when trusted', () => {
    const clientIp = createClientIp(['10.0.0.0/8']);
    expect(clientIp(head('10.0.0.1', { forwardedFor: `${CLIENT}, ::ffff:10.0.0.3` })).ip).toBe(CLIENT);
  });

  it('client ip - a mapped client address is reported as IPv4, as a direct connection is', () => {
    // A dual-stack proxy (e.g. one written on node:net) writes ::ffff:a.b.c.d; the
    // same client must not get a second identity (rate-limit bucket, stored ip).
    const clientIp = createClientIp(['10.0.0.0/8']);
    expect(clientIp(head('10.0.0.1', { forwardedFor: `::ffff:${CLIENT}` })).ip).toBe(CLIENT);
    expect(clientIp(head('10.0.0.1', { realIp: `::ffff:${CLIENT}` })).ip).toBe(CLIENT);
  });
});
