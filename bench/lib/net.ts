import { createServer } from 'node:net';

/** Small network helpers shared by benchmarks and tests. */

/** A TCP port free on 127.0.0.1 right now (the OS picks it; another process may take it before use). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}
