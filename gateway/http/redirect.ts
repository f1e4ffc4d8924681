/**
 * The redirect allowlist: exact hosts, or `*.example.com` for any subdomain
 * (not example.com itself). Only absolute http(s) URLs qualify; anything else
 * (javascript:, //evil.com, relative paths) is refused.
 */
export function createRedirectPolicy(hosts: readonly string[]): (location: string) => { ok: true; url: string } | { ok: false; host: string } {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const h of hosts) {
    const host = h.toLowerCase();
    if (host.startsWith('*.')) suffixes.push(host.slice(1));
    else exact.add(host);
  }
  return (location) => {
    let url: URL;
    try {
      url = new URL(location);
    } catch {
      return { ok: false, host: location.slice(0, 80) };
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, host: url.protocol };
    const host = url.host.toLowerCase();
    const hostname = url.hostname.toLowerCase();
    if (exact.has(host) || exact.has(hostname) || suffixes.some((s) => hostname.endsWith(s))) return { ok: true, url: url.href };
    return { ok: false, host };
  };
}
