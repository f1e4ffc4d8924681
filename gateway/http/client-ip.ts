import { BlockList, isIP } from 'node:net';
import type { RequestHead } from '../transport/index.js';
import { normalizeIp } from '../transport/ip.js';

/**
 * Who the client is. The socket peer, unless the peer is a configured trusted
 * proxy: then X-Forwarded-For is walked from the right, skipping trusted
 * hops, and the first untrusted address is the client (X-Real-IP if there is
 * no X-Forwarded-For). Headers from anyone else are ignored — they are
 * trivially forged.
 */

export interface ClientInfo {
  readonly ip: string;
  /** The client reached us over https (directly or per a trusted proxy). */
  readonly https: boolean;
}

export function createClientIp(trustedProxies: readonly string[]): (head: RequestHead) => ClientInfo {
  const trusted = new BlockList();
  for (const entry of trustedProxies) {
    const [ip, bits] = entry.split('/') as [string, string | undefined];
    const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) trusted.addAddress(ip, family);
    else trusted.addSubnet(ip, Number(bits), family);
  }
  const isTrusted = (ip: string): boolean => {
    const family = isIP(ip);
    return family !== 0 && trusted.check(ip, family === 6 ? 'ipv6' : 'ipv4');
  };
  const none = trustedProxies.length === 0;
  const direct = (head: RequestHead): ClientInfo => ({ ip: head.peerIp, https: false });
  if (none) return direct;

  return (head) => {
    if (!isTrusted(head.peerIp)) return direct(head);
    const https = head.headers.forwardedProto.split(',')[0]?.trim().toLowerCase() === 'https';
    const xff = head.headers.forwardedFor;
    if (xff !== '') {
      const hops = xff.split(',');
      for (let i = hops.length - 1; i >= 0; i--) {
        const hop = hops[i]!.trim();
        if (isIP(hop) === 0) break; // garbage: stop believing the chain here
        // A dual-stack proxy writes ::ffff:a.b.c.d; report it as the socket peer would be.
        if (!isTrusted(hop)) return { ip: normalizeIp(hop), https };
      }
    }
    const real = head.headers.realIp.trim();
    if (real !== '' && isIP(real) !== 0) return { ip: normalizeIp(real), https };
    return { ip: head.peerIp, https };
  };
}
