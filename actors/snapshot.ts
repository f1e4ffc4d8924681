import { packUuid, unpackUuid } from '../engine/index.js';
import type { ChurnState, FunnelProgress, PersistedFunnels } from './machines/index.js';
import { ARRIVAL_PER_MS, type DedupRing, type Session } from './session/index.js';

/**
 * The session actor's snapshot as it is stored: what a passivated user
 * keeps, in the fewest bytes that give it back exactly. Most users are
 * idle, so this is most of what the engine keeps per user (the e2e bench's
 * idle-user stage: RSS per idle user is mostly the state file's pages).
 *
 * The state itself (IngestSnapshot) holds absolute times and the session id
 * as text. Format 2 (`f: 2`) stores the session id as its 16 bytes in
 * base64url (22 characters, not 36) and the times as differences from the
 * session's own times, so they are small integers (1–5 bytes in MessagePack)
 * instead of 9-byte doubles:
 * - the session's lastAt from its startedAt, lastReceivedAt from its lastAt;
 * - arrival from the session's lastReceivedAt × 1024 (nextArrival's scale);
 * - the churn state's t and l, and each funnel attempt's t0 and tl, from the
 *   session's lastAt.
 * A snapshot with no session, or with any of these times not a safe integer,
 * or a session id that is not a canonical UUID, is stored in format 1: the
 * state as it is. Both formats read back (restore), format 1 being what
 * builds before 2026-12-05 wrote.
 */

/** What a passivated user keeps (the state store may encode it, e.g. msgpack). */
export interface IngestSnapshot {
  readonly events: number;
  readonly arrival: number;
  readonly userId: string;
  readonly session: Session | null;
  readonly dedup: DedupRing | null;
  readonly funnels: PersistedFunnels;
  readonly churn: ChurnState | null;
  readonly funnelProgress: number;
  readonly churnAt: number;
  readonly wakeAt: number;
}

/** Format 2: the session's times and the other times relative to them. */
interface PackedSnapshot extends Omit<IngestSnapshot, 'session'> {
  readonly f: 2;
  readonly session: PackedSession;
}

type PackedSession = Omit<Session, 'id' | 'lastAt' | 'lastReceivedAt'> & {
  /** The id's bytes, base64url. */
  readonly id: string;
  /** lastAt − startedAt. */
  readonly lastAt: number;
  /** lastReceivedAt − lastAt. */
  readonly lastReceivedAt: number;
};

export function packSnapshot(s: IngestSnapshot): IngestSnapshot | PackedSnapshot {
  const { session } = s;
  if (session === null) return s;
  const id = packUuid(session.id);
  if (id === null || !timesAreIntegers(s, session)) return s;
  const base = session.lastAt;
  const funnels: Record<string, FunnelProgress> = {};
  for (const name in s.funnels) {
    const p = s.funnels[name]!;
    funnels[name] = { ...p, t0: p.t0 - base, tl: p.tl - base };
  }
  return {
    f: 2,
    events: s.events,
    arrival: s.arrival - session.lastReceivedAt * ARRIVAL_PER_MS,
    userId: s.userId,
    session: { ...session, id, lastAt: session.lastAt - session.startedAt, lastReceivedAt: session.lastReceivedAt - session.lastAt },
    dedup: s.dedup,
    funnels,
    churn: s.churn === null ? null : { ...s.churn, t: s.churn.t - base, l: s.churn.l - base },
    funnelProgress: s.funnelProgress,
    churnAt: s.churnAt,
    wakeAt: s.wakeAt,
  };
}

/**
 * A stored snapshot in the state's terms (format 1's layout). Anything that
 * is not a well-formed format 2 snapshot is handed on as it is: the actor's
 * restore checks every field and drops what it cannot use.
 */
export function unpackSnapshot(stored: unknown): unknown {
  if (stored === null || typeof stored !== 'object' || (stored as { f?: unknown }).f !== 2) return stored;
  const s = stored as PackedSnapshot;
  const session = s.session as PackedSession | null | undefined;
  if (session === null || typeof session !== 'object' || typeof session.id !== 'string' || session.id.length !== 22) return stored;
  const { startedAt } = session;
  const lastAt = startedAt + session.lastAt;
  const lastReceivedAt = lastAt + session.lastReceivedAt;
  const funnels: Record<string, unknown> = {};
  if (s.funnels !== null && typeof s.funnels === 'object') {
    for (const name in s.funnels) {
      const p = s.funnels[name]!;
      funnels[name] = p !== null && typeof p === 'object' ? { ...p, t0: p.t0 + lastAt, tl: p.tl + lastAt } : p;
    }
  }
  const churn = s.churn !== null && typeof s.churn === 'object' ? { ...s.churn, t: s.churn.t + lastAt, l: s.churn.l + lastAt } : s.churn;
  const { f: _format, ...rest } = s;
  return {
    ...rest,
    arrival: s.arrival + lastReceivedAt * ARRIVAL_PER_MS,
    session: { ...session, id: unpackUuid(session.id), lastAt, lastReceivedAt },
    funnels,
    churn,
  };
}

/** Every time that format 2 stores as a difference: differences of safe integers are exact. */
function timesAreIntegers(s: IngestSnapshot, session: Session): boolean {
  const safe = Number.isSafeInteger;
  if (!safe(session.startedAt) || !safe(session.lastAt) || !safe(session.lastReceivedAt) || !safe(s.arrival)) return false;
  if (!safe(session.lastReceivedAt * ARRIVAL_PER_MS)) return false;
  if (s.churn !== null && (!safe(s.churn.t) || !safe(s.churn.l))) return false;
  for (const name in s.funnels) {
    const p = s.funnels[name]!;
    if (!safe(p.t0) || !safe(p.tl)) return false;
  }
  return true;
}
