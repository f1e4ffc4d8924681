import { describe, expect, it } from 'vitest';
import {
  defaultResultJson, defaultResultMsgpack, encodeMsgpackArray, packr, RawMsgpack, resultResponse, type RpcId,
} from '../../gateway/ws/jsonrpc.js';

const EVENT_ID = '019a0b1c-2d3e-7f40-8a51-b2c3d4e5f607';

describe('gateway jsonrpc - templated default replies', () => {
  const ids: RpcId[] = [
    0, 1, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, null,
    '', 'a', 'x'.repeat(31), 'x'.repeat(32), 'x'.repeat(255), 'x'.repeat(256), 'ünïcødé-✓',
  ];
  const keys = ['in.gen.track.page', `in.gen.${'s'.repeat(64)}.${'n'.repeat(64)}`, `in.${'a'.repeat(64)}.${'b'.repeat(64)}.${'c'.repeat(64)}`];
  const uids = ['u', 'u'.repeat(31), 'u'.repeat(32), 'U-1.2:3_x'.repeat(7).slice(0, 64)];

  it('msgpack template decodes to the reply msgpackr would have packed, in no more bytes', () => {
    for (const id of ids) {
      for (const key of keys) {
        for (const uid of uids) {
          const templated = defaultResultMsgpack(id, EVENT_ID, key, uid);
          expect(templated).toBeInstanceOf(RawMsgpack);
          const reply = resultResponse(id, { id: EVENT_ID, key, uid });
          const bytes = (templated as RawMsgpack).bytes;
          const what = `id ${JSON.stringify(id).slice(0, 20)} key ${key.length} uid ${uid.length}`;
          expect(packr.unpack(bytes), what).toEqual(reply);
          expect(bytes.length, what).toBeLessThanOrEqual(packr.pack(reply).length);
        }
      }
    }
  });

  it('msgpack template leaves ids it does not template to packr, unchanged', () => {
    for (const id of [-1, 1.5, 2 ** 32, Number.MAX_SAFE_INTEGER, 'y'.repeat(70_000)]) {
      const reply = defaultResultMsgpack(id, EVENT_ID, 'in.gen.track.page', 'u1');
      expect(reply).toEqual(resultResponse(id, { id: EVENT_ID, key: 'in.gen.track.page', uid: 'u1' }));
    }
  });

  it('json template parses to the same reply', () => {
    for (const id of ids) {
      const raw = defaultResultJson(id, EVENT_ID, 'in.gen.track.page', 'u-1');
      expect(JSON.parse(raw.text)).toEqual(resultResponse(id, { id: EVENT_ID, key: 'in.gen.track.page', uid: 'u-1' }));
    }
  });

  it('msgpack batch reply is one array holding templated and packed replies in order', () => {
    for (const n of [1, 15, 16, 500]) {
      const items: unknown[] = [];
      const expected: unknown[] = [];
      for (let i = 0; i < n; i++) {
        const plain = resultResponse(i, { id: EVENT_ID, key: 'in.gen.track.page', uid: `u${i}` });
        items.push(i % 3 === 0 ? plain : defaultResultMsgpack(i, EVENT_ID, 'in.gen.track.page', `u${i}`));
        expected.push(plain);
      }
      const bytes = encodeMsgpackArray(items);
      expect(packr.unpack(bytes)).toEqual(expected);
    }
  });
});
