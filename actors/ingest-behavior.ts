import {
  DEFAULT_REPLY, type ActorBehavior, type ActorMessage, type ActorRef, type Envelope, type IngestMessage, type Reply, type Responder,
} from '../engine/index.js';
import type { WebhookDelivery } from './actions/webhooks.js';
import { eventRow, type OutRecord, type Pipeline, type Row } from '../sinks/index.js';
import { anonymizeIp, type EnricherSet, type EnrichMemo } from './enrichers/index.js';
import { newEventId } from '../engine/index.js';
import type { Churn, ChurnState, Funnels, FunnelsState, TimedAction } from './machines/index.js';
import {
  ARRIVAL_PER_MS, derivedRow, hash53, inRing, remember, sessionEndRow, sessionsRow, sessionStartRow,
  type DedupRing, type Session, type Sessionizer,
} from './session/index.js';
import { packSnapshot, unpackSnapshot, type IngestSnapshot } from './snapshot.js';

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
 * 5. funnels — each step reached is an `in.sys.funnel.{name}` event;
 *    at a session's (first) end the churn score is updated and stored as
 *    an `in.sys.churn.score` event.
 *
 * Passivation writes the open session's end (stable ids: if the user comes
 * back within the idle window the session continues, and its later end
 * replaces this one).
 *
 * Timers: an actor keeps one reminder (engine/system/reminders.ts) at the
 * earliest thing it must do later — a funnel attempt's abandonment time, the
 * time its churn score will cross the threshold — and is sent a wake message
 * then, even if it was passivated meanwhile. Actions (reply, push, webhook)
 * are data the machines return; the actor carries them out.
 */

export interface IngestState {
  /** Events this user sent, ever. */
  events: number;
  /** The last `arrival` stamped on this user's rows (see nextArrival). */
  arrival: number;
  /** From `identify`: carried as user_id on later events. */
  userId: string;
  session: Session | null;
  dedup: DedupRing | null;
  funnels: FunnelsState;
  churn: ChurnState | null;
  /** Highest funnel progress (0..1) in the current session, for the churn model. */
  funnelProgress: number;
  /** Server time the churn score will cross its threshold with no more activity (0: not expected). */
  churnAt: number;
  /** The reminder this actor has set (0: none). */
  wakeAt: number;
  /** The enrichers' per-session memo: live state only, never in the snapshot. */
  readonly memo: EnrichMemo | undefined;
}


export interface IngestOptions {
  readonly pipeline: Pipeline;
  readonly enrichers: EnricherSet;
  readonly sessions: Sessionizer;
  readonly funnels: Funnels;
  readonly churn: Churn;
  readonly ipAnonymization: 'zero' | 'drop' | 'none';
  readonly dropBots: boolean;
  /** Recent client event ids remembered per user (0: no dedup). */
  readonly dedupIds: number;
  /** Sends a push notification to the user's open WebSocket connections (funnel `push` actions); returns how many got it. */
  readonly push?: (projectId: number, uid: string, params: unknown) => number;
  /** Hands a webhook action's delivery over (actors/actions/webhooks.ts). */
  readonly webhook?: (delivery: WebhookDelivery) => void;
  /** Sets this user's one reminder (0 clears it); the engine sends a wake message when it is due. */
  readonly remind?: (projectId: number, uid: string, at: number) => void;
  /** Server time, for passivation (defaults to Date.now). */
  readonly now?: () => number;
}

export interface IngestStats {
  /** Repeats of a recent client event id, acknowledged and not processed. */
  duplicates: number;
  sessionsStarted: number;
  sessionsEnded: number;
  funnelSteps: number;
  churnCrossings: number;
  funnelAbandons: number;
  /** Push actions carried out, and how many connections they reached. */
  pushes: number;
  pushDeliveries: number;
  /** Webhook actions handed over for delivery. */
  webhooks: number;
  /** Wake messages handled. */
  wakes: number;
}

/** A reply held until its event is durable. */
class HeldReply {
  constructor(private readonly responder: Responder, private readonly envelope: Envelope, private readonly reply: Reply) {}
  durable(): void {
    this.responder.respond(this.envelope, this.reply);
  }
}

const ID_MAX = 256;

export type IngestBehavior = ActorBehavior<IngestState, ActorMessage> & { readonly stats: IngestStats };

export function createIngestBehavior(o: IngestOptions): IngestBehavior {
  const now = o.now ?? Date.now;
  // Crossings while the user is away are watched (a reminder per user) only when something acts on them.
  const churnTimers = o.churn.config.actions.length > 0;
  /** Set when this event changed something a timer depends on (funnel progress, the churn prediction). */
  let timersMayHaveMoved = false;
  const stats: IngestStats = {
    duplicates: 0, sessionsStarted: 0, sessionsEnded: 0, funnelSteps: 0, churnCrossings: 0, funnelAbandons: 0,
    pushes: 0, pushDeliveries: 0, webhooks: 0, wakes: 0,
  };

  function push(projectId: number, uid: string, params: unknown): void {
    if (o.push === undefined) return;
    stats.pushes++;
    stats.pushDeliveries += o.push(projectId, uid, params);
  }

  function webhook(url: string, row: Row): void {
    if (o.webhook === undefined) return;
    stats.webhooks++;
    o.webhook({ url, id: row.event_id as string, projectId: row.project_id as number, body: webhookBody(row) });
  }

  function timedActions(actions: readonly TimedAction[], row: Row, projectId: number, uid: string): void {
    for (let i = 0; i < actions.length; i++) {
      const action = actions[i]!;
      if (action.type === 'push') push(projectId, uid, action.params);
      else webhook(action.url, row);
    }
  }

  /** Keeps the actor's one reminder at the earliest thing it must do later. */
  function arm(state: IngestState, projectId: number, uid: string, force: boolean): void {
    const abandonAt = o.funnels.nextDeadline(state.funnels);
    const next = abandonAt === 0 ? state.churnAt : state.churnAt === 0 ? abandonAt : Math.min(abandonAt, state.churnAt);
    if (next === state.wakeAt && !force) return;
    state.wakeAt = next;
    o.remind?.(projectId, uid, next);
  }

  /**
   * A reminder came due: abandoned funnel attempts and a churn threshold
   * crossing are reported (derived events and actions), then the next
   * reminder is set. A wake with nothing due (the reminder moved) only re-arms.
   */
  function wake(state: IngestState, actor: ActorRef): IngestState {
    stats.wakes++;
    const at = now();
    const out: OutRecord[] = [];
    const due = o.funnels.abandonDue(state.funnels, at);
    if (due !== null) {
      state.funnels = due.state;
      for (const a of due.abandoned) {
        stats.funnelAbandons++;
        const row = timedRow(state, actor, at, a.key, 'abandon', a.funnel, {
          step: a.stepIndex, step_name: a.stepName, steps: a.steps, reached: a.reachedCount, since_start_ms: a.sinceStartMs, due_at: a.dueAt,
        });
        out.push({ table: 'events', row });
        timedActions(a.actions, row, actor.projectId, actor.uid);
      }
    }
    if (state.churnAt > 0 && state.churnAt <= at && state.churn !== null) {
      const c = o.churn.update(state.churn, null, at);
      state.churn = c.state;
      state.churnAt = churnTimers && !c.crossed ? o.churn.crossingAt(c.state, at) : 0;
      if (c.crossed) {
        stats.churnCrossings++;
        const row = timedRow(state, actor, at, 'in.sys.churn.score', 'churn', 'score', { score: c.score, activity: c.activity, crossed: true });
        out.push({ table: 'events', row });
        timedActions(o.churn.config.actions, row, actor.projectId, actor.uid);
      }
    }
    if (out.length > 0) o.pipeline.emit(out, null);
    // Always: the disk copy of the reminder that woke us goes once the next one is set.
    arm(state, actor.projectId, actor.uid, true);
    return state;
  }

  /** A derived event of a timer: the user's last session's context, at server time `at`. */
  function timedRow(state: IngestState, actor: ActorRef, at: number, key: string, service: string, name: string, props: Record<string, unknown>): Row {
    const base: Row = state.session === null
      ? { project_id: actor.projectId, uid: actor.uid, user_id: state.userId, session_id: '', seq: 0 }
      : sessionEndRow(state.session, actor.projectId, actor.uid, state.userId, at);
    return { ...base, key, channel: 'sys', service, name, event_id: newEventId(), ts: at, event_date: at, received_at: at, props, arrival: nextArrival(state, at) };
  }

  /** The session's end event and `sessions` row, unless written at this seq already. */
  /**
   * `leaving`: the actor is being passivated — the user has gone quiet, so
   * this is when the churn crossing is predicted and its reminder set. A
   * session split by a returning user's event needs no prediction: they are
   * active, and their own passivation will make it.
   */
  function endRecords(out: OutRecord[], state: IngestState, session: Session, projectId: number, uid: string, leaving: boolean): void {
    if (session.endedAtSeq === session.seq) return;
    const firstEnd = session.endedAtSeq === 0;
    session.endedAtSeq = session.seq;
    stats.sessionsEnded++;
    const at = now();
    const endRow = sessionEndRow(session, projectId, uid, state.userId, at);
    endRow.arrival = nextArrival(state, at);
    out.push({ table: 'events', row: endRow }, { table: 'sessions', row: sessionsRow(session, projectId, uid, state.userId) });
    // A session that ended before and was reopened is not counted again in the activity index.
    if (!firstEnd) return;
    const c = o.churn.update(state.churn ?? o.churn.initial(), { endedAt: session.lastAt, durationMs: session.lastAt - session.startedAt, funnelProgress: state.funnelProgress }, session.lastAt);
    state.churn = c.state;
    state.funnelProgress = 0;
    state.churnAt = churnTimers && leaving && !c.crossed ? o.churn.crossingAt(c.state, at) : 0;
    const row = derivedRow(endRow, 'in.sys.churn.score', 'churn', 'score', newEventId(), { score: c.score, activity: c.activity, crossed: c.crossed });
    out.push({ table: 'events', row });
    if (c.crossed) {
      stats.churnCrossings++;
      timedActions(o.churn.config.actions, row, projectId, uid);
    }
  }

  /**
   * Funnel steps this event reached: derived events, and their actions —
   * `push` is sent and `webhook` handed over at once, `reply` data is
   * returned to answer this event (merged when several steps reply).
   */
  function funnelRecords(out: OutRecord[], state: IngestState, envelope: Envelope, row: Row): Reply {
    const r = o.funnels.step(state.funnels, envelope);
    if (r === null) return DEFAULT_REPLY;
    state.funnels = r.state;
    timersMayHaveMoved = true;
    let replyData: Record<string, unknown> | null = null;
    for (let i = 0; i < r.reached.length; i++) {
      const x = r.reached[i]!;
      stats.funnelSteps++;
      if (x.progress > state.funnelProgress) state.funnelProgress = x.progress;
      const derived = derivedRow(row, x.key, 'funnel', x.funnel, newEventId(), {
        step: x.stepIndex, step_name: x.stepName, steps: x.steps, since_start_ms: x.sinceStartMs, converted: x.converted,
      });
      out.push({ table: 'events', row: derived });
      for (let j = 0; j < x.actions.length; j++) {
        const action = x.actions[j]!;
        if (action.type === 'reply') replyData = { ...(replyData ?? {}), ...action.data };
        else if (action.type === 'push') push(envelope.projectId, envelope.uid, action.params);
        else webhook(action.url, derived);
      }
    }
    return replyData === null ? DEFAULT_REPLY : { kind: 'json', data: replyData };
  }

  function identity(out: OutRecord[], state: IngestState, envelope: Envelope): void {
    // Any channel's user.identify / user.alias: ours (in.gen.…) and the SDK protocols' (in.segment.…).
    if (envelope.service !== 'user' || envelope.channel === 'sys') return;
    if (envelope.name === 'identify' && envelope.userId !== null) {
      state.userId = envelope.userId;
      out.push({ table: 'identities', row: identityRow(envelope, 'identify', envelope.userId, envelope.data) });
    } else if (envelope.name === 'alias') {
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
    // The user is active: a churn crossing predicted at their last departure no longer holds.
    timersMayHaveMoved = state.churnAt !== 0;
    state.churnAt = 0;
    identity(out, state, envelope);
    const userId = envelope.userId ?? state.userId;
    row.user_id = userId;

    const step = o.sessions.advance(state.session, envelope, row);
    const { session } = step;
    row.session_id = session.id;
    row.seq = session.seq;
    row.page_seq = session.pages;
    if (step.ended !== null) endRecords(out, state, step.ended, envelope.projectId, envelope.uid, false);
    // After the previous session's end, before the rows derived from this event (they copy it).
    row.arrival = nextArrival(state, envelope.receivedAt);
    if (step.started !== null) {
      stats.sessionsStarted++;
      out.push(
        { table: 'events', row: sessionStartRow(row, session) },
        { table: 'sessions', row: sessionsRow(session, envelope.projectId, envelope.uid, userId) },
      );
    }
    const reply = funnelRecords(out, state, envelope, row);
    out.push({ table: 'events', row });
    o.pipeline.emit(out, responder === null ? null : new HeldReply(responder, envelope, reply));

    state.session = session;
    state.events++;
    if (idHash !== 0) remember(state.dedup ??= { hashes: [], next: 0 }, idHash, o.dedupIds);
    if (timersMayHaveMoved) arm(state, envelope.projectId, envelope.uid, false);
    return state;
  }

  return {
    stats,
    initial: () => ({
      events: 0, arrival: 0, userId: '', session: null, dedup: null, funnels: o.funnels.initial(), churn: null, funnelProgress: 0,
      churnAt: 0, wakeAt: 0, memo: o.enrichers.memo(),
    }),
    receive(state, message, actor) {
      if (message.envelope === null) return wake(state, actor);
      const { envelope } = message;
      let idHash = 0;
      if (envelope.idFromClient && o.dedupIds > 0) {
        idHash = hash53(envelope.id) || 1;
        if (state.dedup !== null && inRing(state.dedup, idHash)) {
          stats.duplicates++;
          // Acknowledge once everything emitted before is durable: the first copy may still be on its way.
          const { responder } = message as IngestMessage;
          o.pipeline.emit([], responder === null ? null : new HeldReply(responder, envelope, DEFAULT_REPLY));
          return state;
        }
      }
      const row = eventRow(envelope);
      const pending = o.enrichers.apply(envelope, row, state.memo);
      if (pending === undefined) return finish(state, message as IngestMessage, row, idHash);
      return pending.then(() => finish(state, message as IngestMessage, row, idHash));
    },
    snapshot(state: IngestState, actor: ActorRef): unknown {
      const { session } = state;
      if (session !== null) {
        const out: OutRecord[] = [];
        endRecords(out, state, session, actor.projectId, actor.uid, true);
        if (out.length > 0) o.pipeline.emit(out, null);
      }
      state.funnels = o.funnels.prune(state.funnels, now());
      arm(state, actor.projectId, actor.uid, false);
      // Stored in the compact format where it applies (actors/snapshot.ts).
      return packSnapshot({
        events: state.events, arrival: state.arrival, userId: state.userId, session, dedup: state.dedup,
        funnels: o.funnels.persist(state.funnels), churn: state.churn, funnelProgress: state.funnelProgress,
        churnAt: state.churnAt, wakeAt: state.wakeAt,
      });
    },
    restore(snapshot: unknown): IngestState {
      const s = unpackSnapshot(snapshot) as Partial<IngestSnapshot>;
      return {
        events: typeof s.events === 'number' ? s.events : 0,
        arrival: typeof s.arrival === 'number' ? s.arrival : 0,
        userId: typeof s.userId === 'string' ? s.userId : '',
        session: s.session ?? null,
        dedup: s.dedup ?? null,
        funnels: o.funnels.restore(s.funnels),
        churn: s.churn === undefined || s.churn === null ? null : o.churn.restore(s.churn),
        funnelProgress: typeof s.funnelProgress === 'number' ? s.funnelProgress : 0,
        churnAt: typeof s.churnAt === 'number' ? s.churnAt : 0,
        wakeAt: typeof s.wakeAt === 'number' ? s.wakeAt : 0,
        memo: o.enrichers.memo(),
      };
    },
  };
}

/**
 * The next `arrival` stamp of this user's rows: the server time in ms × 1024,
 * or one past the last stamp when that is not more. So a user's stamps are
 * strictly increasing in the order their actor processed the events — within
 * one millisecond, across passivation (the last stamp is in the snapshot) and
 * when the clock steps back — and a user whose state was lost goes on from
 * the clock, after their earlier rows. The funnel report orders a user's
 * events by it (query/reports/funnel.ts). Exact in a double until the year
 * 2248 (2^53 / 1024 ms).
 */
function nextArrival(state: IngestState, ms: number): number {
  const at = Math.max(Math.floor(ms) * ARRIVAL_PER_MS, state.arrival + 1);
  state.arrival = at;
  return at;
}

/** What a webhook action POSTs: the derived event. */
function webhookBody(row: Row): Record<string, unknown> {
  return {
    id: row.event_id, key: row.key, project_id: row.project_id, uid: row.uid, user_id: row.user_id,
    session_id: row.session_id, ts: row.ts, props: row.props,
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
