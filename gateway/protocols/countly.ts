import { createHash, timingSafeEqual } from 'node:crypto';
import { createError, type EnvelopeInput, type FlowError } from '../../engine/index.js';
import { exceedsDepth } from '../limits/depth.js';
import type { Header } from '../transport/index.js';
import { idString, ipOrNull, isObject, keySegment, numberOf as num, uidFrom } from './common.js';
import type { Outcome, ProtocolEvent } from './submit.js';
import type { ProtocolAdapter, ProtocolDeps, ProtocolRequest } from './types.js';

/**
 * Countly's write API (what countly-sdk-nodejs, the web SDK and the mobile
 * SDKs send): GET or POST /i with app_key + device_id and any of
 * begin_session, session_duration, end_session, events, user_details and
 * old_device_id; /i/bulk with `requests`, an array of such requests.
 * Parameters come from the query string, a form body or a JSON body (the
 * body wins). docs/protocols.md has the full mapping.
 *
 * Countly's replies are kept, so its SDKs act as they would against a
 * Countly server: 200 `{"result":"Success"}`, 400 `{"result":…}` with
 * Countly's texts for a missing app_key or device_id, an unknown app and a
 * checksum that does not match the app's salt. Everything refused is kept in
 * dead_letters (source gateway:countly). A part of a request that cannot be
 * read (bad events JSON, an event without a key) is dead-lettered and the
 * rest stored, as Countly stores what it can read. A reply means the events
 * are durable; while storage is backed up the answer is 503 + Retry-After
 * and the SDK retries its queue (a retried request with a timestamp has the
 * same event ids, so it is stored once).
 */

const SINGLE_PATH = '/i';
const BULK_PATH = '/i/bulk';
/** flowstat's limit on a Countly request (a bulk of 50 SDK requests fits easily). */
export const COUNTLY_REQUEST_MAX = 1024 * 1024;
/**
 * Events one /i/bulk request may carry: the SDKs' defaults allow 50
 * requests (bulk_size) of up to 100 events (max_events) each. A single /i
 * request keeps gateway.limits.maxBatch.
 */
export const COUNTLY_BULK_MAX_EVENTS = 5_000;
const JSON_HEADERS: readonly Header[] = [['content-type', 'application/json'], ['cache-control', 'no-store']];
const SUCCESS = '{"result":"Success"}';
const MISSING = 'Missing parameter "app_key" or "device_id"';
const NO_APP = 'App does not exist';
const BAD_CHECKSUM = 'Request does not match checksum';
const NO_CHECKSUM = 'Request does not have checksum';
/** GET /i is shared with Snowplow's pixel: Countly's when it names an app, or a device without Snowplow's `e`. */
const HAS_APP_KEY = /(?:^|&)app_key=/;
const HAS_DEVICE_ID = /(?:^|&)device_id=/;
const HAS_E = /(?:^|&)e=/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

type Params = Record<string, unknown>;
interface App { readonly projectId: number; readonly salt?: string | undefined }
/** One request's events, and the parts of it that could not be read. */
interface Parts { events: ProtocolEvent[]; refused: { projectId: number; err: FlowError; raw: unknown }[] }

/** Thrown for what Countly answers with 400 `{"result": message}`. */
class Refused extends Error {
  constructor(readonly result: string, readonly error: FlowError, readonly projectId: number) {
    super(result);
  }
}

export function createCountlyAdapter({ ctx, submitter }: ProtocolDeps): ProtocolAdapter {
  const apps = new Map<string, App>(Object.entries(ctx.gateway.protocols.countly.apps));
  const limits = ctx.gateway.limits;

  /** A JSON parameter (see jsonParam); undefined also when it nests deeper than gateway.limits.maxDepth. */
  function json(v: unknown): unknown {
    const value = jsonParam(v);
    return value !== undefined && exceedsDepth(value, limits.maxDepth) ? undefined : value;
  }

  function answer(req: ProtocolRequest, status: number, result: string, extra: readonly Header[] = []): void {
    req.res.send(status, [...JSON_HEADERS, ...req.cors, ...extra], status === 200 && result === 'Success' ? SUCCESS : JSON.stringify({ result }));
  }

  /** Countly's checksum: SHA-1 (`checksum`) or SHA-256 (`checksum256`) hex of the request's query string or body without the checksum parameter, followed by the salt. */
  function checksumMatches(salt: string, params: Params, req: ProtocolRequest, bodyText: string | null): boolean | null {
    const sha1 = idString(params.checksum);
    const sha256 = idString(params.checksum256);
    if (sha1 === null && sha256 === null) return null;
    const [name, given, algorithm] = sha1 !== null ? ['checksum', sha1, 'sha1'] : ['checksum256', sha256!, 'sha256'];
    const strip = (text: string): string => text.replace(`&${name}=${given}`, '').replace(`${name}=${given}`, '');
    // What is signed: the body when there is one (a POST), else the query string. Countly's server accepts either
    // for a POST; that would let parameters outside the signed text through, so a signed POST carries none in its query.
    let signed = req.head.query;
    if (bodyText !== null && bodyText !== '') {
      if (strip(req.head.query).replace(/^&+|&+$/g, '') !== '') return false;
      signed = bodyText;
    }
    // As Countly's server does: the parameter taken out of the text as it was sent (still URL-encoded), the salt appended.
    const digest = Buffer.from(createHash(algorithm).update(strip(signed) + salt).digest('hex'));
    const wanted = Buffer.from(given.toLowerCase());
    return digest.length === wanted.length && timingSafeEqual(digest, wanted);
  }

  /** The app a request writes to, with its checksum checked; throws Refused with Countly's answer. */
  function appFor(appKey: string, params: Params, req: ProtocolRequest, bodyText: string | null): App {
    const app = apps.get(appKey);
    if (app === undefined) throw new Refused(NO_APP, createError('FLOW_ERR_UNAUTHORIZED'), 0);
    if (app.salt !== undefined) {
      const ok = checksumMatches(app.salt, params, req, bodyText);
      if (ok !== true) throw new Refused(ok === null ? NO_CHECKSUM : BAD_CHECKSUM, createError('FLOW_ERR_UNAUTHORIZED'), app.projectId);
    }
    return app;
  }

  /** One Countly request → its events, in the order Countly applies them; parts that cannot be read go to `parts.refused`. */
  function requestEvents(r: Params, app: App, req: ProtocolRequest, parts: Parts): void {
    const deviceId = idString(r.device_id)!;
    const receivedAt = req.head.receivedAt;
    const requestTs = countlyTime(r.timestamp);
    const common: Record<string, unknown> = { deviceId };
    for (const [from, to] of [['sdk_name', 'sdkName'], ['sdk_version', 'sdkVersion'], ['country_code', 'countryCode'], ['city', 'city']] as const) {
      const v = idString(r[from]);
      if (v !== null) common[to] = v;
    }
    // A retried request (same parameters, same timestamp) gets the same event ids, so it is stored once.
    const requestHash = requestTs === null ? null : createHash('sha1').update(canonical(r)).digest('hex');
    let index = 0;
    const refusedBefore = parts.refused.length;
    const base = {
      projectId: app.projectId,
      uid: uidFrom(deviceId),
      receivedAt,
      ip: ipOrNull(r.ip_address) ?? req.client.ip,
      userAgent: req.head.headers.userAgent,
    };
    const add = (key: string, data: Record<string, unknown>, ts: number | null, raw: unknown): void => {
      const id = requestHash === null ? undefined : `cly:${requestHash}:${index}`;
      index++;
      const at = ts ?? requestTs;
      const input: EnvelopeInput = { ...base, key, id, ts: at === null ? undefined : Math.min(at, receivedAt), data: { ...data, ...common } };
      parts.events.push({ input, raw });
    };
    const refuse = (field: string, reason: string, raw: unknown): void => {
      parts.refused.push({ projectId: app.projectId, err: createError('FLOW_ERR_FIELD_INVALID', { field, reason }), raw });
    };

    const oldDeviceId = idString(r.old_device_id);
    if (oldDeviceId !== null) add('in.countly.user.alias', { previousId: oldDeviceId }, null, r);
    if (flag(r.begin_session)) {
      const metrics = r.metrics === undefined ? {} : json(r.metrics);
      if (isObject(metrics)) add('in.countly.session.begin', { ...metrics }, null, r);
      else refuse('metrics', 'must be a JSON object, nested at most gateway.limits.maxDepth deep (begin_session not stored)', r);
    }
    if (r.user_details !== undefined) {
      const details = json(r.user_details);
      if (isObject(details)) add('in.countly.user.details', { ...details }, null, r);
      else refuse('user_details', 'must be a JSON object, nested at most gateway.limits.maxDepth deep', r);
    }
    if (r.events !== undefined) {
      const list = json(r.events);
      if (!Array.isArray(list)) refuse('events', 'must be a JSON array of events, nested at most gateway.limits.maxDepth deep', r);
      else {
        for (const ev of list) {
          const key = isObject(ev) ? idString(ev.key) : null;
          if (key === null) { refuse('events', 'an event needs a "key"', ev); continue; }
          const e = ev as Params;
          const data: Record<string, unknown> = isObject(e.segmentation) ? { ...e.segmentation } : {};
          data.key = key;
          for (const f of ['count', 'sum', 'dur', 'hour', 'dow'] as const) {
            const n = num(e[f]);
            if (n !== null) data[f] = n;
          }
          add(`in.countly.event.${keySegment(key)}`, data, countlyTime(e.timestamp), ev);
        }
      }
    }
    const duration = num(r.session_duration);
    if (flag(r.end_session)) add('in.countly.session.end', duration === null ? {} : { duration }, null, r);
    else if (duration !== null) add('in.countly.session.duration', { duration }, null, r);
    if (index === 0 && parts.refused.length === refusedBefore) {
      parts.refused.push({ projectId: app.projectId, err: createError('FLOW_ERR_INVALID_REQUEST', { reason: 'nothing flowstat stores: no begin_session, session_duration, end_session, events, user_details or old_device_id' }), raw: r });
    }
  }

  /** The parameters of a request: the query string, overridden by a form or JSON body. */
  function paramsOf(req: ProtocolRequest): { params: Params; bodyText: string | null } {
    const params: Params = {};
    for (const [k, v] of new URLSearchParams(req.head.query)) params[k] = v;
    const { body } = req;
    if (body === null) return { params, bodyText: null };
    if ('tooLarge' in body) throw new Refused(`payload of ${body.tooLarge} bytes is over the limit of ${COUNTLY_REQUEST_MAX} bytes`, createError('FLOW_ERR_PAYLOAD_TOO_LARGE', { size: body.tooLarge, limit: COUNTLY_REQUEST_MAX }), 0);
    let text: string;
    try {
      text = utf8.decode(body);
    } catch {
      throw new Refused('body is not valid UTF-8', createError('FLOW_ERR_PARSE', { reason: 'body is not valid UTF-8' }), 0);
    }
    if (text.trimStart().startsWith('{')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new Refused('body is not valid JSON', createError('FLOW_ERR_PARSE', { reason: 'Invalid JSON' }), 0);
      }
      if (!isObject(parsed)) throw new Refused('body must be a JSON object', createError('FLOW_ERR_INVALID_REQUEST', { reason: 'body must be a JSON object' }), 0);
      Object.assign(params, parsed);
    } else {
      for (const [k, v] of new URLSearchParams(text)) params[k] = v;
    }
    return { params, bodyText: text };
  }

  function single(req: ProtocolRequest, params: Params, bodyText: string | null, parts: Parts): number {
    const appKey = idString(params.app_key);
    const deviceId = idString(params.device_id);
    if (appKey === null || deviceId === null) throw new Refused(MISSING, createError('FLOW_ERR_FIELD_INVALID', { field: appKey === null ? 'app_key' : 'device_id', reason: MISSING }), 0);
    const app = appFor(appKey, params, req, bodyText);
    requestEvents(params, app, req, parts);
    return app.projectId;
  }

  function bulk(req: ProtocolRequest, params: Params, bodyText: string | null, parts: Parts): number {
    if (params.requests === undefined) throw new Refused('Missing parameter "requests"', createError('FLOW_ERR_FIELD_INVALID', { field: 'requests', reason: 'required' }), 0);
    const requests = json(params.requests);
    if (!Array.isArray(requests)) throw new Refused('Invalid parameter "requests"', createError('FLOW_ERR_FIELD_INVALID', { field: 'requests', reason: 'must be a JSON array of requests' }), 0);
    // The bulk request's own app (when it names one) is checked once; it covers its requests that name no other app.
    const outerKey = idString(params.app_key);
    const outer = outerKey === null ? null : appFor(outerKey, params, req, bodyText);
    for (const item of requests) {
      if (!isObject(item)) {
        parts.refused.push({ projectId: outer?.projectId ?? 0, err: createError('FLOW_ERR_FIELD_INVALID', { field: 'requests', reason: 'a request must be an object' }), raw: item });
        continue;
      }
      const appKey = idString(item.app_key) ?? outerKey;
      if (appKey === null || idString(item.device_id) === null) {
        parts.refused.push({ projectId: outer?.projectId ?? 0, err: createError('FLOW_ERR_FIELD_INVALID', { field: appKey === null ? 'app_key' : 'device_id', reason: MISSING }), raw: item });
        continue;
      }
      const app = apps.get(appKey);
      if (app === undefined) {
        parts.refused.push({ projectId: outer?.projectId ?? 0, err: createError('FLOW_ERR_UNAUTHORIZED'), raw: { reason: NO_APP, request: item } });
        continue;
      }
      // Another app's salt is not proven by this bulk request's checksum.
      if (app.salt !== undefined && appKey !== outerKey) {
        parts.refused.push({ projectId: app.projectId, err: createError('FLOW_ERR_UNAUTHORIZED'), raw: { reason: `${NO_CHECKSUM} (a request for a salted app inside a bulk request of another app)`, request: item } });
        continue;
      }
      requestEvents({ ...item, app_key: appKey }, app, req, parts);
    }
    return outer?.projectId ?? 0;
  }

  return {
    name: 'countly',
    maxBodyBytes: COUNTLY_REQUEST_MAX,
    matches(head) {
      if (head.path === BULK_PATH) return head.method === 'GET' || head.method === 'POST';
      if (head.path !== SINGLE_PATH) return false;
      if (head.method === 'POST') return true;
      return head.method === 'GET' && (HAS_APP_KEY.test(head.query) || (HAS_DEVICE_ID.test(head.query) && !HAS_E.test(head.query)));
    },
    handle(req) {
      const parts: Parts = { events: [], refused: [] };
      let params: Params = {};
      let projectId = 0;
      let refusal: Refused | null = null;
      try {
        const read = paramsOf(req);
        params = read.params;
        if (exceedsDepth(params, limits.maxDepth)) throw new Refused('payload nesting is too deep', createError('FLOW_ERR_TOO_DEEP', { limit: limits.maxDepth }), 0);
        const isBulk = req.head.path === BULK_PATH;
        projectId = isBulk ? bulk(req, params, read.bodyText, parts) : single(req, params, read.bodyText, parts);
        const max = isBulk ? COUNTLY_BULK_MAX_EVENTS : limits.maxBatch;
        if (parts.events.length > max) throw new Refused(`a request of ${parts.events.length} events is over the limit of ${max}`, createError('FLOW_ERR_BATCH_TOO_LARGE', { size: parts.events.length, limit: max }), projectId);
      } catch (err) {
        if (!(err instanceof Refused)) throw err;
        refusal = err;
      }
      // Admitted before anything is written, the dead letters of a refused request included.
      const refused = submitter.admit(req, refusal === null ? parts.events.length : 1);
      if (refused !== null) {
        const retry: Header[] = refused.params.retryAfter === undefined ? [] : [['retry-after', String(refused.params.retryAfter)]];
        return answer(req, refused.status, refused.message, retry);
      }
      if (refusal !== null) {
        submitter.deadLetter('countly', refusal.projectId, refusal.error, { result: refusal.result, path: req.head.path, params });
        return answer(req, refusal.error.code === 'FLOW_ERR_PAYLOAD_TOO_LARGE' ? 413 : 400, refusal.result);
      }
      for (const { projectId: project, err, raw } of parts.refused) submitter.deadLetter('countly', project, err, raw);
      submitter.submit('countly', parts.events, (outcomes) => {
        // An event the engine could not take now (overloaded, shutting down) makes the SDK keep the request and retry it.
        const retryable = outcomes.find((o): o is Extract<Outcome, { ok: false }> => !o.ok && o.error.retryable);
        if (retryable !== undefined) {
          return answer(req, retryable.error.status, retryable.error.message, [['retry-after', String(retryable.error.params.retryAfter ?? 1)]]);
        }
        answer(req, 200, 'Success');
      });
    },
  };
}

/** A parameter that holds JSON: as text in a query string or form, or already parsed in a JSON body; undefined when unreadable. */
function jsonParam(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return undefined;
  }
}

function flag(v: unknown): boolean {
  return v === 1 || v === '1' || v === true || v === 'true';
}


/** Countly's timestamps: ms, or seconds when they have ten digits or fewer (as Countly's server reads them). */
function countlyTime(v: unknown): number | null {
  const n = num(v);
  if (n === null || n <= 0) return null;
  return n < 1e11 ? n * 1000 : n;
}

/**
 * Parameters an SDK sets when it sends (not when it records) a request: the
 * checksums, and the web SDK's `rr` (requests still queued). A retry may
 * carry other values, so they are not part of what identifies the request.
 */
const SEND_TIME_PARAMS: ReadonlySet<string> = new Set(['checksum', 'checksum256', 'rr']);

/** The request's parameters in a stable order, without those set at send time: what makes two sends of it the same request. */
function canonical(r: Params): string {
  const keys = Object.keys(r).filter((k) => !SEND_TIME_PARAMS.has(k)).sort();
  return JSON.stringify(keys.map((k) => [k, r[k]]));
}
