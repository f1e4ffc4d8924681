import { createServer, type Server, type ServerResponse } from 'node:http';
import { mkdirSync } from 'node:fs';
import { once } from 'node:events';
import { loadConfig, ConfigError, type Config } from './config/index.js';
import { createEngine, type Engine } from './engine.js';
import { createLogger } from './logger/index.js';
import type { ActorBehavior } from './system/index.js';

/**
 * `flowstat start`: load and validate the config (refusing to start, before
 * any port opens, if it is wrong), build the engine, listen, and run the
 * ordered shutdown on SIGTERM / SIGINT.
 */

export interface Running {
  readonly engine: Engine<unknown>;
  readonly port: number;
  stop(reason: string): Promise<boolean>;
}

/**
 * Until the session actor lands (issue #6) the engine runs a behaviour that
 * only counts each user's events, so the actor system, passivation and the
 * shutdown order are live in the running process.
 */
const countingBehavior: ActorBehavior<number, unknown> = {
  initial: () => 0,
  receive: (count) => count + 1,
};

export async function startEngine(config: Config): Promise<Running> {
  const logger = createLogger({ level: config.log.level });
  mkdirSync(config.dataDir, { recursive: true });
  const engine = createEngine<number, unknown>({ config, logger, behavior: countingBehavior });
  let ready = false;

  // Health endpoints until the gateway (issue #3) takes over this port.
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return reply(res, 200, { status: 'ok' });
    if (path === '/readyz') return reply(res, ready ? 200 : 503, { ready });
    return reply(res, 404, { error: { code: 'FLOW_ERR_NOT_FOUND', message: `no route for ${req.method ?? 'GET'} ${path}` } });
  });
  server.keepAliveTimeout = 5_000;
  engine.shutdown.on('stop-accepting', 'http listener', async () => {
    ready = false;
    const closed = once(server, 'close');
    server.close();
    server.closeIdleConnections();
    await closed;
  });

  server.listen(config.server.port, config.server.host);
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.server.port;
  engine.start();
  ready = true;
  logger.info({ port, host: config.server.host, dataDir: config.dataDir, store: config.clickhouse.url === undefined ? 'embedded' : 'server' }, 'flowstat listening');

  return {
    engine: engine as Engine<unknown>,
    port,
    async stop(reason) {
      const result = await engine.shutdown.run(reason);
      return result.ok;
    },
  };
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Runs until a signal; resolves with the process exit code. */
export async function runFromEnvironment(): Promise<number> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`flowstat: refusing to start — ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const running = await startEngine(config);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  const ok = await running.stop(signal);
  return ok ? 0 : 1;
}
