import { randomUUID } from 'node:crypto';
import { createError, isValidUid, toFlowError, type EnvelopeInput, type FlowError } from '../../engine/index.js';
import { readCookie, uidCookie, type CookieOptions } from '../http/cookies.js';
import { PIXEL_GIF, PIXEL_HEADERS } from '../http/pixel.js';
import { exceedsDepth } from '../limits/depth.js';
import type { Header } from '../transport/index.js';
import { idString, ipOrNull, isObject, keySegment, numberOf as num, parseJson, uidFrom } from './common.js';
import type { Outcome, ProtocolEvent } from './submit.js';
import type { ProtocolAdapter, ProtocolDeps, ProtocolRequest } from './types.js';

/**
 * The Snowplow tracker protocol (what @snowplow/node-tracker, the browser
 * tracker and the mobile trackers send): POST
 * /com.snowplowanalytics.snowplow/tp2 with a payload_data batch, and GET /i
 * with one event in the query string (the pixel). docs/protocols.md has the
 * full mapping.
 *
 * The Scala collector's behaviour is kept, so the trackers act as they would
 * against it: every request gets 200 (`ok` for tp2, the 1x1 GIF for /i) and
 * the `sp` network-user-id cookie — also a body that is not JSON, not a
 * payload_data envelope, or over the size limit (the collector turns those
 * into bad rows; we keep them in dead_letters), and the events of a batch
 * that cannot be read while the others are stored. Unlike the collector, a
 * reply means the events are durable (per the durability mode); while
 * storage is backed up the answer is 503 + Retry-After and the trackers
 * retry (duplicates are dropped by `eid`).
 *
 * `SP-Anonymous: *` (the trackers' server-side anonymisation) is honoured
 * as the collector does: no `sp` cookie is read or set, the network user id
 * is the all-zero UUID, and no IP is kept — neither the socket's nor one the
 * tracker put in `ip`. Such events without a domain user id all share the
 * all-zero id as their uid: they cannot be grouped by user.
 */

export const SNOWPLOW_POST_PATH = '/com.snowplowanalytics.snowplow/tp2';
const PIXEL_PATH = '/i';
/** The collector's default limit on a request (collector.streams.sink.maxBytes). */
export const SNOWPLOW_REQUEST_MAX = 1_000_000;
const PAYLOAD_DATA = 'iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-';
const IGLU = /^iglu:[^/\s]+\/([^/\s]+)\/[^/\s]+\/[^/\s]+$/;
/** The collector's network-user-id cookie: its name and its default lifetime (one year). */
const SP_COOKIE = 'sp';
const SP_COOKIE_DAYS = 365;
/** The network user id of an anonymous request (SP-Anonymous), as the collector sets it. */
const ANONYMOUS_NUID = '00000000-0000-0000-0000-000000000000';
const OK_HEADERS: readonly Header[] = [['content-type', 'text/plain; charset=utf-8'], ['cache-control', 'no-store']];
const TEXT_HEADERS: readonly Header[] = [['content-type', 'text/plain; charset=utf-8']];
/** A GET with `e=` is Snowplow's; one with `app_key=` is Countly's (they share /i). */
const HAS_E = /(?:^|&)e=/;
const HAS_APP_KEY = /(?:^|&)app_key=/;
const EVENT_TYPES = ['pv', 'pp', 'se', 'ue', 'tr', 'ti'];

/**
 * Tracker fields that map onto columns, the key or named props: the rest of
 * an event's fields (lang, res, vp, cs, tz, …) are kept in props as they came.
 */
const CONSUMED = new Set([
  'e', 'eid', 'url', 'page', 'refr', 'uid', 'ua', 'ip', 'dtm', 'stm', 'ttm', 'co', 'cx', 'ue_pr', 'ue_px',
  'aid', 'p', 'tv', 'tna', 'sid', 'vid', 'duid', 'nuid', 'tnuid',
  'pp_mix', 'pp_max', 'pp_miy', 'pp_may', 'se_ca', 'se_ac', 'se_la', 'se_pr', 'se_va',
  'tr_id', 'tr_af', 'tr_tt', 'tr_tx', 'tr_sh', 'tr_ci', 'tr_st', 'tr_co', 'tr_cu',
  'ti_id', 'ti_sk', 'ti_nm', 'ti_ca', 'ti_pr', 'ti_qu', 'ti_cu',
]);

export function createSnowplowAdapter({ ctx, submitter }: ProtocolDeps): ProtocolAdapter {
  const { appIds: appIdMap, defaultProjectId } = ctx.gateway.protocols.snowplow;
  const appIds = new Map(Object.entries(appIdMap));
  const limits = ctx.gateway.limits;
  const cookieOptions: CookieOptions = { name: SP_COOKIE, domain: ctx.gateway.cookie.domain, maxAgeDays: SP_COOKIE_DAYS };

  /** One tracker event → an envelope input; throws FLOW_ERR_FIELD_INVALID naming what is wrong. */
  function toInput(ev: Record<string, unknown>, projectId: number, networkUserId: string, anonymous: boolean, req: ProtocolRequest): EnvelopeInput {
    const e = str(ev.e);
    if (e === null) throw createError('FLOW_ERR_FIELD_INVALID', { field: 'e', reason: 'every event needs its type "e"' });
    const data: Record<string, unknown> = {};
    let key: string;
    switch (e) {
      case 'pv':
        key = 'in.sp.track.page_view';
        break;
      case 'pp':
        key = 'in.sp.track.page_ping';
        put(data, 'minXOffset', num(ev.pp_mix));
        put(data, 'maxXOffset', num(ev.pp_max));
        put(data, 'minYOffset', num(ev.pp_miy));
        put(data, 'maxYOffset', num(ev.pp_may));
        break;
      case 'se': {
        const category = str(ev.se_ca);
        const action = str(ev.se_ac);
        if (category === null || action === null) throw createError('FLOW_ERR_FIELD_INVALID', { field: category === null ? 'se_ca' : 'se_ac', reason: 'a structured event needs a category and an action' });
        key = `in.sp.struct.${keySegment(`${category} ${action}`)}`;
        Object.assign(data, { category, action });
        put(data, 'label', str(ev.se_la));
        put(data, 'property', str(ev.se_pr));
        put(data, 'value', num(ev.se_va));
        break;
      }
      case 'ue': {
        const { schema, data: fields } = selfDescribingEvent(ev);
        key = `in.sp.unstruct.${keySegment(IGLU.exec(schema)![1]!)}`;
        Object.assign(data, fields, { schema });
        break;
      }
      case 'tr':
        key = 'in.sp.ecommerce.transaction';
        put(data, 'orderId', str(ev.tr_id));
        put(data, 'affiliation', str(ev.tr_af));
        put(data, 'total', num(ev.tr_tt));
        put(data, 'tax', num(ev.tr_tx));
        put(data, 'shipping', num(ev.tr_sh));
        put(data, 'city', str(ev.tr_ci));
        put(data, 'state', str(ev.tr_st));
        put(data, 'country', str(ev.tr_co));
        put(data, 'currency', str(ev.tr_cu));
        break;
      case 'ti':
        key = 'in.sp.ecommerce.item';
        put(data, 'orderId', str(ev.ti_id));
        put(data, 'sku', str(ev.ti_sk));
        put(data, 'name', str(ev.ti_nm));
        put(data, 'category', str(ev.ti_ca));
        put(data, 'price', num(ev.ti_pr));
        put(data, 'quantity', num(ev.ti_qu));
        put(data, 'currency', str(ev.ti_cu));
        break;
      default:
        throw createError('FLOW_ERR_FIELD_INVALID', { field: 'e', reason: `"${e.slice(0, 20)}" is not one of ${EVENT_TYPES.join(', ')}` });
    }
    const contexts = contextsOf(ev);
    if (contexts !== null) data.contexts = contexts;
    const domainUserId = str(ev.duid);
    // The tracker's network user id (tnuid, or nuid as the node tracker sends it) wins over the collector's cookie, as in Snowplow's enrichment.
    const network = anonymous ? ANONYMOUS_NUID : str(ev.tnuid) ?? str(ev.nuid) ?? networkUserId;
    put(data, 'appId', str(ev.aid));
    put(data, 'platform', str(ev.p));
    put(data, 'trackerVersion', str(ev.tv));
    put(data, 'trackerNamespace', str(ev.tna));
    put(data, 'sessionId', str(ev.sid));
    put(data, 'sessionIndex', num(ev.vid));
    put(data, 'domainUserId', domainUserId);
    data.networkUserId = network;
    for (const [k, v] of Object.entries(ev)) if (!CONSUMED.has(k) && v !== undefined) data[k] = v;
    // Snowplow's derived timestamp: the true timestamp when the tracker set one, else the device's creation time moved by how far its clock was off when it sent.
    const dtm = num(ev.dtm);
    const stm = num(ev.stm);
    const ts = num(ev.ttm) ?? (dtm !== null && stm !== null ? req.head.receivedAt - (stm - dtm) : dtm);
    return {
      key,
      projectId,
      uid: uidFrom(domainUserId ?? network),
      receivedAt: req.head.receivedAt,
      ip: anonymous ? '' : ipOrNull(ev.ip) ?? req.client.ip,
      userAgent: str(ev.ua) ?? req.head.headers.userAgent,
      id: str(ev.eid) ?? undefined,
      ts: ts === null ? undefined : Math.min(ts, req.head.receivedAt),
      userId: str(ev.uid) ?? undefined,
      pageUrl: str(ev.url) ?? undefined,
      pageReferrer: str(ev.refr) ?? undefined,
      pageTitle: str(ev.page) ?? undefined,
      data,
    };
  }

  /** `ue_pr` (JSON) or `ue_px` (base64url JSON): `{schema: unstruct_event, data: {schema, data}}` → the inner event. */
  function selfDescribingEvent(ev: Record<string, unknown>): { schema: string; data: Record<string, unknown> } {
    const field = ev.ue_pr !== undefined ? 'ue_pr' : 'ue_px';
    const outer = jsonField(ev, 'ue_pr', 'ue_px');
    if (outer === undefined) throw createError('FLOW_ERR_FIELD_INVALID', { field, reason: 'a self-describing event needs ue_pr (JSON) or ue_px (base64url JSON)' });
    const inner = isObject(outer) ? outer.data : undefined;
    if (!isObject(inner) || typeof inner.schema !== 'string' || !IGLU.test(inner.schema) || !isObject(inner.data)) {
      throw createError('FLOW_ERR_FIELD_INVALID', { field, reason: 'must be {schema, data: {schema: "iglu:vendor/name/format/version", data: {…}}}' });
    }
    return { schema: inner.schema, data: inner.data };
  }

  /** `co` (JSON) or `cx` (base64url JSON): `{schema: contexts, data: [{schema, data}, …]}` → the entities; null when there are none. */
  function contextsOf(ev: Record<string, unknown>): unknown[] | null {
    if (ev.co === undefined && ev.cx === undefined) return null;
    const field = ev.co !== undefined ? 'co' : 'cx';
    const outer = jsonField(ev, 'co', 'cx');
    const list = isObject(outer) ? outer.data : undefined;
    if (!Array.isArray(list) || !list.every((c) => isObject(c) && typeof c.schema === 'string')) {
      throw createError('FLOW_ERR_FIELD_INVALID', { field, reason: 'must be {schema, data: [{schema, data}, …]}' });
    }
    return list;
  }

  /** A JSON field sent either as JSON text or as base64url of it; undefined when absent or unreadable. */
  function jsonField(ev: Record<string, unknown>, plain: string, encoded: string): unknown {
    let text: string | null = str(ev[plain]);
    if (text === null) {
      const b64 = str(ev[encoded]);
      if (b64 === null) return undefined;
      text = Buffer.from(b64, 'base64url').toString('utf8');
    }
    const value = parseJson(Buffer.from(text, 'utf8'));
    if (value !== undefined && exceedsDepth(value, limits.maxDepth)) throw createError('FLOW_ERR_TOO_DEEP', { limit: limits.maxDepth });
    return value;
  }

  function projectOf(ev: Record<string, unknown>): number | undefined {
    const aid = str(ev.aid);
    return (aid === null ? undefined : appIds.get(aid)) ?? defaultProjectId;
  }

  /** The collector's reply: `ok` for tp2, the pixel for GET /i; the `sp` cookie on both (none for an anonymous request). */
  function answer(req: ProtocolRequest, cookie: readonly Header[]): void {
    if (req.head.method === 'GET') req.res.send(200, [...PIXEL_HEADERS, ...req.cors, ...cookie], PIXEL_GIF);
    else req.res.send(200, [...OK_HEADERS, ...req.cors, ...cookie], 'ok');
  }

  function answerError(req: ProtocolRequest, err: FlowError, cookie: readonly Header[]): void {
    const retryAfter = err.params.retryAfter ?? (err.retryable ? 1 : undefined);
    const retry: Header[] = retryAfter === undefined ? [] : [['retry-after', String(retryAfter)]];
    req.res.send(err.status, [...TEXT_HEADERS, ...req.cors, ...cookie, ...retry], err.message);
  }

  /** The events of a request, or why the whole request cannot be read (dead-lettered, answered 200 as the collector does). */
  function eventsOf(req: ProtocolRequest): { events: unknown[] } | { err: FlowError; payload: unknown } {
    if (req.head.method === 'GET') {
      const ev: Record<string, string> = {};
      for (const [k, v] of new URLSearchParams(req.head.query)) ev[k] = v;
      return { events: [ev] };
    }
    const { body } = req;
    if (body === null || 'tooLarge' in body) {
      const size = body === null ? 0 : body.tooLarge;
      return size > 0
        ? { err: createError('FLOW_ERR_PAYLOAD_TOO_LARGE', { size, limit: SNOWPLOW_REQUEST_MAX }), payload: { path: req.head.path, size } }
        : { err: createError('FLOW_ERR_INVALID_REQUEST', { reason: 'empty body' }), payload: { path: req.head.path, size } };
    }
    const parsed = parseJson(body);
    if (parsed === undefined) return { err: createError('FLOW_ERR_PARSE', { reason: 'Invalid JSON' }), payload: body.toString('utf8') };
    if (exceedsDepth(parsed, limits.maxDepth)) return { err: createError('FLOW_ERR_TOO_DEEP', { limit: limits.maxDepth }), payload: body.toString('utf8') };
    if (!isObject(parsed) || typeof parsed.schema !== 'string' || !parsed.schema.startsWith(PAYLOAD_DATA) || !Array.isArray(parsed.data)) {
      return { err: createError('FLOW_ERR_INVALID_REQUEST', { reason: `not a payload_data envelope: expected {"schema": "${PAYLOAD_DATA}x", "data": [events]}` }), payload: parsed };
    }
    if (parsed.data.length > limits.maxBatch) return { err: createError('FLOW_ERR_BATCH_TOO_LARGE', { size: parsed.data.length, limit: limits.maxBatch }), payload: parsed };
    return { events: parsed.data };
  }

  return {
    name: 'sp',
    maxBodyBytes: SNOWPLOW_REQUEST_MAX,
    matches: (head) => head.method === 'POST'
      ? head.path === SNOWPLOW_POST_PATH
      : head.method === 'GET' && head.path === PIXEL_PATH && HAS_E.test(head.query) && !HAS_APP_KEY.test(head.query),
    handle(req) {
      // The collector's cookie: the one the browser sent when it holds a usable id, else a new one; neither when anonymous.
      const anonymous = req.head.headers.spAnonymous !== '';
      const sent = anonymous ? undefined : readCookie(req.head.headers.cookie, SP_COOKIE);
      const networkUserId = anonymous ? ANONYMOUS_NUID : sent !== undefined && isValidUid(sent) ? sent : randomUUID();
      const cookie: readonly Header[] = anonymous ? [] : [['set-cookie', uidCookie(networkUserId, cookieOptions, req.client.https)]];
      const read = eventsOf(req);
      // Admitted before anything is written, the dead letter of an unreadable request included.
      const refused = submitter.admit(req, 'events' in read ? read.events.length : 1);
      if (refused !== null) return answerError(req, refused, cookie);
      if ('err' in read) {
        submitter.deadLetter('sp', 0, read.err, read.payload);
        return answer(req, cookie);
      }
      const events: ProtocolEvent[] = [];
      for (const raw of read.events) {
        if (!isObject(raw)) {
          submitter.deadLetter('sp', 0, createError('FLOW_ERR_FIELD_INVALID', { field: 'data', reason: 'an event must be an object' }), raw);
          continue;
        }
        const projectId = projectOf(raw);
        if (projectId === undefined) {
          // The collector has no notion of app ids; a flowstat project must be named for each (gateway.protocols.snowplow).
          submitter.deadLetter('sp', 0, createError('FLOW_ERR_UNAUTHORIZED'), { aid: str(raw.aid), reason: raw.aid === undefined ? 'no app id (aid)' : 'unknown app id', event: raw });
          continue;
        }
        try {
          events.push({ input: toInput(raw, projectId, networkUserId, anonymous, req), raw });
        } catch (err) {
          submitter.deadLetter('sp', projectId, toFlowError(err, 'FLOW_ERR_FIELD_INVALID'), raw);
        }
      }
      submitter.submit('sp', events, (outcomes) => {
        // An event the engine could not take now (overloaded, shutting down) makes the tracker retry the request.
        const retryable = outcomes.find((o): o is Extract<Outcome, { ok: false }> => !o.ok && o.error.retryable);
        if (retryable !== undefined) return answerError(req, retryable.error, cookie);
        answer(req, cookie);
      });
    },
  };
}

/** A tracker field as a string (trackers send every field as one); null when absent or empty. */
function str(v: unknown): string | null {
  return idString(v);
}


function put(data: Record<string, unknown>, name: string, value: string | number | null): void {
  if (value !== null) data[name] = value;
}
