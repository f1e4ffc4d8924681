import { describe, expect, it } from 'vitest';
import {
  ENVELOPE_LIMITS,
  createEnvelope,
  eventIdFromClientId,
  type EnvelopeInput,
} from '../../engine/envelope/index.js';
import { FlowError, type ErrorCode } from '../../engine/errors/index.js';

const RECEIVED_AT = Date.UTC(2024, 4, 1, 12, 0, 0);
const DAY = 86_400_000;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function input(overrides: Partial<EnvelopeInput> = {}): EnvelopeInput {
  return {
    key: 'in.gen.track.page',
    projectId: 1,
    uid: 'u-123',
    receivedAt: RECEIVED_AT,
    ip: '203.0.113.7',
    userAgent: 'Mozilla/5.0',
    ...overrides,
  };
}

function errorOf(fn: () => unknown, code: ErrorCode): FlowError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(FlowError);
  expect((caught as FlowError).code).toBe(code);
  return caught as FlowError;
}

/** Expects FLOW_ERR_FIELD_INVALID whose message names `field`. */
function expectFieldError(overrides: Partial<EnvelopeInput>, field: string): FlowError {
  const err = errorOf(() => createEnvelope(input(overrides)), 'FLOW_ERR_FIELD_INVALID');
  expect(err.message).toMatch(new RegExp(`^invalid field "${field.replace('.', '\\.')}": `));
  expect(err.params.field).toBe(field);
  expect(err.status).toBe(400);
  return err;
}

describe('envelope - defaults', () => {
  it('generates a UUIDv7 id when the client sends none', () => {
    const env = createEnvelope(input());
    expect(env.id).toMatch(UUID_RE);
    expect(env.id[14]).toBe('7');
  });

  it('generates a fresh id per event', () => {
    const ids = new Set(Array.from({ length: 100 }, () => createEnvelope(input()).id));
    expect(ids.size).toBe(100);
  });

  it.each([null, ''])('treats an id of %j as absent', (id) => {
    expect(createEnvelope(input({ id })).id[14]).toBe('7');
  });

  it('ts defaults to receivedAt and data to an empty object', () => {
    const env = createEnvelope(input());
    expect(env.ts).toBe(RECEIVED_AT);
    expect(env.receivedAt).toBe(RECEIVED_AT);
    expect(env.data).toEqual({});
  });

  it('optional text fields default to empty strings and userId to null', () => {
    const env = createEnvelope(input());
    expect(env.pageUrl).toBe('');
    expect(env.pageReferrer).toBe('');
    expect(env.pageTitle).toBe('');
    expect(env.userId).toBeNull();
  });

  it('splits channel, service and name from the key', () => {
    const env = createEnvelope(input({ key: 'in.sys.session.start' }));
    expect(env).toMatchObject({ key: 'in.sys.session.start', channel: 'sys', service: 'session', name: 'start' });
  });

  it('carries the fields it was given', () => {
    const data = { plan: 'pro', n: 3 };
    const env = createEnvelope(input({
      projectId: 42, uid: 'Abc.def:1_2-3', userId: 'user-9', ts: RECEIVED_AT - 5000,
      pageUrl: 'https://example.com/a', pageReferrer: 'https://ref.example/', pageTitle: 'Home', data,
    }));
    expect(env).toMatchObject({
      projectId: 42, uid: 'Abc.def:1_2-3', userId: 'user-9', ts: RECEIVED_AT - 5000,
      ip: '203.0.113.7', userAgent: 'Mozilla/5.0',
      pageUrl: 'https://example.com/a', pageReferrer: 'https://ref.example/', pageTitle: 'Home',
    });
    expect(env.data).toEqual(data);
  });

  it('accepts project id 0 and the largest 32-bit project id', () => {
    expect(createEnvelope(input({ projectId: 0 })).projectId).toBe(0);
    expect(createEnvelope(input({ projectId: ENVELOPE_LIMITS.projectIdMax })).projectId).toBe(2 ** 31 - 1);
  });
});

describe('envelope - client ids', () => {
  it('keeps a client UUID, lower-cased', () => {
    const env = createEnvelope(input({ id: '0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B' }));
    expect(env.id).toBe('0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b');
  });

  it('maps a non-UUID client id to a UUID that is stable for the same project and id', () => {
    const a = createEnvelope(input({ id: 'evt-1' })).id;
    const b = createEnvelope(input({ id: 'evt-1', receivedAt: RECEIVED_AT + 1000 })).id;
    expect(a).toMatch(UUID_RE);
    expect(a[14]).toBe('5');
    expect(b).toBe(a);
    expect(eventIdFromClientId(1, 'evt-1')).toBe(a);
  });

  it('maps the same client id in a different project to a different UUID', () => {
    const p1 = createEnvelope(input({ id: 'evt-1', projectId: 1 })).id;
    const p2 = createEnvelope(input({ id: 'evt-1', projectId: 2 })).id;
    expect(p2).toMatch(UUID_RE);
    expect(p2).not.toBe(p1);
  });

  it('maps different client ids to different UUIDs', () => {
    expect(createEnvelope(input({ id: 'evt-1' })).id).not.toBe(createEnvelope(input({ id: 'evt-2' })).id);
  });

  it('treats a numeric client id like its string form', () => {
    expect(createEnvelope(input({ id: 12345 })).id).toBe(createEnvelope(input({ id: '12345' })).id);
  });

  it('a string that is almost a UUID is mapped, not kept', () => {
    const almost = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5';
    const id = createEnvelope(input({ id: almost })).id;
    expect(id).not.toBe(almost);
    expect(id).toMatch(UUID_RE);
  });

  it('refuses a client id that is too long or not a string', () => {
    expectFieldError({ id: 'x'.repeat(ENVELOPE_LIMITS.clientIdMax + 1) }, 'id');
    expectFieldError({ id: { a: 1 } }, 'id');
    expectFieldError({ id: true }, 'id');
    expect(createEnvelope(input({ id: 'x'.repeat(ENVELOPE_LIMITS.clientIdMax) })).id).toMatch(UUID_RE);
  });
});

describe('envelope - validation', () => {
  it.each([-1, 1.5, '1', NaN, Infinity, 2 ** 31, null, undefined])('refuses projectId %j naming the field', (projectId) => {
    expectFieldError({ projectId }, 'projectId');
  });

  it.each([
    ['empty', ''],
    ['65 characters', 'u'.repeat(65)],
    ['a space', 'a b'],
    ['a slash', 'a/b'],
    ['non-ASCII', 'üser'],
    ['a number', 123],
    ['missing', undefined],
  ])('refuses a uid that is %s', (_what, uid) => {
    expectFieldError({ uid }, 'uid');
  });

  it('accepts a 64-character uid of every allowed character class', () => {
    const uid = `Aa0._:-${'z'.repeat(57)}`;
    expect(uid).toHaveLength(64);
    expect(createEnvelope(input({ uid })).uid).toBe(uid);
  });

  it.each([
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['a non-numeric string', 'yesterday'],
    ['a boolean', true],
    ['an object', { t: 1 }],
    ['before 2000', Date.UTC(1999, 11, 31, 23, 59, 59, 999)],
    ['zero', 0],
    ['2 days ahead', RECEIVED_AT + 2 * DAY],
    ['a day and a millisecond ahead', RECEIVED_AT + DAY + 1],
  ])('refuses ts that is %s', (_what, ts) => {
    expectFieldError({ ts }, 'ts');
  });

  it('accepts ts as a numeric string', () => {
    expect(createEnvelope(input({ ts: '1700000000000' })).ts).toBe(1_700_000_000_000);
  });

  it('accepts a clock up to a day ahead and the first millisecond of 2000', () => {
    expect(createEnvelope(input({ ts: RECEIVED_AT + DAY })).ts).toBe(RECEIVED_AT + DAY);
    expect(createEnvelope(input({ ts: ENVELOPE_LIMITS.tsMin })).ts).toBe(Date.UTC(2000, 0, 1));
  });

  it('truncates a fractional ts to whole milliseconds', () => {
    expect(createEnvelope(input({ ts: 1_700_000_000_000.9 })).ts).toBe(1_700_000_000_000);
  });

  it('refuses page fields that are too long or not strings, naming each', () => {
    expectFieldError({ pageUrl: `https://e.com/${'a'.repeat(ENVELOPE_LIMITS.urlMax)}` }, 'page.url');
    expectFieldError({ pageUrl: 42 }, 'page.url');
    expectFieldError({ pageReferrer: 'r'.repeat(ENVELOPE_LIMITS.urlMax + 1) }, 'page.ref');
    expectFieldError({ pageTitle: 't'.repeat(ENVELOPE_LIMITS.titleMax + 1) }, 'page.title');
    expectFieldError({ pageTitle: ['t'] }, 'page.title');
  });

  it('accepts page fields at exactly their limits', () => {
    const env = createEnvelope(input({ pageUrl: 'u'.repeat(ENVELOPE_LIMITS.urlMax), pageTitle: 't'.repeat(ENVELOPE_LIMITS.titleMax) }));
    expect(env.pageUrl).toHaveLength(4096);
    expect(env.pageTitle).toHaveLength(1024);
  });

  it.each([
    ['an array', [1, 2]],
    ['a string', '{"a":1}'],
    ['a number', 7],
  ])('refuses data that is %s', (_what, data) => {
    expectFieldError({ data }, 'data');
  });

  it('refuses a user id that is too long or not a string, naming user.id', () => {
    expectFieldError({ userId: 'x'.repeat(ENVELOPE_LIMITS.userIdMax + 1) }, 'user.id');
    expectFieldError({ userId: { id: 1 } }, 'user.id');
  });

  it('keeps a numeric user id as a string and treats an empty one as absent', () => {
    expect(createEnvelope(input({ userId: 77 })).userId).toBe('77');
    expect(createEnvelope(input({ userId: '' })).userId).toBeNull();
    expect(createEnvelope(input({ userId: 'x'.repeat(256) })).userId).toHaveLength(256);
  });

  it('refuses an invalid key with FLOW_ERR_KEY_INVALID', () => {
    errorOf(() => createEnvelope(input({ key: 'in.gen.track' })), 'FLOW_ERR_KEY_INVALID');
    errorOf(() => createEnvelope(input({ key: 'IN.GEN.TRACK.PAGE' })), 'FLOW_ERR_KEY_INVALID');
  });

  it('the error serializes to the client shape naming the field', () => {
    let caught: unknown;
    try {
      createEnvelope(input({ uid: '' }));
    } catch (err) {
      caught = err;
    }
    expect(JSON.parse(JSON.stringify(caught))).toEqual({
      error: { code: 'FLOW_ERR_FIELD_INVALID', message: expect.stringContaining('invalid field "uid"') as unknown },
    });
  });
});

describe('envelope - user agent', () => {
  it('clips a user agent longer than 1024 characters', () => {
    const ua = `Mozilla/5.0 ${'x'.repeat(5000)}`;
    const env = createEnvelope(input({ userAgent: ua }));
    expect(env.userAgent).toHaveLength(ENVELOPE_LIMITS.userAgentMax);
    expect(env.userAgent).toBe(ua.slice(0, 1024));
  });

  it('keeps a user agent of 1024 characters or fewer as it is', () => {
    const ua = 'u'.repeat(1024);
    expect(createEnvelope(input({ userAgent: ua })).userAgent).toBe(ua);
    expect(createEnvelope(input({ userAgent: '' })).userAgent).toBe('');
  });
});

describe('envelope - key parts', () => {
  it('splits keys correctly past the parts cache bound (it starts over when full)', () => {
    for (let i = 0; i < 5_000; i++) {
      const e = createEnvelope(input({ key: `in.c${i % 7}.svc${i}.name_${i}` }));
      expect([e.channel, e.service, e.name]).toEqual([`c${i % 7}`, `svc${i}`, `name_${i}`]);
    }
  });

  it('an invalid key is refused even right after a valid one like it', () => {
    createEnvelope(input({ key: 'in.gen.track.page' }));
    expect(() => createEnvelope(input({ key: 'in.gen.track.Page' }))).toThrow(FlowError);
    expect(() => createEnvelope(input({ key: 'in.gen.track' }))).toThrow(FlowError);
  });
});
