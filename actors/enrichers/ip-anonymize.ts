import { isIP } from 'node:net';

/**
 * IP anonymization before storage, and the IPv6 text helpers it needs
 * (shared with the geo enricher, which must look up the raw address first).
 *
 * - 'none': a valid address is stored as it came.
 * - 'zero': IPv4 keeps its /24 (1.2.3.4 → 1.2.3.0); IPv6 keeps its /48
 *   (2001:db8:1234:5678::1 → 2001:db8:1234::, RFC 5952 text); an
 *   IPv4-mapped IPv6 address (::ffff:1.2.3.4, ::ffff:102:304) is IPv4 and
 *   comes out dotted (1.2.3.0). /24 and /48 are what a network routes to a
 *   site, not to a host — the cut Universal Analytics' anonymizeIp made.
 * - 'drop': ''.
 *
 * In every mode an empty or malformed address gives '': whatever arrives
 * that is not an address is never stored raw. A zone id (fe80::1%eth0) is
 * accepted and never kept by 'zero'.
 */

export type IpAnonymization = 'none' | 'zero' | 'drop';

export const IP_ANONYMIZATION_MODES: readonly IpAnonymization[] = Object.freeze(['none', 'zero', 'drop'] as const);

export function anonymizeIp(ip: string, mode: IpAnonymization): string {
  if (mode === 'drop') return '';
  const family = isIP(ip);
  if (family === 0) return '';
  if (mode === 'none') return ip;
  if (family === 4) return zeroIpv4(ip);
  const groups = ipv6Groups(ip);
  if (isMappedIpv4(groups)) return zeroIpv4(mappedIpv4(groups));
  return formatIpv6Slash48(groups);
}

function zeroIpv4(ip: string): string {
  return `${ip.slice(0, ip.lastIndexOf('.'))}.0`;
}

/**
 * The eight 16-bit groups of an address `isIP` already accepted as IPv6
 * (so no validation here): `::` expanded, a trailing dotted quad folded
 * into the last two groups, a zone id ignored.
 */
export function ipv6Groups(ip: string): number[] {
  const zone = ip.indexOf('%');
  const text = zone < 0 ? ip : ip.slice(0, zone);
  const gap = text.indexOf('::');
  const head = gap < 0 ? splitGroups(text) : splitGroups(text.slice(0, gap));
  const tail = gap < 0 ? [] : splitGroups(text.slice(gap + 2));
  const zeros = 8 - head.length - tail.length;
  for (let i = 0; i < zeros; i++) head.push(0);
  for (const g of tail) head.push(g);
  return head;
}

function splitGroups(text: string): number[] {
  if (text === '') return [];
  const groups: number[] = [];
  for (const part of text.split(':')) {
    if (part.includes('.')) {
      const [a, b, c, d] = part.split('.').map(Number) as [number, number, number, number];
      groups.push((a << 8) | b, (c << 8) | d);
    } else {
      groups.push(parseInt(part, 16));
    }
  }
  return groups;
}

/** ::ffff:0:0/96 (RFC 4291 §2.5.5.2). */
export function isMappedIpv4(groups: readonly number[]): boolean {
  return groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff;
}

/** The dotted IPv4 inside an IPv4-mapped address's groups. */
export function mappedIpv4(groups: readonly number[]): string {
  const hi = groups[6]!;
  const lo = groups[7]!;
  return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
}

/**
 * RFC 5952 text of the /48 prefix with the rest zeroed: groups 3-7 are zero,
 * so the longest zero run always starts after the last non-zero group among
 * the first three (a lone zero before it is written, not compressed).
 */
function formatIpv6Slash48(groups: readonly number[]): string {
  let last = 2;
  while (last >= 0 && groups[last] === 0) last--;
  let out = '';
  for (let i = 0; i <= last; i++) out += (i === 0 ? '' : ':') + groups[i]!.toString(16);
  return `${out}::`;
}
