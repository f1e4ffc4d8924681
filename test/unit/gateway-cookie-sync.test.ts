import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../engine/index.js';
import { createRedirectPolicy, MAX_REDIRECT_LENGTH } from '../../gateway/http/redirect.js';

/** What start-up refuses in cookie-sync config, and the redirect policy's refusal of tricky spellings. */

function problemsOf(cookieSync: unknown): string[] {
  try {
    parseConfig({ gateway: { cookieSync } });
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

describe('cookie-sync config', () => {
  it('cookie-sync config - https templates with {uid} (and {back} with a publicUrl) are accepted', () => {
    const config = parseConfig({
      gateway: {
        cookieSync: {
          publicUrl: 'https://t.example.com',
          partners: {
            acme: { url: 'https://sync.acme.example/match?our_uid={uid}&back={back}' },
            'px_2': { url: 'https://px.other.example/u/{uid}/x.gif' },
          },
        },
      },
    });
    expect(Object.keys(config.gateway.cookieSync.partners)).toEqual(['acme', 'px_2']);
    expect(Object.isFrozen(config.gateway.cookieSync.partners)).toBe(true);
  });

  it('cookie-sync config - none configured is the default', () => {
    expect(parseConfig({}).gateway.cookieSync.partners).toEqual({});
  });

  it.each([
    ['plain http', 'http://sync.acme.example/m?u={uid}'],
    ['no {uid}', 'https://sync.acme.example/m?u=1'],
    ['an unknown placeholder', 'https://sync.acme.example/m?u={uid}&t={ts}'],
    ['{uid} in the host', 'https://{uid}.acme.example/m'],
    ['{uid} as the whole authority', 'https://{uid}/m'],
    ['{uid} in the userinfo', 'https://{uid}@sync.acme.example/m'],
    ['a javascript: URL', 'javascript:alert("{uid}")'],
    ['a relative URL', '/m?u={uid}'],
    ['not a URL', 'sync.acme.example/m?u={uid}'],
  ])('cookie-sync config - a template with %s is refused at start', (_what, url) => {
    const problems = problemsOf({ partners: { acme: { url } } });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('gateway.cookieSync.partners.acme.url');
  });

  it('cookie-sync config - {back} without a publicUrl is refused (the Host header is never trusted for it)', () => {
    const problems = problemsOf({ partners: { acme: { url: 'https://s.acme.example/?u={uid}&b={back}' } } });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('gateway.cookieSync.publicUrl');
  });

  it('cookie-sync config - bad partner names, publicUrls and unknown keys are refused', () => {
    expect(problemsOf({ partners: { 'Acme!': { url: 'https://s.acme.example/?u={uid}' } } })[0]).toContain('gateway.cookieSync.partners');
    expect(problemsOf({ publicUrl: 'https://t.example.com/?x=1', partners: {} })[0]).toContain('gateway.cookieSync.publicUrl');
    expect(problemsOf({ publicUrl: 'ftp://t.example.com', partners: {} })[0]).toContain('gateway.cookieSync.publicUrl');
    expect(problemsOf({ partners: { acme: { url: 'https://s.acme.example/?u={uid}', ttl: 3 } } })).toHaveLength(1);
  });
});

describe('redirect policy, plain spelling', () => {
  const allowed = createRedirectPolicy(['shop.example.com']);

  it('redirect policy - credentials on an allowed host are refused', () => {
    expect(allowed('https://user:pw@shop.example.com/').ok).toBe(false);
    expect(allowed('https://evil.example@shop.example.com/').ok).toBe(false);
  });

  it('redirect policy - backslashes are refused even where the host is allowed', () => {
    expect(allowed('https://shop.example.com\\@evil.example').ok).toBe(false);
    expect(allowed('https:\\\\shop.example.com/').ok).toBe(false);
    expect(allowed('https://shop.example.com/a\\b').ok).toBe(false);
  });

  it('redirect policy - whitespace and control characters, which parsers drop, are refused', () => {
    for (const bad of [' https://shop.example.com/', 'https://shop.example.com/\n', 'https://sho\tp.example.com/', 'https://shop.example.com/\u0000', 'https://shop.example.com/a b']) {
      expect(allowed(bad).ok, JSON.stringify(bad)).toBe(false);
    }
  });

  it('redirect policy - targets up to the length limit pass, longer ones are refused', () => {
    const base = 'https://shop.example.com/';
    expect(allowed(base + 'a'.repeat(MAX_REDIRECT_LENGTH - base.length)).ok).toBe(true);
    const long = allowed(base + 'a'.repeat(MAX_REDIRECT_LENGTH - base.length + 1));
    expect(long).toEqual({ ok: false, host: (base + 'a'.repeat(80)).slice(0, 80) });
  });
});
