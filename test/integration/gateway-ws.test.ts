import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { SERVERS, TestClient, msgpack, startGateway, track, type TestGateway } from '../support/gateway.js';

const ADMIN = 'test-admin-token-0123456789';

interface RpcReply { jsonrpc: string; id: unknown; result?: Record<string, unknown> | string; error?: { code: number; message: string; data?: Record<string, unknown> } }

describe.each(SERVERS)('gateway websocket (%s)', (server) => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway(server, {
      adminToken: ADMIN,
      gateway: { limits: { maxFrameBytes: 4096, maxBatch: 20, maxDepth: 4, maxBadFrames: 5, maxBackpressureBytes: 256 * 1024 } },
    });
  });
  afterAll(async () => { await gw.stop('test over'); });

  it('track over JSON replies with the request id, key and connection uid', async () => {
    const c = await TestClient.connect(`${gw.wsUrl}?projectId=4&uid=ws-user-1`);
    const reply = await c.call(track(7, { page: { url: 'https://shop.example.com/', title: 'Home' }, data: { a: 1 } })) as RpcReply;
    expect(reply).toMatchObject({ jsonrpc: '2.0', id: 7, result: { key: 'in.gen.track.page', uid: 'ws-user-1' } });
    c.close();
  });

  it('track over msgpack binary frames replies in msgpack', async () => {
    const c = await TestClient.connect(`${gw.wsUrl}?uid=ws-user-2`);
    c.sendPack(track('abc', { name: 'click' }));
    expect(await c.next()).toMatchObject({ id: 'abc', result: { key: 'in.gen.track.click', uid: 'ws-user-2' } });
    c.close();
  });

  it('a uid in the event overrides the connection uid (server-side SDKs)', async () => {
    const c = await TestClient.connect(`${gw.wsUrl}?uid=server-conn`);
    const reply = await c.call(track(1, { uid: 'end-user-9' })) as RpcReply;
    expect((reply.result as Record<string, unknown>).uid).toBe('end-user-9');
    c.close();
  });

  it('batches get one array reply; notifications get none', async () => {
    const c = await TestClient.connect(`${gw.wsUrl}?uid=batcher`);
    c.sendJson([track(1), track(undefined), track(2, { name: 'scroll' }), { jsonrpc: '2.0', method: 'ping', id: 3 }]);
    const replies = await c.next() as RpcReply[];
    expect(replies.map((r) => r.id)).toEqual([1, 2, 3]);
    expect(replies[2]!.result).toBe('pong');
    c.sendJson([track(undefined), track(undefined)]);
    c.sendJson(track(99));
    expect(await c.next()).toMatchObject({ id: 99 });
    c.close();
  });

  it('identify and ping', async () => {
    const c = await TestClient.connect(`${gw.wsUrl}?uid=anon-5`);
    expect(await c.call({ jsonrpc: '2.0', method: 'identify', params: { userId: 'customer-5', traits: { plan: 'pro' } }, id: 1 })).toMatchObject({ result: { key: 'in.gen.user.identify', uid: 'anon-5' } });
    expect(await c.call({ jsonrpc: '2.0', method: 'identify', params: { traits: {} }, id: 2 })).toMatchObject({ error: { code: -32602 } });
    expect(await c.call({ jsonrpc: '2.0', method: 'ping', id: 3 })).toMatchObject({ result: 'pong' });
    c.close();
  });

  it('bad frames get JSON-RPC errors and the connection stays open', async () => {
    const c = await TestClient.connect(`${gw.wsUrl}?uid=clumsy`);
    c.ws.send('{"jsonrpc": "2.0", "method": ');
    expect(await c.next()).toMatchObject({ id: null, error: { code: -32700 } });
    expect(await c.call({ jsonrpc: '1.0', method: 'track', id: 1 })).toMatchObject({ id: 1, error: { code: -32600 } });
    expect(await c.call({ jsonrpc: '2.0', method: 'nope', id: 2 })).toMatchObject({ id: 2, error: { code: -32601 } });
    const badParam = await c.call(track(3, { colour: 'red' })) as RpcReply;
    expect(badParam.error).toMatchObject({ code: -32602, data: { code: 'FLOW_ERR_FIELD_INVALID' } });
    expect(badParam.error!.message).toContain('"colour"');
    expect(await c.call(track(4, { name: 'Bad Name' }))).toMatchObject({ id: 4, error: { code: -32602, data: { code: 'FLOW_ERR_KEY_INVALID' } } });
    // Still open and working:
    expect(await c.call(track(5))).toMatchObject({ id: 5, result: { key: 'in.gen.track.page' } });
    c.close();
  });

  it('too deep JSON and oversized frames are refused with an error, connection kept', async () => {
    const c = await TestClient.connect(`${gw.wsUrl}?uid=big-sender`);
    expect(await c.call(track(1, { data: { a: { b: { c: { d: 1 } } } } }))).toMatchObject({ id: 1, error: { code: -32600, data: { code: 'FLOW_ERR_TOO_DEEP' } } });
    c.sendJson(track(2, { data: { blob: 'x'.repeat(5000) } }));
    expect(await c.next()).toMatchObject({ error: { code: -32600, data: { code: 'FLOW_ERR_PAYLOAD_TOO_LARGE' } } });
    c.sendJson(Array.from({ length: 21 }, (_, i) => track(i)));
    expect(await c.next()).toMatchObject({ error: { data: { code: 'FLOW_ERR_BATCH_TOO_LARGE' } } });
    expect(await c.call(track(3))).toMatchObject({ id: 3, result: {} });
    c.close();
  });

  // uWS drops such connections without a close frame (the client sees 1006);
  // ws sends the close code the RFC names. Either way the frame is never buffered.
  const hardClose = server === 'uws' ? { tooBig: 1006, badUtf8: 1006 } : { tooBig: 1009, badUtf8: 1007 };

  it('a frame beyond the hard limit closes the connection', async () => {
    const c = await TestClient.connect(`${gw.wsUrl}?uid=huge-sender`);
    c.ws.send('x'.repeat(2 * 1024 * 1024));
    expect((await c.closed).code).toBe(hardClose.tooBig);
  });

  it('invalid UTF-8 in a text frame closes that connection and others are unaffected', async () => {
    const other = await TestClient.connect(`${gw.wsUrl}?uid=bystander`);
    const c = await TestClient.connect(`${gw.wsUrl}?uid=bad-utf8`);
    // ws refuses to send invalid UTF-8 as text itself: write a raw masked text frame.
    const payload = Buffer.from([0x7b, 0xff, 0xfe, 0x7d]);
    const mask = Buffer.from([1, 2, 3, 4]);
    const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
    (c.ws as unknown as { _socket: Socket })._socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
    expect((await c.closed).code).toBe(hardClose.badUtf8);
    expect(await other.call(track(1))).toMatchObject({ id: 1, result: {} });
    other.close();
  });

  it('sustained abuse closes the connection with 1008', async () => {
    const c = await TestClient.connect(`${gw.wsUrl}?uid=abuser`);
    for (let i = 0; i < 10; i++) c.ws.send('not json');
    expect((await c.closed).code).toBe(1008);
  });

  it('pushes reach every open connection of the user, over the admin API', async () => {
    const a = await TestClient.connect(`${gw.wsUrl}?projectId=2&uid=pushed-user`);
    const b = await TestClient.connect(`${gw.wsUrl}?projectId=2&uid=pushed-user&encoding=msgpack`);
    const stranger = await TestClient.connect(`${gw.wsUrl}?projectId=2&uid=someone-else`);
    const res = await fetch(`${gw.url}/api/v1/push`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ projectId: 2, uid: 'pushed-user', params: { offer: 'SAVE10' } }),
    });
    expect(await res.json()).toEqual({ delivered: 2 });
    const expected = { jsonrpc: '2.0', method: 'push', params: { offer: 'SAVE10' } };
    expect(await a.next()).toEqual(expected);
    expect(await b.next()).toEqual(expected);
    await expect(stranger.next(300)).rejects.toThrow('no message');
    for (const c of [a, b, stranger]) c.close();
  });

  it('the admin API refuses requests without the token', async () => {
    const res = await fetch(`${gw.url}/api/v1/push`, { method: 'POST', body: JSON.stringify({ uid: 'x' }) });
    expect(res.status).toBe(401);
    const wrong = await fetch(`${gw.url}/api/v1/push`, { method: 'POST', headers: { authorization: 'Bearer nope' }, body: '{}' });
    expect(wrong.status).toBe(401);
  });

  it('closes a slow reader (1013) instead of buffering without bound', async () => {
    const c = await TestClient.connect(`${gw.wsUrl}?uid=slow-reader`);
    const socket = (c.ws as unknown as { _socket: Socket })._socket;
    socket.pause();
    const big = 'y'.repeat(50_000);
    let delivered = 1;
    for (let i = 0; i < 200 && delivered > 0; i++) {
      const res = await fetch(`${gw.url}/api/v1/push`, {
        method: 'POST', headers: { authorization: `Bearer ${ADMIN}` }, body: JSON.stringify({ uid: 'slow-reader', params: { big } }),
      });
      delivered = (await res.json() as { delivered: number }).delivered;
    }
    expect(delivered).toBe(0); // the server gave up on this connection
    socket.resume();
    expect((await c.closed).code).toBe(1013);
  });

  it('counts open connections in /metrics', async () => {
    const c = await TestClient.connect(`${gw.wsUrl}?uid=counted`);
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    expect(Number(/flowstat_websocket_connections (\d+)/.exec(text)![1])).toBeGreaterThanOrEqual(1);
    c.close();
  });
});

describe.each(SERVERS)('gateway websocket policies (%s)', (server) => {
  it('refuses a browser origin off the allowlist when open mode is off', async () => {
    const gw = await startGateway(server, { gateway: { cors: { origins: ['https://shop.example.com'], open: false } } });
    try {
      await expect(TestClient.connect(gw.wsUrl, { origin: 'https://evil.test' })).rejects.toThrow('403');
      const ok = await TestClient.connect(gw.wsUrl, { origin: 'https://shop.example.com' });
      ok.close();
    } finally {
      await gw.stop('test over');
    }
  });

  it('refuses an invalid uid at the handshake with 400', async () => {
    const gw = await startGateway(server);
    try {
      await expect(TestClient.connect(`${gw.wsUrl}?uid=${encodeURIComponent('<bad uid>')}`)).rejects.toThrow('400');
    } finally {
      await gw.stop('test over');
    }
  });

  it('rate-limits events per IP with a JSON-RPC error carrying retryAfter', async () => {
    const gw = await startGateway(server, { gateway: { limits: { ratePerSecond: 1, rateBurst: 4 } } });
    try {
      const c = await TestClient.connect(`${gw.wsUrl}?uid=eager`); // the handshake costs one token
      expect(await c.call(track(1))).toMatchObject({ result: {} });
      c.sendJson([track(2), track(3)]);
      expect(await c.next()).toHaveLength(2);
      const limited = await c.call(track(4)) as RpcReply;
      expect(limited.error).toMatchObject({ code: -32029, data: { code: 'FLOW_ERR_RATE_LIMITED' } });
      expect(limited.error!.data!.retryAfter).toBeGreaterThanOrEqual(1);
      c.close();
    } finally {
      await gw.stop('test over');
    }
  });

  it('graceful shutdown closes WebSockets with 1001 and stops listening', async () => {
    const gw = await startGateway(server);
    const c = await TestClient.connect(`${gw.wsUrl}?uid=leaving`);
    expect(await c.call(track(1))).toMatchObject({ result: {} });
    const stopped = gw.stop('test shutdown');
    expect((await c.closed).code).toBe(1001);
    expect(await stopped).toBe(true);
    await expect(fetch(`${gw.url}/healthz`)).rejects.toThrow();
    await expect(new Promise((resolve, reject) => {
      const ws = new WebSocket(gw.wsUrl);
      ws.once('open', () => resolve('opened'));
      ws.once('error', reject);
    })).rejects.toThrow();
  });

  it('replies to msgpack batches in msgpack', async () => {
    const gw = await startGateway(server);
    try {
      const c = await TestClient.connect(`${gw.wsUrl}?uid=packer`);
      c.ws.send(msgpack.pack([track(1), track(2)]));
      expect(await c.next()).toMatchObject([{ id: 1 }, { id: 2 }]);
      c.close();
    } finally {
      await gw.stop('test over');
    }
  });
});
