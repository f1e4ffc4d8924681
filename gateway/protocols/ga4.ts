import { createHash, timingSafeEqual } from 'node:crypto';
import { createError, type EnvelopeInput, type FlowError } from '../../engine/index.js';
import { exceedsDepth } from '../limits/depth.js';
import type { BodyTooLarge, Header } from '../transport/index.js';
import { idString, isObject, keySegment, parseJson, uidFrom } from './common.js';
import type { Outcome, ProtocolEvent } from './submit.js';
import type { ProtocolAdapter, ProtocolDeps, ProtocolRequest } from './types.js';

/**
 * GA4's Measurement Protocol: POST /mp/collect?measurement_id=…&api_secret=…
 * (web streams; app streams send firebase_app_id= and app_instance_id), and
 * its validation server, POST /debug/mp/collect. docs/protocols.md has the
 * full mapping.
 *
 * GA4's behaviour is kept: /mp/collect answers 204 to every request — an
 * unknown stream or secret, malformed JSON, an event GA4 would not log — and
 * GA4 drops what it cannot use; we keep all of it in dead_letters, and store
 * the valid events of a request. /debug/mp/collect stores nothing and answers
 * 200 with the validation messages (the same checks that decide what
 * /mp/collect refuses), and like Google's it does not check the api_secret.
 * Unlike GA4, a 204 means the events are durable (per the durability mode);
 * while storage is backed up the answer is 503 + Retry-After (429 when rate
 * limited, on both endpoints), so a sender that retries does not lose events.
 * GA4 events carry no id: an event with a timestamp (its own timestamp_micros
 * or the request's) gets one derived from the stream, the device, the
 * timestamp, its place in the request and its content, so a retried request
 * is stored once; without a timestamp a retry cannot be told from a second
 * send and is stored again.
 */

const COLLECT = '/mp/collect';
const DEBUG = '/debug/mp/collect';
/** GA4: "the total size of the post body must be smaller than 130 kB". */
export const GA4_REQUEST_MAX = 130 * 1024;
const JSON_HEADERS: readonly Header[] = [['content-type', 'application/json']];
const TEXT_HEADERS: readonly Header[] = [['content-type', 'text/plain; charset=utf-8']];

// GA4's documented limits (Measurement Protocol reference, "Limitations" and "Reserved names").
const MAX_EVENTS = 25;
const MAX_PARAMS = 25;
const MAX_NAME = 40;
const MAX_PARAM_VALUE = 100;
const PARAM_VALUE_MAX: Readonly<Record<string, number>> = { page_location: 1000, page_referrer: 420, page_title: 300 };
const MAX_USER_PROPERTIES = 25;
const MAX_USER_PROPERTY_NAME = 24;
const MAX_USER_PROPERTY_VALUE = 36;
const MAX_USER_ID = 256;
/** GA4 takes events up to 72 hours in the past. */
const MAX_AGE_MS = 72 * 3600 * 1000;
const NAME_RE = /^[A-Za-z][A-Za-z0-9_]*$/;
const RESERVED_PREFIXES = ['google_', 'ga_', 'firebase_'] as const;
const RESERVED_EVENTS: ReadonlySet<string> = new Set([
  'ad_activeview', 'ad_click', 'ad_exposure', 'ad_query', 'ad_reward', 'adunit_exposure', 'app_background',
  'app_clear_data', 'app_exception', 'app_remove', 'app_store_refund', 'app_store_subscription_cancel',
  'app_store_subscription_convert', 'app_store_subscription_renew', 'app_update', 'app_upgrade',
  'dynamic_link_app_open', 'dynamic_link_app_update', 'dynamic_link_first_open', 'error', 'first_open',
  'first_visit', 'in_app_purchase', 'notification_dismiss', 'notification_foreground', 'notification_open',
  'notification_receive', 'os_update', 'session_start', 'session_start_with_rollout', 'user_engagement',
]);
const RESERVED_USER_PROPERTIES: ReadonlySet<string> = new Set([
  'first_open_time', 'first_visit_time', 'last_deep_link_referrer', 'user_id', 'first_open_after_install',
]);
const NO_RESERVED: ReadonlySet<string> = new Set();

export type ValidationCode =
  | 'VALUE_INVALID' | 'VALUE_REQUIRED' | 'NAME_INVALID' | 'NAME_RESERVED' | 'VALUE_OUT_OF_BOUNDS' | 'EXCEEDED_MAX_ENTITIES';

/** One entry of the validation server's `validationMessages`, as Google's has it. */
export interface ValidationMessage {
  readonly fieldPath: string;
  readonly description: string;
  readonly validationCode: ValidationCode;
}

/** Which kind of stream a request is for: decides the id field the body must carry. */
interface StreamKind {
  /** The query parameter naming the stream: `measurement_id` (web) or `firebase_app_id` (app). */
  readonly param: 'measurement_id' | 'firebase_app_id';
  /** The body field with the device's id: `client_id` (web) or `app_instance_id` (app). */
  readonly idField: 'client_id' | 'app_instance_id';
}
const WEB: StreamKind = { param: 'measurement_id', idField: 'client_id' };
const APP: StreamKind = { param: 'firebase_app_id', idField: 'app_instance_id' };
/** A web stream unless the query names only a firebase_app_id. */
const kindOf = (query: URLSearchParams): StreamKind => (query.has('measurement_id') || !query.has('firebase_app_id') ? WEB : APP);

/** A request's fields every one of its events shares, read once. */
interface Common {
  readonly clientId: string;
  readonly userId: string | null;
  /** ms; null when the request has no timestamp_micros (the receive time is used). */
  readonly ts: number | null;
  /** The request's timestamp_micros as it was sent (part of the derived event ids). */
  readonly tsRaw: unknown;
  readonly userProperties: Record<string, unknown> | null;
  readonly nonPersonalizedAds: boolean | null;
}

/** The configured stream a request authorized for. */
interface Stream {
  readonly projectId: number;
  readonly kind: StreamKind;
  /** Its measurement_id or firebase_app_id. */
  readonly id: string;
}

/** What validate() found: the problems of the request as a whole (then none of its events is stored), and each event's. */
interface Checked {
  readonly request: ValidationMessage[];
  /** Each event with its problems and its own timestamp_micros in ms (null when it has none). */
  readonly events: readonly { readonly event: unknown; readonly messages: ValidationMessage[]; readonly ts: number | null }[];
  /** Set when `request` is empty. */
  readonly common: Common | null;
}

type Read = { readonly body: Record<string, unknown> } | { readonly error: FlowError; readonly payload: unknown };

export function createGa4Adapter({ ctx, submitter }: ProtocolDeps): ProtocolAdapter {
  const streams = new Map(Object.entries(ctx.gateway.protocols.ga4.streams).map(
    ([id, s]) => [id, { secret: Buffer.from(s.apiSecret, 'utf8'), projectId: s.projectId }] as const,
  ));
  const limits = ctx.gateway.limits;

  function readBody(body: Buffer | null | BodyTooLarge): Read {
    if (body === null) return { error: createError('FLOW_ERR_INVALID_REQUEST', { reason: 'empty body' }), payload: '' };
    if ('tooLarge' in body) return { error: createError('FLOW_ERR_PAYLOAD_TOO_LARGE', { size: body.tooLarge, limit: GA4_REQUEST_MAX }), payload: { size: body.tooLarge } };
    // GA4 reads the body as JSON whatever the content type says (senders often use text/plain to avoid a CORS preflight).
    const parsed = parseJson(body);
    if (!isObject(parsed)) {
      const reason = parsed === undefined ? 'Invalid JSON' : 'the body must be a JSON object';
      return { error: createError('FLOW_ERR_PARSE', { reason }), payload: body.toString('utf8') };
    }
    if (exceedsDepth(parsed, limits.maxDepth)) return { error: createError('FLOW_ERR_TOO_DEEP', { limit: limits.maxDepth }), payload: body.toString('utf8') };
    return { body: parsed };
  }

  /** The stream the query names, when its api_secret matches; else why not, for the dead letter (never the secret itself). */
  function authorize(query: URLSearchParams): Stream | { refused: Record<string, unknown> } {
    const kind = kindOf(query);
    const streamId = query.get(kind.param) ?? '';
    const secret = query.get('api_secret') ?? '';
    const stream = streamId === '' ? undefined : streams.get(streamId);
    let reason: string | null = null;
    if (streamId === '') reason = 'no measurement_id or firebase_app_id';
    else if (stream === undefined) reason = `unknown ${kind.param}`;
    else if (secret === '') reason = 'no api_secret';
    else if (!secretMatches(secret, stream.secret)) reason = 'api_secret does not match';
    if (reason !== null || stream === undefined) return { refused: { [kind.param]: streamId === '' ? null : streamId, reason } };
    return { projectId: stream.projectId, kind, id: streamId };
  }

  /** One valid GA4 event (at `index` in its request, with its own timestamp or null) → an envelope input. */
  function toInput(event: Record<string, unknown>, index: number, eventTs: number | null, common: Common, stream: Stream, req: ProtocolRequest): EnvelopeInput {
    const name = event.name as string;
    const ts = eventTs ?? common.ts;
    const params = isObject(event.params) ? event.params : {};
    // Named as in GA4's BigQuery export: the original event name (the key is lower-cased), the device id, the stream.
    const data: Record<string, unknown> = { ...params, event_name: name, [stream.kind.idField]: common.clientId, [stream.kind.param]: stream.id };
    if (common.userProperties !== null) data.user_properties = common.userProperties;
    if (common.nonPersonalizedAds !== null) data.non_personalized_ads = common.nonPersonalizedAds;
    return {
      key: `in.ga4.event.${keySegment(name)}`,
      projectId: stream.projectId,
      uid: uidFrom(common.clientId),
      receivedAt: req.head.receivedAt,
      ip: req.client.ip,
      userAgent: req.head.headers.userAgent,
      id: ts === null ? undefined : derivedId(stream, common, index, event),
      ts: ts === null ? undefined : Math.min(ts, req.head.receivedAt),
      userId: common.userId ?? undefined,
      pageUrl: typeof params.page_location === 'string' ? params.page_location : undefined,
      pageReferrer: typeof params.page_referrer === 'string' ? params.page_referrer : undefined,
      pageTitle: typeof params.page_title === 'string' ? params.page_title : undefined,
      data,
    };
  }

  function noContent(req: ProtocolRequest): void {
    req.res.send(204, req.cors, '');
  }

  function retryLater(req: ProtocolRequest, err: FlowError): void {
    const retry: Header[] = [['retry-after', String(err.params.retryAfter ?? 1)]];
    req.res.send(err.status, [...TEXT_HEADERS, ...req.cors, ...retry], err.message);
  }

  function debug(req: ProtocolRequest, query: URLSearchParams, read: Read): void {
    // It stores nothing, so only the rate limit applies (one token per request).
    const refused = submitter.throttle(req, 1);
    if (refused !== null) return retryLater(req, refused);
    let messages: ValidationMessage[];
    if ('error' in read) {
      messages = [{
        fieldPath: '',
        description: read.error.code === 'FLOW_ERR_PARSE' ? `Unable to parse Measurement Protocol JSON payload: ${read.error.message}` : read.error.message,
        validationCode: read.error.code === 'FLOW_ERR_PAYLOAD_TOO_LARGE' ? 'VALUE_OUT_OF_BOUNDS' : read.error.code === 'FLOW_ERR_INVALID_REQUEST' ? 'VALUE_REQUIRED' : 'VALUE_INVALID',
      }];
    } else {
      // Like Google's validation server: the stream id and api_secret are not checked, only the payload.
      const checked = validate(read.body, kindOf(query), req.head.receivedAt);
      messages = [...checked.request, ...checked.events.flatMap((e) => e.messages)];
    }
    req.res.send(200, [...JSON_HEADERS, ...req.cors], JSON.stringify({ validationMessages: messages }));
  }

  function collect(req: ProtocolRequest, query: URLSearchParams, read: Read): void {
    // Admitted before anything is written, the dead letters of a refused request included: one token per event (one for a request without an events list).
    const listed = 'body' in read && Array.isArray(read.body.events) ? read.body.events.length : 1;
    const refused = submitter.admit(req, listed);
    if (refused !== null) return retryLater(req, refused);
    const stream = authorize(query);
    if ('refused' in stream) {
      // GA4 answers 204 to an unknown stream or secret (and drops the events); we keep them.
      submitter.deadLetter('ga4', 0, createError('FLOW_ERR_UNAUTHORIZED'), { ...stream.refused, body: 'body' in read ? read.body : read.payload });
      return noContent(req);
    }
    const { projectId } = stream;
    if ('error' in read) {
      submitter.deadLetter('ga4', projectId, read.error, read.payload);
      return noContent(req);
    }
    const { body } = read;
    const checked = validate(body, stream.kind, req.head.receivedAt);
    if (checked.common === null) {
      const tooMany = checked.request.find((m) => m.validationCode === 'EXCEEDED_MAX_ENTITIES' && m.fieldPath === 'events');
      const err = tooMany !== undefined
        ? createError('FLOW_ERR_BATCH_TOO_LARGE', { size: checked.events.length, limit: MAX_EVENTS })
        : createError('FLOW_ERR_FIELD_INVALID', { field: checked.request[0]!.fieldPath, reason: describe(checked.request) });
      submitter.deadLetter('ga4', projectId, err, body);
      return noContent(req);
    }
    const { common } = checked;
    const { events: _events, ...shared } = body;
    const events: ProtocolEvent[] = [];
    checked.events.forEach(({ event, messages, ts }, i) => {
      // What GA4 would not log is kept as a request of its own (the shared fields and this one event), ready to be sent again.
      const raw = { ...shared, events: [event] };
      if (messages.length > 0) {
        submitter.deadLetter('ga4', projectId, createError('FLOW_ERR_FIELD_INVALID', { field: `events[${i}]`, reason: describe(messages) }), raw);
        return;
      }
      events.push({ input: toInput(event as Record<string, unknown>, i, ts, common, stream, req), raw });
    });
    submitter.submit('ga4', events, (outcomes) => {
      // An event the engine could not take now (overloaded, shutting down): a sender that retries sends the request again.
      const retryable = outcomes.find((o): o is Extract<Outcome, { ok: false }> => !o.ok && o.error.retryable);
      if (retryable !== undefined) return retryLater(req, retryable.error);
      noContent(req);
    });
  }

  return {
    name: 'ga4',
    maxBodyBytes: GA4_REQUEST_MAX,
    matches: (head) => head.method === 'POST' && (head.path === COLLECT || head.path === DEBUG),
    handle(req) {
      const query = new URLSearchParams(req.head.query);
      const read = readBody(req.body);
      if (req.head.path === DEBUG) debug(req, query, read);
      else collect(req, query, read);
    },
  };
}

function secretMatches(given: string, expected: Buffer): boolean {
  const g = Buffer.from(given, 'utf8');
  return g.length === expected.length && timingSafeEqual(g, expected);
}

/**
 * The id of a GA4 event that has a timestamp: a hash of the stream, the
 * device, the request's timestamp_micros, the event's index and the event as
 * sent (its own timestamp_micros included) — the same for every send of
 * that request, different for any other event.
 */
function derivedId(stream: Stream, common: Common, index: number, event: Record<string, unknown>): string {
  const text = JSON.stringify([stream.id, common.clientId, common.tsRaw ?? null, index, event]);
  return `ga4:${createHash('sha256').update(text).digest('hex').slice(0, 40)}`;
}

/** A timestamp_micros (an int64 in JSON: a number, or a string of digits from senders that keep int64s exact) → ms; 'invalid' when it is neither. */
function microsToMs(raw: unknown): number | 'invalid' {
  const micros = typeof raw === 'string' && /^\d{1,20}$/.test(raw) ? Number(raw) : raw;
  if (typeof micros !== 'number' || !Number.isFinite(micros) || micros < 0) return 'invalid';
  return Math.floor(micros / 1000);
}

function describe(messages: readonly ValidationMessage[]): string {
  return messages.map((m) => `${m.description} (${m.validationCode})`).join(' ');
}

/**
 * GA4's documented validations, as the validation server reports them:
 * the request's (device id, user id, timestamp, user properties, the events
 * list) and each event's (name, params). Descriptions follow the style of
 * Google's ("Event at index: [0] has invalid name [...]").
 */
function validate(body: Record<string, unknown>, kind: StreamKind, receivedAt: number): Checked {
  const request: ValidationMessage[] = [];
  const problem = (fieldPath: string, validationCode: ValidationCode, description: string): void => {
    request.push({ fieldPath, validationCode, description });
  };

  const rawId = body[kind.idField];
  const clientId = idString(rawId);
  if (clientId === null) {
    if (rawId === undefined || rawId === null || rawId === '') problem(kind.idField, 'VALUE_REQUIRED', `Measurement requires a ${kind.idField}.`);
    else problem(kind.idField, 'VALUE_INVALID', `${kind.idField} must be a string.`);
  }

  let userId: string | null = null;
  if (body.user_id !== undefined && body.user_id !== null && body.user_id !== '') {
    userId = idString(body.user_id);
    if (userId === null) problem('user_id', 'VALUE_INVALID', 'user_id must be a string.');
    else if (userId.length > MAX_USER_ID) problem('user_id', 'VALUE_OUT_OF_BOUNDS', `user_id is longer than ${MAX_USER_ID} characters.`);
  }

  let ts: number | null = null;
  const rawTs = body.timestamp_micros;
  if (rawTs !== undefined && rawTs !== null) {
    const ms = microsToMs(rawTs);
    if (ms === 'invalid') {
      problem('timestamp_micros', 'VALUE_INVALID', 'timestamp_micros must be a number of microseconds since the epoch.');
    } else {
      ts = ms;
      if (ts < receivedAt - MAX_AGE_MS) problem('timestamp_micros', 'VALUE_OUT_OF_BOUNDS', `timestamp_micros [${String(rawTs)}] is more than 72 hours in the past.`);
    }
  }

  let userProperties: Record<string, unknown> | null = null;
  if (body.user_properties !== undefined && body.user_properties !== null) {
    if (!isObject(body.user_properties)) {
      problem('user_properties', 'VALUE_INVALID', 'user_properties must be an object of name: {value}.');
    } else {
      const entries = Object.entries(body.user_properties);
      if (entries.length > MAX_USER_PROPERTIES) {
        problem('user_properties', 'EXCEEDED_MAX_ENTITIES', `${entries.length} user properties, over the limit of ${MAX_USER_PROPERTIES}.`);
      }
      userProperties = {};
      for (const [name, prop] of entries) {
        const bad = nameProblem(name, MAX_USER_PROPERTY_NAME, RESERVED_USER_PROPERTIES);
        if (bad !== null) problem('user_properties', bad.code, `User property [${name}] ${bad.why}`);
        if (!isObject(prop)) {
          problem('user_properties', 'VALUE_INVALID', `User property [${name}] must be an object with a value.`);
          continue;
        }
        if (typeof prop.value === 'string' && prop.value.length > MAX_USER_PROPERTY_VALUE) {
          problem('user_properties', 'VALUE_OUT_OF_BOUNDS', `User property [${name}] has a value longer than ${MAX_USER_PROPERTY_VALUE} characters.`);
        }
        userProperties[name] = prop.value ?? null;
      }
    }
  }

  let list: unknown[] = [];
  if (body.events === undefined || body.events === null || (Array.isArray(body.events) && body.events.length === 0)) {
    problem('events', 'VALUE_REQUIRED', 'Measurement requires at least one event.');
  } else if (!Array.isArray(body.events)) {
    problem('events', 'VALUE_INVALID', 'events must be an array of events.');
  } else {
    list = body.events;
    if (list.length > MAX_EVENTS) problem('events', 'EXCEEDED_MAX_ENTITIES', `${list.length} events, over the limit of ${MAX_EVENTS} per request.`);
  }
  const events = list.map((event, i) => {
    const messages = eventMessages(event, i);
    // An event's own timestamp_micros overrides the request's.
    const own = isObject(event) ? event.timestamp_micros : undefined;
    let ts: number | null = null;
    if (own !== undefined && own !== null) {
      const ms = microsToMs(own);
      if (ms === 'invalid') messages.push({ fieldPath: 'events.timestamp_micros', validationCode: 'VALUE_INVALID', description: `Event at index: [${i}] has a timestamp_micros that is not a number of microseconds since the epoch.` });
      else if (ms < receivedAt - MAX_AGE_MS) messages.push({ fieldPath: 'events.timestamp_micros', validationCode: 'VALUE_OUT_OF_BOUNDS', description: `Event at index: [${i}] has a timestamp_micros [${String(own)}] more than 72 hours in the past.` });
      else ts = ms;
    }
    return { event, messages, ts };
  });
  return {
    request,
    events,
    common: request.length === 0
      ? { clientId: clientId!, userId, ts, tsRaw: rawTs, userProperties, nonPersonalizedAds: typeof body.non_personalized_ads === 'boolean' ? body.non_personalized_ads : null }
      : null,
  };
}

function eventMessages(event: unknown, i: number): ValidationMessage[] {
  const out: ValidationMessage[] = [];
  const at = `Event at index: [${i}]`;
  if (!isObject(event)) return [{ fieldPath: 'events', validationCode: 'VALUE_INVALID', description: `${at} is not an object.` }];
  const { name } = event;
  if (name === undefined || name === null || name === '') {
    out.push({ fieldPath: 'events', validationCode: 'VALUE_REQUIRED', description: `${at} has no name.` });
  } else if (typeof name !== 'string') {
    out.push({ fieldPath: 'events', validationCode: 'VALUE_INVALID', description: `${at} has a name that is not a string.` });
  } else {
    const bad = nameProblem(name, MAX_NAME, RESERVED_EVENTS);
    if (bad !== null) out.push({ fieldPath: 'events', validationCode: bad.code, description: `${at} has ${bad.code === 'NAME_RESERVED' ? 'reserved' : 'invalid'} name [${name}]. ${bad.why}` });
  }
  if (event.params === undefined || event.params === null) return out;
  if (!isObject(event.params)) {
    out.push({ fieldPath: 'events.params', validationCode: 'VALUE_INVALID', description: `${at} has params that are not an object.` });
    return out;
  }
  const params = Object.entries(event.params);
  if (params.length > MAX_PARAMS) {
    out.push({ fieldPath: 'events.params', validationCode: 'EXCEEDED_MAX_ENTITIES', description: `${at} has ${params.length} params, over the limit of ${MAX_PARAMS}.` });
  }
  for (const [param, value] of params) {
    const bad = nameProblem(param, MAX_NAME, NO_RESERVED);
    if (bad !== null) out.push({ fieldPath: 'events.params', validationCode: bad.code, description: `${at} has ${bad.code === 'NAME_RESERVED' ? 'reserved' : 'invalid'} param [${param}]. ${bad.why}` });
    const max = PARAM_VALUE_MAX[param] ?? MAX_PARAM_VALUE;
    if (typeof value === 'string' && value.length > max) {
      out.push({ fieldPath: 'events.params', validationCode: 'VALUE_OUT_OF_BOUNDS', description: `${at} has param [${param}] with a value longer than ${max} characters.` });
    }
  }
  return out;
}

/** GA4's rules for event, param and user property names: null, or what is wrong. */
function nameProblem(name: string, max: number, reserved: ReadonlySet<string>): { code: ValidationCode; why: string } | null {
  if (name.length > max) return { code: 'NAME_INVALID', why: `Names must be ${max} characters or fewer.` };
  if (!/^[A-Za-z]/.test(name)) return { code: 'NAME_INVALID', why: 'Names must start with an alphabetic character.' };
  if (!NAME_RE.test(name)) return { code: 'NAME_INVALID', why: 'Names may only contain alphanumeric characters and underscores.' };
  if (reserved.has(name)) return { code: 'NAME_RESERVED', why: 'The name is reserved.' };
  const prefix = RESERVED_PREFIXES.find((p) => name.startsWith(p));
  if (prefix !== undefined) return { code: 'NAME_RESERVED', why: `Names must not start with the reserved prefix [${prefix}].` };
  return null;
}
