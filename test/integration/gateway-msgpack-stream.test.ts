import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MAX_RECORD_DEFINITIONS_PER_FRAME, RECORD_LIMITS } from '../../gateway/ws/msgpack-stream.js';
import type { ClickHouseStore } from '../../sinks/index.js';
import { SERVERS, TestClient, startGateway, track, uniqueDatabase, type TestGateway } from '../support/gateway.js';
import { propsOf, serverStore, waitFor } from '../support/storage.js';

/**
 * `/ws?msgpack=sequential`: binary frames as one msgpackr sequential stream,
 * record structures defined once per connection (gateway/ws/msgpack-stream.ts).
 */

interface RpcReply { id: unknown; result?: { key: string; uid: string }; error?: { code: number; data?: { code: string } } }

describe.each(SERVERS)('gateway msgpack sequential stream (%s)', (server) => {
  let gw: TestGateway;
  let store: ClickHouseStore;
  const database = uniqueDatabase('mps');
  beforeAll(async () => {
    gw = await startGateway(server, { clickhouse: { url: inject('clickhouseUrl'), database }, storage: { flushMs: 100 } });
    store = await serverStore(inject('clickhouseUrl'), database);
  });
  afterAll(async () => {
    await store.close();
    await gw.stop('test over');
  });

  it('later frames carry values only; every event is answered and stored with its fields', async () => {
    const c = await TestClient.connect(`${gw.wsUrl}?uid=seq-user&msgpack=sequential`);
    const packr = new Packr({ sequential: true });
    const sizes: number[] = [];
    const send = (msg: unknown): void => {
      const frame = packr.pack(msg);
      sizes.push(frame.length);
      c.ws.send(frame);
    };
    // Two shapes of params (with page, with data), ids past 63 (bytes 0x40-0x7f are record ids too), and a batch.
    for (let i = 1; i <= 40; i++) {
      send(i % 2 === 0
        ? track(i * 3, { page: { url: `https://shop.example.com/p/${i}`, title: `Product ${i}` } })
        : track(i * 3, { name: 'click', data: { button: `b${i}`, n: i } }));
    }
    send([track(1000, { name: 'scroll', data: { depth: 50 } }), track(1001, { name: 'scroll', data: { depth: 75 } })]);

    for (let i = 1; i <= 40; i++) {
      const reply = await c.next() as RpcReply;
      expect(reply).toMatchObject({ id: i * 3, result: { key: i % 2 === 0 ? 'in.gen.track.page' : 'in.gen.track.click', uid: 'seq-user' } });
    }
    expect(await c.next()).toMatchObject([{ id: 1000, result: { key: 'in.gen.track.scroll' } }, { id: 1001 }]);
    // The first frame of each shape defines it; the same shape later is smaller.
    expect(sizes[2]).toBeLessThan(sizes[0]!);
    expect(sizes[3]).toBeLessThan(sizes[1]!);
    c.close();

    const rows = await waitFor('42 stored events', async () => {
      const r = await store.query<{ name: string; page_url: string; props: string }>(
        `SELECT name, page_url, props FROM ${database}.events WHERE uid = 'seq-user' AND channel = 'gen' ORDER BY received_at, event_id`,
      );
      return r.length === 42 ? r : false;
    });
    expect(rows.filter((r) => r.name === 'page').map((r) => r.page_url).sort()).toEqual(
      Array.from({ length: 20 }, (_, k) => `https://shop.example.com/p/${(k + 1) * 2}`).sort(),
    );
    const clicks = rows.filter((r) => r.name === 'click').map((r) => propsOf(r));
    expect(clicks).toHaveLength(20);
    expect(clicks.map((p) => p.button).sort()).toEqual(Array.from({ length: 20 }, (_, k) => `b${k * 2 + 1}`).sort());
    expect(rows.filter((r) => r.name === 'scroll').map((r) => propsOf(r).depth).sort()).toEqual(['50', '75']);
  });

  it('a client packing with msgpackr defaults (records per message) is read per frame on a plain connection', async () => {
    // Each message defines its records anew and ids restart at 0x40, so a later
    // message's small integers must not be read as an earlier message's records.
    const c = await TestClient.connect(`${gw.wsUrl}?uid=default-packr`);
    const packr = new Packr();
    c.ws.send(packr.pack(track(1, { data: { a: { x: 1 }, b: { y: 2 }, c: { z: 3 }, d: { w: 4 }, e: { v: 5 }, f: { u: 6 } } })));
    expect(await c.next()).toMatchObject({ id: 1, result: {} });
    c.ws.send(packr.pack(track(70)));
    expect(await c.next()).toMatchObject({ id: 70, result: { key: 'in.gen.track.page' } });
    c.close();
  });

  it('definitions over the limits get an error and are forgotten; a new Packr starts again on the same connection', async () => {
    const c = await TestClient.connect(`${gw.wsUrl}?uid=many-shapes&msgpack=sequential`);
    /** Sends frames until one is refused (the structures are measured every few KB of frames); returns the refusal. */
    const sendUntilRefused = async (frame: (i: number) => Buffer, most: number): Promise<RpcReply | undefined> => {
      for (let i = 0; i < most; i++) {
        c.ws.send(frame(i));
        const reply = await c.next() as RpcReply;
        if (reply.error !== undefined) return reply;
        expect(reply.result).toBeDefined();
      }
      return undefined;
    };
    // One shape of more keys than all structures may hold.
    const wide: Record<string, number> = {};
    for (let k = 0; k <= RECORD_LIMITS.keys; k++) wide[`k${k}`] = k;
    const first = new Packr({ sequential: true });
    const tooWide = await sendUntilRefused((i) => first.pack(track(i + 1, { data: wide })), 50);
    expect(tooWide?.error).toMatchObject({ code: -32600, data: { code: 'FLOW_ERR_INVALID_REQUEST' } });

    // More shapes than allowed: msgpackr's own Packr recycles its ids at 64, one told to keep more does not.
    const many = new Packr({ sequential: true, maxOwnStructures: 1_000 });
    const tooMany = await sendUntilRefused((i) => many.pack(track(100 + i, { data: { [`shape${i}`]: i } })), 2_000);
    expect(tooMany?.error).toMatchObject({ code: -32600, data: { code: 'FLOW_ERR_INVALID_REQUEST' } });

    // msgpackr's default sequential Packr never exceeds them, however many shapes it meets.
    const fresh = new Packr({ sequential: true });
    expect(await sendUntilRefused((i) => fresh.pack(track(5_000 + i, { data: { [`shape${i}`]: i } })), 600)).toBeUndefined();
    c.close();
  });

  it('a frame naming a structure this connection never saw is an error, and the connection stays open', async () => {
    const packr = new Packr({ sequential: true });
    packr.pack(track(1)); // defines the shapes on a connection that is not this one
    const c = await TestClient.connect(`${gw.wsUrl}?uid=stale-packr&msgpack=sequential`);
    c.ws.send(packr.pack(track(2)));
    const reply = await c.next() as RpcReply;
    expect(reply.error?.code).toBeLessThan(-32000);
    expect(await c.call({ jsonrpc: '2.0', method: 'ping', id: 3 })).toMatchObject({ id: 3, result: 'pong' });
    c.close();
  });

  it('a frame with more record definitions than allowed is refused before decoding, on any connection', async () => {
    // Each shape used four times: msgpackr would compile a reader for each.
    const shapes = (n: number): Record<string, number>[] => Array.from({ length: n }, (_, s) => ({ [`k${s}`]: s })).flatMap((o) => [o, o, o, o]);
    for (const query of ['', '&msgpack=sequential']) {
      const c = await TestClient.connect(`${gw.wsUrl}?uid=record-bomb${query}`);
      c.ws.send(new Packr({ maxOwnStructures: 1_000 }).pack(track(1, { data: { list: shapes(MAX_RECORD_DEFINITIONS_PER_FRAME + 10) } })));
      const reply = await c.next() as RpcReply & { error?: { message?: string } };
      expect(reply.error).toMatchObject({ code: -32600, data: { code: 'FLOW_ERR_INVALID_REQUEST' } });
      expect(reply.error?.message).toContain('record definitions in one frame');
      // A frame within the limit is read.
      c.ws.send(new Packr().pack(track(2, { data: { list: shapes(8) } })));
      expect(await c.next()).toMatchObject({ id: 2, result: {} });
      c.close();
    }
  });

  it('refuses an unknown msgpack mode at the handshake with 400', async () => {
    await expect(TestClient.connect(`${gw.wsUrl}?uid=x&msgpack=records`)).rejects.toThrow('400');
  });
});

describe.each(SERVERS)('gateway msgpack record definitions and the rate limit (%s)', (server) => {
  it('each definition in a frame costs a token, like an event', async () => {
    const gw = await startGateway(server, { gateway: { limits: { ratePerSecond: 1, rateBurst: 40 } } });
    try {
      const c = await TestClient.connect(`${gw.wsUrl}?uid=definer`); // the handshake costs one token
      const shapes = Array.from({ length: 20 }, (_, s) => ({ [`k${s}`]: s }));
      // 1 event + 20 (or so: a few more objects of the envelope) definitions.
      c.ws.send(new Packr().pack(track(1, { data: { list: shapes } })));
      expect(await c.next()).toMatchObject({ id: 1, result: {} });
      c.ws.send(new Packr().pack(track(2, { data: { list: shapes } })));
      expect(((await c.next()) as RpcReply).error).toMatchObject({ code: -32029, data: { code: 'FLOW_ERR_RATE_LIMITED' } });
      // The same event without records costs one token.
      c.ws.send(new Packr({ useRecords: false }).pack(track(3, { data: { list: shapes } })));
      expect(await c.next()).toMatchObject({ id: 3, result: {} });
      c.close();
    } finally {
      await gw.stop('test over');
    }
  });
});
