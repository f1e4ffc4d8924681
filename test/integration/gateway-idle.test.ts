import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVERS, TestClient, startGateway, type TestGateway } from '../support/gateway.js';

/**
 * Idle WebSockets are closed; busy ones are not. 8 s is the shortest idle
 * timeout uWS accepts (it counts in 4 s steps), so these tests take real time.
 *
 * What the client sees when the idle timeout fires:
 * - uws: the socket is dropped without a close frame, so the client reports
 *   1006 (abnormal closure) with an empty reason.
 * - ws: the server sends a 1001 "idle timeout" close frame, then drops the
 *   socket if the peer does not answer it; the client reports 1001.
 */

const IDLE_TIMEOUT_SEC = 8;
/** The brief allows ~20 s from going silent to being closed. */
const CLOSE_DEADLINE_MS = 20_000;
const TEST_TIMEOUT_MS = 40_000;

const IDLE_CLOSE = {
  uws: { code: 1006, reason: '' },
  ws: { code: 1001, reason: 'idle timeout' },
} as const;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function rawSocket(client: TestClient): Socket {
  return (client.ws as unknown as { _socket: Socket })._socket;
}

describe.each(SERVERS)('gateway idle timeout (%s)', (server) => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway(server, { gateway: { limits: { idleTimeoutSec: IDLE_TIMEOUT_SEC } } });
  });
  afterAll(async () => { await gw.stop('test over'); });

  /** How many open connections the server holds for the user (what an admin push would reach). */
  const openFor = (uid: string): number => gw.gateway.push(1, uid, { probe: true });

  it('idle timeout - a client that stops answering pings is closed within the deadline', async () => {
    const uid = `sleeper-${server}`;
    const c = await TestClient.connect(`${gw.wsUrl}?projectId=1&uid=${uid}`);
    expect(await c.call({ jsonrpc: '2.0', method: 'ping', id: 1 })).toMatchObject({ id: 1, result: 'pong' });
    expect(openFor(uid)).toBe(1);

    // A paused socket reads nothing, so pings go unanswered (a dead peer, as far as the server can tell).
    const socket = rawSocket(c);
    socket.pause();
    const pausedAt = Date.now();
    let closedAfter = -1;
    while (Date.now() - pausedAt < CLOSE_DEADLINE_MS) {
      await sleep(250);
      if (openFor(uid) === 0) { closedAfter = Date.now() - pausedAt; break; }
    }
    expect(closedAfter, 'the server still holds the idle connection').toBeGreaterThan(0);
    // Closed by the idle timer, not at once: uWS's first 4 s step at the earliest.
    expect(closedAfter).toBeGreaterThanOrEqual((IDLE_TIMEOUT_SEC / 2) * 1000);

    // Let the client read what the server sent before it went away.
    socket.resume();
    expect(await c.closed).toEqual(IDLE_CLOSE[server]);
  }, TEST_TIMEOUT_MS);

  it('idle timeout - a client that keeps sending requests stays open', async () => {
    const uid = `chatty-${server}`;
    const c = await TestClient.connect(`${gw.wsUrl}?projectId=1&uid=${uid}`);
    let closed = false;
    void c.closed.then(() => { closed = true; });

    const started = Date.now();
    let id = 0;
    while (Date.now() - started < CLOSE_DEADLINE_MS) {
      id++;
      expect(await c.call({ jsonrpc: '2.0', method: 'ping', id })).toEqual({ jsonrpc: '2.0', id, result: 'pong' });
      await sleep(2_000);
    }
    // Several idle timeouts have passed in that time.
    expect(id).toBeGreaterThanOrEqual(Math.floor(CLOSE_DEADLINE_MS / 2_000) - 1);
    expect(closed).toBe(false);
    expect(openFor(uid)).toBe(1);
    // The push sent by openFor() arrives, then the connection still answers.
    expect(await c.next()).toEqual({ jsonrpc: '2.0', method: 'push', params: { probe: true } });
    expect(await c.call({ jsonrpc: '2.0', method: 'ping', id: id + 1 })).toEqual({ jsonrpc: '2.0', id: id + 1, result: 'pong' });
    c.close();
  }, TEST_TIMEOUT_MS);
});
