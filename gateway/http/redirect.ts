/**
 * The redirect allowlist: exact hosts, or `*.example.com` for any subdomain
 * (not example.com itself). Only absolute http(s) URLs qualify; anything else
 * (javascript:, //evil.com, relative paths) is refused.
 *
 * The host is judged as a browser would parse the URL (WHATWG `URL`), so
 * `https://shop.example.com@evil.test` is judged by evil.test. On top of that
 * a target must be written plainly: no credentials, no backslashes, no
 * whitespace or control characters, at most MAX_REDIRECT_LENGTH characters.
 * Browsers and servers disagree about such targets (a backslash is a slash
 * to a browser, a tab is dropped), and no honest link needs them.
 */

/** Longer targets are refused: real landing pages fit, and the reply header stays small. */
export const MAX_REDIRECT_LENGTH = 2048;

export type RedirectVerdict = { ok: true; url: string } | { ok: false; host: string };

// eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
const UNPLAIN = /[\\\s\u0000-\u001f\u007f-\u009f]/;

export function createRedirectPolicy(hosts: readonly string[]): (location: string) => RedirectVerdict {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const h of hosts) {
    const host = h.toLowerCase();
    if (host.startsWith('*.')) suffixes.push(host.slice(1));
    else exact.add(host);
  }
  const clipped = (location: string): RedirectVerdict => ({ ok: false, host: location.slice(0, 80) });
  return (location) => {
    if (location.length > MAX_REDIRECT_LENGTH) return clipped(location);
    let url: URL;
    try {
      url = new URL(location);
    } catch {
      return clipped(location);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, host: url.protocol };
    const host = url.host.toLowerCase();
    const hostname = url.hostname.toLowerCase();
    if (!exact.has(host) && !exact.has(hostname) && !suffixes.some((s) => hostname.endsWith(s))) return { ok: false, host };
    // An allowed host written in a form browsers may read differently: named by the raw target, since its host is not the problem.
    if (url.username !== '' || url.password !== '' || UNPLAIN.test(location)) return clipped(location);
    return { ok: true, url: url.href };
  };
}
