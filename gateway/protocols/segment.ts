import { createError, toFlowError, type EnvelopeInput, type FlowError } from '../../engine/index.js';
import { exceedsDepth } from '../limits/depth.js';
import type { Header } from '../transport/index.js';
import { idString, ipOrNull, isObject, keySegment, parseJson, timeMs, uidFrom } from './common.js';
import type { Outcome, ProtocolEvent } from './submit.js';
import type { ProtocolAdapter, ProtocolDeps, ProtocolRequest } from './types.js';

/**
 * Segment's HTTP Tracking API (what @segment/analytics-node and the other
 * Segment libraries send): POST /v1/track, /identify, /page, /screen,
 * /group, /alias and /batch (also /v1/import, its older name). docs/protocols.md
 * has the full mapping.
 *
 * Segment's behaviour is kept, so its libraries act as they would against
 * Segment: every request gets 200 `{"success":true}` except malformed JSON
 * and size limits (32 KB per event, 500 KB per request), which get 400. An
 * unknown write key, an event without userId or anonymousId, a track without
 * `event`: Segment answers 200 and drops them; we answer 200 and keep them
 * in dead_letters. Unlike Segment, a reply means the events are durable
 * (per the durability mode); while storage is backed up the answer is 503
 * and the libraries retry (duplicates are dropped by messageId).
 */

const CALLS = new Set(['track', 'identify', 'page', 'screen', 'group', 'alias']);
const PATHS = new Set([...[...CALLS].map((c) => `/v1/${c}`), '/v1/batch', '/v1/import']);
export const SEGMENT_EVENT_MAX = 32 * 1024;
export const SEGMENT_REQUEST_MAX = 500 * 1024;
const JSON_HEADERS: readonly Header[] = [['content-type', 'application/json']];
const SUCCESS = '{"success":true}';

/** Thrown for what Segment answers with 400. */
class BadRequest extends Error {}

export function createSegmentAdapter({ ctx, submitter }: ProtocolDeps): ProtocolAdapter {
  const writeKeys = new Map(Object.entries(ctx.gateway.protocols.segment.writeKeys));
  const limits = ctx.gateway.limits;

  function writeKeyOf(req: ProtocolRequest, body: Record<string, unknown>): string | null {
    const auth = req.head.headers.authorization;
    if (auth.startsWith('Basic ')) {
      const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
      const user = decoded.split(':', 1)[0] ?? '';
      if (user !== '') return user;
    }
    return typeof body.writeKey === 'string' && body.writeKey !== '' ? body.writeKey : null;
  }

  /** One Segment call → an envelope input; throws FLOW_ERR_FIELD_INVALID naming what is missing. */
  function toInput(call: Record<string, unknown>, type: string, projectId: number, req: ProtocolRequest): EnvelopeInput {
    if (!CALLS.has(type)) throw createError('FLOW_ERR_FIELD_INVALID', { field: 'type', reason: `must be one of ${[...CALLS].join(', ')}` });
    const anonymousId = idString(call.anonymousId);
    const userId = idString(call.userId);
    if (anonymousId === null && userId === null) throw createError('FLOW_ERR_FIELD_INVALID', { field: 'anonymousId', reason: 'userId or anonymousId is required' });
    const context = isObject(call.context) ? call.context : {};
    const page = isObject(context.page) ? context.page : {};
    const properties = isObject(call.properties) ? call.properties : {};
    const traits = isObject(call.traits) ? call.traits : {};
    const data: Record<string, unknown> = {};
    let key: string;
    switch (type) {
      case 'track': {
        const event = idString(call.event);
        if (event === null) throw createError('FLOW_ERR_FIELD_INVALID', { field: 'event', reason: 'a track call needs an event name' });
        key = `in.segment.track.${keySegment(event)}`;
        Object.assign(data, properties, { event });
        break;
      }
      case 'page':
      case 'screen':
        key = `in.segment.${type}.view`;
        Object.assign(data, properties);
        if (typeof call.name === 'string') data.name = call.name;
        if (typeof call.category === 'string') data.category = call.category;
        break;
      case 'identify':
        key = 'in.segment.user.identify';
        Object.assign(data, traits);
        break;
      case 'group':
        key = 'in.segment.user.group';
        Object.assign(data, traits, { groupId: idString(call.groupId) ?? '' });
        break;
      default: // alias
        key = 'in.segment.user.alias';
        data.previousId = idString(call.previousId) ?? '';
        break;
    }
    // Kept as they came, for queries; what maps onto columns is taken out below.
    if (anonymousId !== null) data.anonymousId = anonymousId;
    const { ip: _ip, userAgent: _ua, page: _page, ...rest } = context;
    if (Object.keys(rest).length > 0) data.context = rest;
    // Segment's own clock-skew correction: the call's time by the client's clock, moved by how far that clock was off when it sent.
    const sentAt = timeMs(call.sentAt);
    const original = timeMs(call.originalTimestamp);
    const ts = timeMs(call.timestamp) ?? (original !== null && sentAt !== null ? req.head.receivedAt - (sentAt - original) : original);
    return {
      key,
      projectId,
      uid: uidFrom(anonymousId ?? `user:${userId!}`),
      receivedAt: req.head.receivedAt,
      ip: ipOrNull(context.ip) ?? req.client.ip,
      userAgent: typeof context.userAgent === 'string' ? context.userAgent : req.head.headers.userAgent,
      id: idString(call.messageId) ?? undefined,
      ts: ts === null ? undefined : Math.min(ts, req.head.receivedAt),
      userId: userId ?? undefined,
      pageUrl: typeof properties.url === 'string' ? properties.url : page.url,
      pageReferrer: typeof properties.referrer === 'string' ? properties.referrer : page.referrer,
      pageTitle: typeof properties.title === 'string' ? properties.title : page.title,
      data,
    };
  }

  function answer(req: ProtocolRequest, status: number, body: string, extra: readonly Header[] = []): void {
    req.res.send(status, [...JSON_HEADERS, ...req.cors, ...extra], body);
  }

  /** The calls of a request, or why Segment would answer it 400 (and what dead_letters keeps of it). */
  function callsOf(req: ProtocolRequest): { calls: Call[]; parsed: Record<string, unknown> } | { err: FlowError; payload: unknown } {
    const { body } = req;
    if (body === null || 'tooLarge' in body) {
      const size = body === null ? 0 : body.tooLarge;
      return { err: createError(size > 0 ? 'FLOW_ERR_PAYLOAD_TOO_LARGE' : 'FLOW_ERR_INVALID_REQUEST', size > 0 ? { size, limit: SEGMENT_REQUEST_MAX } : { reason: 'empty body' }), payload: { path: req.head.path, size } };
    }
    const parsed = parseJson(body);
    if (!isObject(parsed)) return { err: createError('FLOW_ERR_PARSE', { reason: 'Invalid JSON' }), payload: body.toString('utf8') };
    if (exceedsDepth(parsed, limits.maxDepth)) return { err: createError('FLOW_ERR_TOO_DEEP', { limit: limits.maxDepth }), payload: body.toString('utf8') };
    const batchCall = req.head.path === '/v1/batch' || req.head.path === '/v1/import';
    try {
      const calls = batchCall ? batchItems(parsed) : [{ call: parsed, type: req.head.path.slice(4) }];
      for (const { call } of calls) {
        const size = Buffer.byteLength(JSON.stringify(call));
        if (size > SEGMENT_EVENT_MAX) throw new BadRequest(`an event of ${size} bytes is over Segment's ${SEGMENT_EVENT_MAX}-byte limit`);
      }
      if (calls.length > limits.maxBatch) throw new BadRequest(`a batch of ${calls.length} events is over the limit of ${limits.maxBatch}`);
      return { calls, parsed };
    } catch (err) {
      if (!(err instanceof BadRequest)) throw err;
      return { err: createError('FLOW_ERR_INVALID_REQUEST', { reason: err.message }), payload: parsed };
    }
  }

  return {
    name: 'segment',
    maxBodyBytes: SEGMENT_REQUEST_MAX,
    matches: (head) => head.method === 'POST' && PATHS.has(head.path),
    handle(req) {
      const read = callsOf(req);
      // Admitted before anything is written, the dead letters of a bad request included.
      const refused = submitter.admit(req, 'calls' in read ? read.calls.length : 1);
      if (refused !== null) {
        const retry: Header[] = refused.params.retryAfter === undefined ? [] : [['retry-after', String(refused.params.retryAfter)]];
        return answer(req, refused.status, JSON.stringify({ success: false, message: refused.message }), retry);
      }
      if ('err' in read) {
        submitter.deadLetter('segment', 0, read.err, read.payload);
        return answer(req, 400, JSON.stringify({ success: false, message: read.err.message }));
      }
      const { calls, parsed } = read;
      const writeKey = writeKeyOf(req, parsed);
      const projectId = writeKey === null ? undefined : writeKeys.get(writeKey);
      if (projectId === undefined) {
        // Segment answers 200 to an unknown write key (and drops the events); we keep them.
        submitter.deadLetter('segment', 0, createError('FLOW_ERR_UNAUTHORIZED'), { writeKey: writeKey ?? null, reason: writeKey === null ? 'no write key' : 'unknown write key', body: parsed });
        return answer(req, 200, SUCCESS);
      }
      const events: ProtocolEvent[] = [];
      for (const { call, type } of calls) {
        try {
          events.push({ input: toInput(call, type, projectId, req), raw: call });
        } catch (err) {
          // Segment answers 200 and drops such a call; we keep it.
          submitter.deadLetter('segment', projectId, toFlowError(err, 'FLOW_ERR_FIELD_INVALID'), call);
        }
      }
      submitter.submit('segment', events, (outcomes) => {
        // An event the engine could not take now (overloaded, shutting down) makes the library retry the request.
        const retryable = outcomes.find((o): o is Extract<Outcome, { ok: false }> => !o.ok && o.error.retryable);
        if (retryable !== undefined) {
          const retry: Header[] = [['retry-after', String(retryable.error.params.retryAfter ?? 1)]];
          return answer(req, retryable.error.status, JSON.stringify({ success: false, message: retryable.error.message }), retry);
        }
        answer(req, 200, SUCCESS);
      });
    },
  };
}

/** One Segment call and its type (track, identify, …). */
interface Call { readonly call: Record<string, unknown>; readonly type: string }

/** `{batch: [...], context?, integrations?}` → the calls, the batch-level context and integrations merged under each call's own. */
function batchItems(body: Record<string, unknown>): Call[] {
  if (!Array.isArray(body.batch)) throw new BadRequest('"batch" must be an array of calls');
  const context = isObject(body.context) ? body.context : null;
  const integrations = isObject(body.integrations) ? body.integrations : null;
  return body.batch.map((item: unknown, i) => {
    if (!isObject(item)) throw new BadRequest(`batch[${i}] is not an object`);
    const call = { ...item };
    if (context !== null) call.context = { ...context, ...(isObject(item.context) ? item.context : {}) };
    if (integrations !== null) call.integrations = { ...integrations, ...(isObject(item.integrations) ? item.integrations : {}) };
    return { call, type: typeof item.type === 'string' ? item.type : '' };
  });
}
