import { describe, expect, it } from 'vitest';
import { createFingerprintEnricher, fingerprint, fnv1a64 } from '../../actors/enrichers/fingerprint.js';
import type { Envelope } from '../../engine/index.js';

const UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51';

/** FNV-1a 64 the slow, obviously right way: BigInt over Buffer's UTF-8. */
function reference(bytes: Buffer): string {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h.toString(16).padStart(16, '0');
}

function envelope(ip: string, userAgent: string): Envelope {
  return {
    id: '00000000-0000-7000-8000-000000000000', projectId: 1, key: 'in.gen.track.page', channel: 'gen', service: 'track', name: 'page',
    uid: 'u1', userId: null, ts: 0, receivedAt: 0, ip, userAgent, pageUrl: '', pageReferrer: '', pageTitle: '', data: {}, idFromClient: false,
  };
}

describe('fingerprint enricher - hash', () => {
  it('matches the published FNV-1a 64 test vectors', () => {
    expect(fnv1a64('')).toBe('cbf29ce484222325');
    expect(fnv1a64('a')).toBe('af63dc4c8601ec8c');
    expect(fnv1a64('foobar')).toBe('85944171f73967e8');
  });

  it('hashes the UTF-8 bytes of ip, a 0x00 byte and the user agent, like a BigInt reference', () => {
    const samples: [string, string][] = [
      ['203.0.113.7', UA],
      ['2001:db8::1', 'curl/8.5.0'],
      ['198.51.100.1', 'Mozilla/5.0 (Linux; Android 14; Pixel 8) ÄÖÜ ☃ 😀 日本語'],
      ['10.0.0.1', 'lone \ud800 surrogate \udfff'],
      ['', 'only a user agent'],
      ['192.0.2.1', ''],
    ];
    for (const [ip, ua] of samples) {
      const bytes = Buffer.concat([Buffer.from(ip, 'utf8'), Buffer.from([0]), Buffer.from(ua, 'utf8')]);
      expect(fingerprint(ip, ua)).toBe(reference(bytes));
    }
  });

  it('gives a fixed value for a fixed ip and user agent, in every process', () => {
    expect(fingerprint('203.0.113.7', UA)).toBe('4592652ed3364909');
  });

  it('differs when either input differs, and the separator keeps the boundary', () => {
    const seen = new Set([
      fingerprint('203.0.113.7', UA),
      fingerprint('203.0.113.8', UA),
      fingerprint('203.0.113.7', `${UA} `),
      fingerprint('203.0.113.7', ''),
      fingerprint('', UA),
      fingerprint('a', 'b'),
      fingerprint('ab', ''),
      fingerprint('', 'ab'),
    ]);
    expect(seen.size).toBe(8);
  });

  it('is 16 lower-case hex digits, or empty when ip and user agent are both empty', () => {
    expect(fingerprint('203.0.113.7', UA)).toMatch(/^[0-9a-f]{16}$/);
    expect(fingerprint('', '')).toBe('');
  });
});

describe('fingerprint enricher - contract', () => {
  it('writes fpid in namespace fp from ip and userAgent, synchronously', () => {
    const e = createFingerprintEnricher({ name: 'fp1' });
    expect(e.name).toBe('fp1');
    expect(e.namespace).toBe('fp');
    expect(e.columns).toEqual(['fpid']);
    expect(e.reads).toEqual(['ip', 'userAgent']);
    expect(e.enrich(envelope('203.0.113.7', UA))).toEqual({ fpid: '4592652ed3364909' });
    expect(e.enrich(envelope('', ''))).toEqual({ fpid: '' });
  });

  it('defaults its name and rejects an empty one', () => {
    expect(createFingerprintEnricher({}).name).toBe('fingerprint');
    expect(() => createFingerprintEnricher({ name: '' })).toThrow(/^invalid configuration: fingerprint enricher: name/);
  });

  it('prints its speed (not asserted)', () => {
    const e = createFingerprintEnricher({});
    const envs = [envelope('203.0.113.7', UA), envelope('198.51.100.23', UA)];
    const n = 200_000;
    let sink = 0;
    for (let i = 0; i < 20_000; i++) sink += (e.enrich(envs[i & 1]!) as { fpid: string }).fpid.length;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) sink += (e.enrich(envs[i & 1]!) as { fpid: string }).fpid.length;
    const us = Number(process.hrtime.bigint() - t0) / n / 1000;
    console.log(`fingerprint enrich: ${us.toFixed(3)} µs per event (ip ${envs[0]!.ip.length} + ua ${UA.length} chars)`);
    expect(sink).toBeGreaterThan(0);
  });
});
