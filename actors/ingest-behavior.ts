import { DEFAULT_REPLY, type ActorBehavior, type ActorRef, type Envelope, type IngestMessage, type Reply, type Responder } from '../engine/index.js';
import { eventRow, type OutRecord, type Pipeline, type Row } from '../sinks/index.js';
import { anonymizeIp, type EnricherSet, type EnrichMemo } from './enrichers/index.js';
import {
  hash53, inRing, remember, sessionEndRow, sessionsRow, sessionStartRow,
  type DedupRing, type Session, type Sessionizer,
} from './session/index.js';

/**
 * The session actor: one per (project, uid). Per event, in order:
 *
 * 1. dedup — a client-supplied event id this user sent recently is
 *    acknowledged (once everything before it is durable) and not processed
 *    again;
 * 2. enrich (local enrichers inline, remote ones within their timeout);
 * 3. identity — `identify` links the uid to a user id (an `identities` row;
 *    later events carry it as user_id), `alias` links another id;
 * 4. sessionize — session id, seq and page seq on the row; a split writes
 *    the previous session's end and the new one's start (derived
 *    `in.sys.session.*` events and `sessions` rows);
 * 5. store and reply once durable (with durability: wal, after the
 *    write-ahead log's fsync).
 *
 * Passivation writes the open session's end (stable ids: if the user comes
 * back within the idle window the session continues, and its later end
 * replaces this one). The handler machines (funnels, churn) plug in at 4.
 */

export interface IngestState {
  /** Events this user sent, ever. */
  events: number;
  /** From `identify`: carried as user_id on later events. */
  userId: string;
  session: Session | null;
  dedup: DedupRing | null;
  /** The enrichers' per-session memo: live state only, never in the snapshot. */
  readonly memo: EnrichMemo | undefined;
}

/** What a passivated user keeps (the state store may encode it, e.g. msgpack). */
export interface IngestSnapshot {
  readonly events: number;
  readonly userId: string;
  readonly session: Session | null;
  readonly dedup: DedupRing | null;
}

export interface IngestOptions {
  readonly pipeline: Pipeline;
  readonly enrichers: EnricherSet;
  readonly sessions: Sessionizer;
  readonly ipAnonymization: 'zero' | 'drop' | 'none';
  readonly dropBots: boolean;
  /** Recent client event ids remembered per user (0: no dedup). */
  readonly dedupIds: number;
  /** Server time, for passivation (defaults to Date.now). */
  readonly now?: () => number;
}

export interface IngestStats {
  /** Repeats of a recent client event id, acknowledged and not processed. */
  duplicates: number;
  sessionsStarted: number;
  sessionsEnded: number;
}

/** A reply held until its event is durable. */
class HeldReply {
  constructor(private readonly responder: Responder, private readonly envelope: Envelope, private readonly reply: Reply) {}
  durable(): void {
    this.responder.respond(this.envelope, this.reply);
  }
}

const IDENTIFY_KEY = 'in.gen.user.identify';
const ALIAS_KEY = 'in.gen.user.alias';
const ID_MAX = 256;

export type IngestBehavior = ActorBehavior<IngestState, IngestMessage> & { readonly stats: IngestStats };

export function createIngestBehavior(o: IngestOptions): IngestBehavior {
  const now = o.now ?? Date.now;
  const stats: IngestStats = { duplicates: 0, sessionsStarted: 0, sessionsEnded: 0 };

  /** The session's end event and `sessions` row, unless written at this seq already. */
  function endRecords(out: OutRecord[], session: Session, projectId: number, uid: string, userId: string): void {
    if (session.endedAtSeq === session.seq) return;
    session.endedAtSeq = session.seq;
    stats.sessionsEnded++;
    out.push(
      { table: 'events', row: sessionEndRow(session, projectId, uid, userId, now()) },
      { table: 'sessions', row: sessionsRow(session, projectId, uid, userId) },
    );
  }

  function identity(out: OutRecord[], state: IngestState, envelope: Envelope): void {
    if (envelope.key === IDENTIFY_KEY && envelope.userId !== null) {
      state.userId = envelope.userId;
      out.push({ table: 'identities', row: identityRow(envelope, 'identify', envelope.userId, envelope.data) });
    } else if (envelope.key === ALIAS_KEY) {
      const previous = envelope.data.previousId;
      if ((typeof previous === 'string' || typeof previous === 'number') && String(previous) !== '' && String(previous).length <= ID_MAX) {
        out.push({ table: 'identities', row: identityRow(envelope, 'alias', String(previous), {}) });
      }
    }
  }

  function finish(state: IngestState, message: IngestMessage, row: Row, idHash: number): IngestState {
    const { envelope, responder } = message;
    row.ip = anonymizeIp(envelope.ip, o.ipAnonymization);
    if (o.dropBots && row.is_bot === 1) {
      // Acknowledged, not stored: the client is not told it was recognized.
      responder?.respond(envelope, DEFAULT_REPLY);
      return state;
    }
    const out: OutRecord[] = [];
    identity(out, state, envelope);
    const userId = envelope.userId ?? state.userId;
    row.user_id = userId;

    const step = o.sessions.advance(state.session, envelope, row);
    const { session } = step;
    row.session_id = session.id;
    row.seq = session.seq;
    row.page_seq = session.pages;
    if (step.ended !== null) endRecords(out, step.ended, envelope.projectId, envelope.uid, userId);
    if (step.started !== null) {
      stats.sessionsStarted++;
      out.push(
        { table: 'events', row: sessionStartRow(row, session) },
        { table: 'sessions', row: sessionsRow(session, envelope.projectId, envelope.uid, userId) },
      );
    }
    out.push({ table: 'events', row });
    o.pipeline.emit(out, responder === null ? null : new HeldReply(responder, envelope, DEFAULT_REPLY));

    state.session = session;
    state.events++;
    if (idHash !== 0) remember(state.dedup ??= { hashes: [], next: 0 }, idHash, o.dedupIds);
    return state;
  }

  return {
    stats,
    initial: () => ({ events: 0, userId: '', session: null, dedup: null, memo: o.enrichers.memo() }),
    receive(state, message) {
      const { envelope } = message;
      let idHash = 0;
      if (envelope.idFromClient && o.dedupIds > 0) {
        idHash = hash53(envelope.id) || 1;
        if (state.dedup !== null && inRing(state.dedup, idHash)) {
          stats.duplicates++;
          // Acknowledge once everything emitted before is durable: the first copy may still be on its way.
          const { responder } = message;
          o.pipeline.emit([], responder === null ? null : new HeldReply(responder, envelope, DEFAULT_REPLY));
          return state;
        }
      }
      const row = eventRow(envelope);
      const pending = o.enrichers.apply(envelope, row, state.memo);
      if (pending === undefined) return finish(state, message, row, idHash);
      return pending.then(() => finish(state, message, row, idHash));
    },
    snapshot(state: IngestState, actor: ActorRef): IngestSnapshot {
      const { session } = state;
      if (session !== null) {
        const out: OutRecord[] = [];
        endRecords(out, session, actor.projectId, actor.uid, state.userId);
        if (out.length > 0) o.pipeline.emit(out, null);
      }
      return { events: state.events, userId: state.userId, session, dedup: state.dedup };
    },
    restore(snapshot: unknown): IngestState {
      const s = snapshot as Partial<IngestSnapshot>;
      return {
        events: typeof s.events === 'number' ? s.events : 0,
        userId: typeof s.userId === 'string' ? s.userId : '',
        session: s.session ?? null,
        dedup: s.dedup ?? null,
        memo: o.enrichers.memo(),
      };
    },
  };
}

function identityRow(envelope: Envelope, kind: 'identify' | 'alias', externalId: string, traits: Readonly<Record<string, unknown>>): Row {
  return {
    project_id: envelope.projectId,
    kind,
    uid: envelope.uid,
    partner: '',
    external_id: externalId,
    traits,
    ts: envelope.ts,
    version: envelope.receivedAt,
  };
}
