import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../engine/config/index.js';
import { DEFAULT_REPLY, type ActorBehavior, type IngestMessage } from '../../engine/index.js';
import { startEngine } from '../../engine/main.js';
import { stopOnSigterm } from '../lib/engine-server.js';

/**
 * flowstat as the gateway benchmark runs it: the real engine and gateway
 * (`uws` or `ws` from argv), rate limit off (all load comes from 127.0.0.1),
 * room for every benchmark user — and no storage on the event path: the
 * session actor answers with the default reply at once, as it did before
 * sinks existed, so what is measured is decode + envelope + routing + reply.
 * (The store itself still starts, idle, with durability: memory.) Prints
 * {"port":N} when listening and {"stopped":ok} after the ordered shutdown on
 * SIGTERM.
 */

// The benchmark holds our stdin open; when it closes, the benchmark is gone.
process.stdin.once('close', () => process.exit(1)).resume();
const server = process.argv[2] === 'ws' ? 'ws' : 'uws';
const dataDir = mkdtempSync(join(tmpdir(), 'flowstat-bench-'));
const config = parseConfig({
  server: { host: '127.0.0.1', port: 0 },
  log: { level: 'warn' },
  dataDir,
  storage: { durability: 'memory' },
  gateway: { server, limits: { ratePerSecond: 0 } },
  actors: { maxLiveActors: 2_000_000 },
}, {});

const replyOnly: ActorBehavior<{ events: number }, IngestMessage> = {
  initial: () => ({ events: 0 }),
  receive(state, message) {
    message.responder?.respond(message.envelope, DEFAULT_REPLY);
    return { events: state.events + 1 };
  },
};

const running = await startEngine(config, { behavior: () => replyOnly as ActorBehavior<unknown, IngestMessage> });
process.stdout.write(`${JSON.stringify({ port: running.port, server: running.gateway.transport })}\n`);
stopOnSigterm(running, dataDir, 'flowstat bench server');
