import { mkdirSync } from 'node:fs';
import { createIngestBehavior } from '../actors/index.js';
import { createGateway, type Gateway } from '../gateway/index.js';
import { loadConfig, ConfigError, type Config } from './config/index.js';
import { createEngine, type Engine } from './engine.js';
import { createError } from './errors/index.js';
import type { IngestMessage } from './ingest/index.js';
import { createLogger, type Logger } from './logger/index.js';
import type { ActorBehavior } from './system/index.js';

/**
 * `flowstat start`: load and validate the config (refusing to start, before
 * any port opens, if it is wrong), build the engine and the gateway, listen,
 * and run the ordered shutdown on SIGTERM / SIGINT.
 */

export interface Running {
  readonly engine: Engine<IngestMessage>;
  readonly gateway: Gateway;
  readonly port: number;
  /** Runs the ordered shutdown; resolves true if every step succeeded. */
  stop(reason: string): Promise<boolean>;
}

export interface StartOptions {
  readonly logger?: Logger;
  /** The actor behaviour; tests inject slow or failing ones. Default: the session actor. */
  readonly behavior?: ActorBehavior<unknown, IngestMessage>;
}

export async function startEngine(config: Config, options: StartOptions = {}): Promise<Running> {
  const logger = options.logger ?? createLogger({ level: config.log.level });
  mkdirSync(config.dataDir, { recursive: true });
  const behavior = options.behavior ?? (createIngestBehavior() as ActorBehavior<unknown, IngestMessage>);
  const engine = createEngine<unknown, IngestMessage>({ config, logger, behavior });
  // An event the actor failed on still gets an answer; the letter itself is logged by the engine.
  engine.onDeadLetter((letter) => {
    letter.message.responder?.respond(letter.message.envelope, {
      kind: 'error',
      error: createError('FLOW_ERR_ACTOR_FAILED', { reason: letter.error.message.slice(0, 200) }, letter.error),
    });
  });
  const gateway = createGateway(engine);
  const port = await gateway.listen();
  engine.start();
  logger.info({ port, dataDir: config.dataDir, store: config.clickhouse.url === undefined ? 'embedded' : 'server' }, 'flowstat listening');
  return {
    engine,
    gateway,
    port,
    async stop(reason) {
      const result = await engine.shutdown.run(reason);
      return result.ok;
    },
  };
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
