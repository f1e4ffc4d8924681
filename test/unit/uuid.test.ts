import { describe, expect, it } from 'vitest';
import { v5 as referenceV5 } from 'uuid';
import { packUuid, unpackUuid, uuidBytes, uuidv5, uuidv7 } from '../../engine/envelope/uuid.js';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The 48-bit millisecond timestamp at the front of a v7 id. */
const msOf = (id: string): number => Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);

describe('uuidv7', () => {
  it('is RFC 9562 version 7, variant 10, with the given time in its first 48 bits', () => {
    for (const now of [0, 1, 0xffffff, 0x1000000, Date.UTC(2026, 11, 4, 18, 30)]) {
      const id = uuidv7(now);
      expect(id).toMatch(V7);
      expect(msOf(id)).toBe(now);
    }
    const now = Date.UTC(2031, 0, 1);
    expect(msOf(uuidv7(now))).toBe(now);
  });

  it('each id is its own string: the next one does not change it', () => {
    const first = uuidv7(Date.UTC(2032, 0, 1));
    const copy = `${first}`;
    const second = uuidv7(Date.UTC(2032, 0, 1));
    expect(first).toBe(copy);
    expect(second).not.toBe(first);
  });

  it('is unique and sorts in creation order, within one millisecond and past the counter overflowing', () => {
    const at = Date.UTC(2033, 0, 1);
    const ids = Array.from({ length: 10_000 }, () => uuidv7(at));
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    // 4,096 ids fit in one millisecond's counter; after that the time moves on by one.
    expect(msOf(ids.at(-1)!)).toBeGreaterThan(at);
    expect(msOf(ids.at(-1)!) - at).toBeLessThanOrEqual(Math.ceil(10_000 / 2_048));
    // A clock that goes back does not take the ids back.
    expect(uuidv7(at - 1_000) > ids.at(-1)!).toBe(true);
  });
});

describe('uuidv5', () => {
  const namespace = '6f1d5a8e-3c1b-4e57-9a3f-1f0e2b7c9d41';
  const names = [
    '', '1:a', '1:e123', '42:order-2026-12-04', '1:Zoë 🛒 ünïcödé', `7:${'x'.repeat(128)}`, `1:${'🛒'.repeat(400)}`,
    ...Array.from({ length: 500 }, (_, i) => `${i % 7}:evt-${i.toString(36)}`),
  ];

  it('is the RFC 9562 name-based id the uuid package computes, for ASCII, multi-byte and long names', () => {
    const bytes = uuidBytes(namespace);
    for (const name of names) expect(uuidv5(name, bytes)).toBe(referenceV5(name, namespace));
  });

  it('gives the same id for the same name, whatever was hashed in between', () => {
    const bytes = uuidBytes(namespace);
    const first = uuidv5('1:retry-me', bytes);
    uuidv5(`1:${'long'.repeat(500)}`, bytes);
    expect(uuidv5('1:retry-me', bytes)).toBe(first);
    expect(first).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('keeps ids apart across namespaces', () => {
    expect(uuidv5('1:a', uuidBytes(namespace))).not.toBe(uuidv5('1:a', uuidBytes('6ba7b811-9dad-11d1-80b4-00c04fd430c8')));
  });
});

describe('packUuid', () => {
  it('packs a canonical UUID into 22 base64url characters that unpack to the same text', () => {
    for (let i = 0; i < 1_000; i++) {
      const id = i % 2 === 0 ? uuidv7(1_700_000_000_000 + i) : crypto.randomUUID();
      const packed = packUuid(id)!;
      expect(packed).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(unpackUuid(packed)).toBe(id);
    }
    expect(packUuid('00000000-0000-0000-0000-000000000000')).toBe('AAAAAAAAAAAAAAAAAAAAAA');
    expect(unpackUuid('_____________________w')).toBe('ffffffff-ffff-ffff-ffff-ffffffffffff');
  });

  it('leaves any other text unpacked: upper case, no dashes, braces, too long or short', () => {
    const id = '56383633-824c-4e85-8a8e-f62f50e0126d';
    for (const other of [id.toUpperCase(), id.replace(/-/g, ''), `{${id}}`, `${id}0`, id.slice(1), '', 'user-1', `${id.slice(0, 35)}g`]) {
      expect(packUuid(other)).toBeNull();
    }
  });
});
