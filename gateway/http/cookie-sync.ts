import { createError, ENVELOPE_LIMITS as LIMITS, isValidUid, toFlowError, type FlowError } from '../../engine/index.js';
import type { Row } from '../../sinks/index.js';
import type { GatewayContext } from '../context.js';
import { projectIdOf } from '../events.js';
import type { Header, HttpResponseSink, RequestHead } from '../transport/index.js';
import { resolveUid, uidCookie } from './cookies.js';
import { PIXEL_GIF, PIXEL_HEADERS } from './pixel.js';

/**
 * Cookie-sync with ad-tech partners: matching our uid with theirs.
 *
 *   GET /sync/{partner}[/{projectId}]
 *     302 to the partner's URL template with `{uid}` (our uid) and `{back}`
 *     (our /sync/{partner}/back URL) filled in, URL-encoded.
 *   GET /sync/{partner}/back[/{projectId}]?puid=…
 *     where the partner sends the browser back with its own id: stores the
 *     pair as an `identities` row (kind 'partner') and answers a 1x1 GIF once
 *     the row is durable (with `storage.durability: wal`, after the fsync).
 *
 * The uid is resolved as for HTTP events (query `uid`, else the cookie, else a
 * new one) and the cookie is set on both replies. The project is the path's,
 * else the query's `projectId`, else `defaultProjectId`; when the sync request
 * names one, the back URL carries it, so the mapping lands in that project.
 * Partner URLs come from config only (validated at start: https, the
 * placeholders outside the host), so this is no open redirect.
 */

const NO_STORE: Header = ['cache-control', 'no-store'];
/** Partners' user ids: 1-128 printable characters (no control, format or line-separator characters). */
const PUID = /^[^\p{C}\p{Zl}\p{Zp}]{1,128}$/u;
const PATH_PROJECT = /^\d{1,10}$/;

export interface CookieSync {
  /** Answers a request whose path starts with /sync/. */
  request(head: RequestHead, res: HttpResponseSink, cors: readonly Header[]): void;
}

type Reject = (res: HttpResponseSink, err: FlowError, headers: readonly Header[]) => void;

interface Partner {
  readonly name: string;
  /** The URL template split at its placeholders: even indices are literal text, odd ones `{uid}` or `{back}`. */
  readonly parts: readonly string[];
}

/** The pixel of a /back request, sent once its identities row is durable. */
class HeldPixel {
  constructor(private readonly res: HttpResponseSink, private readonly headers: readonly Header[]) {}
  durable(): void {
    this.res.send(200, this.headers, PIXEL_GIF);
  }
}

export function createCookieSync(ctx: GatewayContext, reject: Reject): CookieSync {
  const { gateway: gw } = ctx;
  const { publicUrl } = gw.cookieSync;
  // Config guarantees publicUrl whenever a template uses {back}.
  const base = publicUrl === undefined ? '' : publicUrl.replace(/\/+$/, '');
  const partners = new Map<string, Partner>();
  for (const [name, { url }] of Object.entries(gw.cookieSync.partners)) {
    partners.set(name, { name, parts: url.split(/(\{uid\}|\{back\})/) });
  }

  function partnerUrl(partner: Partner, uid: string, project: number | undefined): string {
    const back = `${base}/sync/${partner.name}/back${project === undefined ? '' : `/${project}`}`;
    let out = '';
    for (let i = 0; i < partner.parts.length; i++) {
      const part = partner.parts[i]!;
      if (i % 2 === 0) out += part;
      else out += encodeURIComponent(part === '{uid}' ? uid : back);
    }
    return out;
  }

  /** The project the request names (path, else query), undefined when it names none; throws a 400 when it is malformed. */
  function namedProject(pathProject: string | undefined, query: URLSearchParams): number | undefined {
    const raw = pathProject ?? query.get('projectId') ?? undefined;
    if (raw === undefined || raw === '') return undefined;
    const id = projectIdOf(raw, ctx.config.defaultProjectId);
    if (typeof id !== 'number' || id > LIMITS.projectIdMax) {
      throw createError('FLOW_ERR_FIELD_INVALID', { field: 'projectId', reason: `must be an integer from 0 to ${LIMITS.projectIdMax}` });
    }
    return id;
  }

  /** The request's uid (the explicit one validated), as HTTP events resolve it. */
  function uidOf(head: RequestHead, query: URLSearchParams): string {
    const uid = resolveUid(query.get('uid') ?? undefined, head.headers.cookie, gw.cookie.name);
    if (!isValidUid(uid)) throw createError('FLOW_ERR_FIELD_INVALID', { field: 'uid', reason: `must be 1-${LIMITS.uidMax} characters of [A-Za-z0-9._:-]` });
    return uid;
  }

  function sync(head: RequestHead, res: HttpResponseSink, cors: readonly Header[], partner: Partner, pathProject: string | undefined): void {
    const client = ctx.clientInfo(head);
    const retryAfter = ctx.limiter.take(client.ip, 1, head.receivedAt);
    if (retryAfter > 0) return reject(res, createError('FLOW_ERR_RATE_LIMITED', { retryAfter }), cors);
    let uid: string;
    let project: number | undefined;
    try {
      const query = new URLSearchParams(head.query);
      uid = uidOf(head, query);
      project = namedProject(pathProject, query);
    } catch (err) {
      return reject(res, toFlowError(err, 'FLOW_ERR_INVALID_REQUEST'), cors);
    }
    res.send(302, [
      ['location', partnerUrl(partner, uid, project)], NO_STORE,
      ['set-cookie', uidCookie(uid, gw.cookie, client.https)], ...cors,
    ], '');
  }

  function back(head: RequestHead, res: HttpResponseSink, cors: readonly Header[], partner: Partner, pathProject: string | undefined): void {
    // The row must be stored before the pixel goes out: with storage backed up, refuse now rather than hold the request.
    if (ctx.saturated()) return reject(res, createError('FLOW_ERR_OVERLOADED', { reason: 'storage backlog', retryAfter: 5 }), cors);
    const client = ctx.clientInfo(head);
    const retryAfter = ctx.limiter.take(client.ip, 1, head.receivedAt);
    if (retryAfter > 0) return reject(res, createError('FLOW_ERR_RATE_LIMITED', { retryAfter }), cors);
    let row: Row;
    let uid: string;
    try {
      const query = new URLSearchParams(head.query);
      const puid = query.get('puid');
      if (puid === null || puid === '') throw createError('FLOW_ERR_FIELD_INVALID', { field: 'puid', reason: 'is required' });
      if (!PUID.test(puid)) throw createError('FLOW_ERR_FIELD_INVALID', { field: 'puid', reason: 'must be 1-128 printable characters' });
      uid = uidOf(head, query);
      const projectId = namedProject(pathProject, query) ?? ctx.config.defaultProjectId;
      // Versioned by time: a repeated sync of the same pair replaces the older row.
      row = {
        project_id: projectId, kind: 'partner', uid, partner: partner.name, external_id: puid,
        ts: head.receivedAt, version: head.receivedAt,
      };
    } catch (err) {
      return reject(res, toFlowError(err, 'FLOW_ERR_INVALID_REQUEST'), cors);
    }
    const headers: Header[] = [...PIXEL_HEADERS, ['set-cookie', uidCookie(uid, gw.cookie, client.https)], ...cors];
    ctx.pipeline.emit([{ table: 'identities', row }], new HeldPixel(res, headers));
  }

  return {
    request(head, res, cors) {
      // /sync/{partner}, /sync/{partner}/{projectId}, /sync/{partner}/back, /sync/{partner}/back/{projectId}
      const [name = '', second, third, ...rest] = head.path.slice('/sync/'.length).split('/');
      const isBack = second === 'back';
      const pathProject = isBack ? third : second;
      const wellFormed = head.method === 'GET' && rest.length === 0 && (isBack || third === undefined)
        && (pathProject === undefined || PATH_PROJECT.test(pathProject));
      if (!wellFormed) return reject(res, createError('FLOW_ERR_NOT_FOUND', { method: head.method, path: head.path.slice(0, 100) }), cors);
      const partner = partners.get(name);
      if (partner === undefined) return reject(res, createError('FLOW_ERR_PARTNER_UNKNOWN', { partner: name.slice(0, 64) }), cors);
      if (isBack) back(head, res, cors, partner, pathProject);
      else sync(head, res, cors, partner, pathProject);
    },
  };
}
