import { createRequire } from 'node:module';
import type * as UwsTypes from 'uWebSockets.js';

/**
 * The ceiling for the gateway benchmark: a bare uWebSockets.js app that
 * counts WebSocket messages and answers each with one small constant reply
 * (so the load generator's closed loop runs exactly as against flowstat).
 * `node uws-counter.js json` also JSON-parses every text message, the least
 * any JSON gateway must do. Prints {"port":N} when listening and
 * {"messages":N} when it stops on SIGTERM.
 */

const mode = process.argv[2] === 'json' ? 'json' : 'count';
// The benchmark holds our stdin open; when it closes, the benchmark is gone.
process.stdin.once('close', () => process.exit(1)).resume();
const uws = createRequire(import.meta.url)('uWebSockets.js') as typeof UwsTypes;
// The size of a flowstat result minus the event id, so replies cost about the same to send.
const REPLY = '{"jsonrpc":"2.0","id":1,"result":{"key":"in.gen.track.page","uid":"u-00000-00000000"}}';

let messages = 0;
let parsedIds = 0;
const decoder = new TextDecoder();

const app = uws.App().ws('/*', {
  compression: uws.DISABLED,
  idleTimeout: 120,
  maxPayloadLength: 1024 * 1024,
  maxBackpressure: 64 * 1024 * 1024,
  message(ws, message, isBinary) {
    messages++;
    if (mode === 'json' && !isBinary) {
      const value = JSON.parse(decoder.decode(message)) as { id?: unknown };
      if (value.id !== undefined) parsedIds++;
    }
    ws.send(REPLY, false);
  },
});

app.listen('127.0.0.1', 0, (token) => {
  if (token === false) {
    process.stderr.write('uws-counter: could not listen\n');
    process.exit(1);
  }
  const port = uws.us_socket_local_port(token as unknown as UwsTypes.us_socket);
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  process.once('SIGTERM', () => {
    uws.us_listen_socket_close(token);
    process.stdout.write(`${JSON.stringify({ messages, parsedIds })}\n`, () => process.exit(0));
  });
});
