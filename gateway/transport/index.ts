/**
 * gateway/transport — the two server implementations behind one interface:
 * uWebSockets.js, and ws + node:http as the fallback when the native binary
 * does not load (or when config says `gateway.server: ws`).
 */
import type { Logger } from '../../engine/index.js';
import { createNodeTransport } from './node.js';
import { createUwsTransport, loadUws } from './uws.js';
import type { Transport, TransportOptions } from './types.js';

export * from './types.js';
export { formatIp, normalizeIp } from './ip.js';

export function createTransport<S>(choice: 'auto' | 'uws' | 'ws', options: TransportOptions<S>, logger: Logger): Transport {
  if (choice === 'ws') return createNodeTransport(options);
  let uws: ReturnType<typeof loadUws>;
  try {
    uws = loadUws();
  } catch (err) {
    if (choice === 'uws') throw new Error(`gateway.server is "uws" but uWebSockets.js does not load here: ${(err as Error).message}`, { cause: err });
    logger.warn({ err }, 'uWebSockets.js does not load on this platform; using the ws + node:http server');
    return createNodeTransport(options);
  }
  return createUwsTransport(options, uws);
}
