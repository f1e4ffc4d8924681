import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A real local HTTP server standing in for a webhook's receiver. */

export interface ReceivedRequest {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

export interface WebhookReceiver {
  readonly url: string;
  readonly received: ReceivedRequest[];
  close(): Promise<void>;
}

/** Answers the n-th request with `statuses[n]` (200 after the list), after `delayMs`. */
export async function startWebhookReceiver(statuses: readonly number[] = [], delayMs = 0): Promise<WebhookReceiver> {
  const received: ReceivedRequest[] = [];
  let n = 0;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body });
      const status = statuses[n++] ?? 200;
      setTimeout(() => {
        res.writeHead(status, status === 429 ? { 'retry-after': '0' } : {});
        res.end(status === 200 ? 'ok' : 'nope');
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
