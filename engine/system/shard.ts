import type { Clock, Timer } from '../clock/index.js';
import { createError } from '../errors/index.js';
import { Mailbox } from './mailbox.js';
import type { StateStore } from './state-store.js';
import { createTimerWheel, type TimerWheel, type WheelEntry } from './timer-wheel.js';
import {
  TELL_ACCEPTED, TELL_MAILBOX_FULL, TELL_NO_CAPACITY, TELL_OVERLOADED, TELL_STOPPED,
  type ActorBehavior, type ActorRef, type DeadLetter, type ShardStats, type TellResult,
} from './types.js';

/**
 * One shard: the live actors of the users that hash to it, their mailboxes and
 * their passivation wheel. A shard shares nothing with other shards, so it can
 * run on a worker thread of its own.
 *
 * Per event the fast path is: two Map lookups, one integer store (last active
 * tick) and the behaviour call — inline, when the actor has nothing queued.
 * Messages wait in a mailbox only while the actor is busy with async work.
 */

/** An actor's cell. Kept small on purpose: this is what an idle user costs. */
class Cell<S, M> implements WheelEntry, ActorRef {
  state: S | undefined = undefined;
  mailbox: Mailbox<M> | null = null;
  busy = false;
  /** Shard tick of the last message; read lazily by the wheel (Orleans-style). */
  lastTick: number;
  wheelPrev: WheelEntry | null = null;
  wheelNext: WheelEntry | null = null;
  wheelDue = -1;
  constructor(readonly projectId: number, readonly uid: string, tick: number) {
    this.lastTick = tick;
  }
}

export interface ShardOptions<S, M> {
  readonly behavior: ActorBehavior<S, M>;
  readonly store: StateStore;
  readonly clock: Clock;
  /** Passivate an actor after this long without messages. */
  readonly idleTimeoutMs: number;
  /** Granularity of idle tracking. */
  readonly tickMs: number;
  /** Live actors above this are passivated, least recently used first. */
  readonly maxLiveActors: number;
  /** Messages one actor may have waiting. */
  readonly mailboxCapacity: number;
  /** Messages all actors of the shard may have waiting together. */
  readonly maxQueued: number;
  /** An async `receive` running longer than this fails (0: no limit). */
  readonly receiveTimeoutMs: number;
  readonly onDeadLetter: (letter: DeadLetter<M>) => void;
  /** Failures of the system itself (a state store error); never per event. */
  readonly onError: (err: Error, context: string) => void;
}

export class Shard<S, M> {
  private readonly projects = new Map<number, Map<string, Cell<S, M>>>();
  private readonly wheel: TimerWheel<Cell<S, M>>;
  private readonly idleTicks: number;
  private readonly epoch: number;
  private readonly pendingSaves = new Map<string, unknown>();
  private readonly saving = new Set<Promise<void>>();
  private readonly idleWaiters: (() => void)[] = [];
  private ticker: Timer | null = null;
  /** Mirrors wheel.tick as a plain field: read on every message. */
  private currentTick = 0;
  private lastProjectId = -1;
  private lastUsers: Map<string, Cell<S, M>> = new Map();
  private stopped = false;
  private readonly stats: ShardStats = {
    live: 0, queued: 0, busy: 0, created: 0, restored: 0, passivated: 0, processed: 0, failed: 0, rejected: 0,
  };

  constructor(private readonly o: ShardOptions<S, M>) {
    this.epoch = o.clock.now();
    this.idleTicks = Math.max(1, Math.ceil(o.idleTimeoutMs / o.tickMs));
    this.wheel = createTimerWheel<Cell<S, M>>(this.idleTicks + 1);
  }

  start(): void {
    if (this.ticker !== null) return;
    this.ticker = this.o.clock.setInterval(() => this.onTick(), this.o.tickMs);
  }

  /** Delivers one message to the actor of (projectId, uid), creating it if needed. */
  tell(projectId: number, uid: string, message: M): TellResult {
    if (this.stopped) return TELL_STOPPED;
    // Most deployments send one project; skip its Map lookup when it repeats.
    const users = projectId === this.lastProjectId ? this.lastUsers : this.usersOf(projectId);
    let cell = users.get(uid);
    if (cell === undefined) {
      if (this.stats.live >= this.o.maxLiveActors && !this.evictOne()) {
        this.stats.rejected++;
        return TELL_NO_CAPACITY;
      }
      cell = this.activate(users, projectId, uid);
    }
    cell.lastTick = this.currentTick;
    if (cell.busy || cell.mailbox !== null) {
      if (cell.busy || cell.mailbox!.length > 0) return this.enqueue(cell, message);
    }
    this.process(cell, message);
    return TELL_ACCEPTED;
  }

  private usersOf(projectId: number): Map<string, Cell<S, M>> {
    let users = this.projects.get(projectId);
    if (users === undefined) {
      users = new Map();
      this.projects.set(projectId, users);
    }
    this.lastProjectId = projectId;
    this.lastUsers = users;
    return users;
  }

  private enqueue(cell: Cell<S, M>, message: M): TellResult {
    if (this.stats.queued >= this.o.maxQueued) { this.stats.rejected++; return TELL_OVERLOADED; }
    const mailbox = (cell.mailbox ??= new Mailbox<M>());
    if (mailbox.length >= this.o.mailboxCapacity) { this.stats.rejected++; return TELL_MAILBOX_FULL; }
    mailbox.push(message);
    this.stats.queued++;
    return TELL_ACCEPTED;
  }

  private activate(users: Map<string, Cell<S, M>>, projectId: number, uid: string): Cell<S, M> {
    const cell = new Cell<S, M>(projectId, uid, this.wheel.tick);
    users.set(uid, cell);
    this.stats.live++;
    this.wheel.schedule(cell, this.wheel.tick + this.idleTicks);

    const pending = this.pendingSaves.get(storeKey(projectId, uid));
    let snapshot: unknown;
    try {
      snapshot = pending !== undefined ? pending : this.o.store.get(projectId, uid);
    } catch (err) {
      this.o.onError(asError(err), 'state store get');
      snapshot = undefined;
    }
    if (snapshot instanceof Promise) {
      cell.busy = true;
      this.stats.busy++;
      snapshot.then(
        (value: unknown) => this.loaded(cell, value),
        (err: unknown) => { this.o.onError(asError(err), 'state store get'); this.loaded(cell, undefined); },
      );
    } else {
      this.restoreOrStartFresh(cell, snapshot);
    }
    return cell;
  }

  /** A snapshot `restore` cannot use is reported and the user starts as new: never a throw out of `tell`. */
  private restoreOrStartFresh(cell: Cell<S, M>, snapshot: unknown): void {
    try {
      this.setRestored(cell, snapshot);
    } catch (err) {
      this.o.onError(asError(err), 'state restore');
      cell.state = this.o.behavior.initial(cell);
      this.stats.created++;
    }
  }

  private setRestored(cell: Cell<S, M>, snapshot: unknown): void {
    const { behavior } = this.o;
    if (snapshot === undefined) {
      cell.state = behavior.initial(cell);
      this.stats.created++;
    } else {
      cell.state = behavior.restore ? behavior.restore(snapshot, cell) : (snapshot as S);
      this.stats.restored++;
    }
  }

  private loaded(cell: Cell<S, M>, snapshot: unknown): void {
    this.restoreOrStartFresh(cell, snapshot);
    this.settle(cell);
  }

  /** Runs `message` and then whatever queued behind it, until the actor goes async. */
  private process(cell: Cell<S, M>, message: M): void {
    let next: M | undefined = message;
    while (next !== undefined) {
      if (!this.runOne(cell, next)) return;
      const mailbox = cell.mailbox;
      if (mailbox === null || mailbox.length === 0) break;
      next = mailbox.shift();
      this.stats.queued--;
    }
    if (this.stats.queued === 0 && this.stats.busy === 0) this.notifyIdle();
  }

  /** Returns false when the behaviour went async (the actor stays busy). */
  private runOne(cell: Cell<S, M>, message: M): boolean {
    cell.busy = true;
    let result: S | Promise<S>;
    try {
      result = this.o.behavior.receive(cell.state as S, message, cell);
    } catch (err) {
      cell.busy = false;
      this.fail(cell, message, err);
      return true;
    }
    if (result instanceof Promise) {
      this.stats.busy++;
      this.awaitResult(cell, message, result);
      return false;
    }
    cell.state = result;
    cell.busy = false;
    this.stats.processed++;
    return true;
  }

  private awaitResult(cell: Cell<S, M>, message: M, result: Promise<S>): void {
    let done = false;
    const timeoutMs = this.o.receiveTimeoutMs;
    const timer = timeoutMs > 0
      ? this.o.clock.setTimeout(() => {
          if (done) return;
          done = true;
          this.fail(cell, message, createError('FLOW_ERR_TIMEOUT', { what: 'actor receive', ms: timeoutMs }));
          this.settle(cell);
        }, timeoutMs)
      : null;
    result.then(
      (state) => {
        if (done) return;
        done = true;
        timer?.cancel();
        cell.state = state;
        this.stats.processed++;
        this.settle(cell);
      },
      (err: unknown) => {
        if (done) return;
        done = true;
        timer?.cancel();
        this.fail(cell, message, err);
        this.settle(cell);
      },
    );
  }

  /** An async step finished: the actor is free again; run what queued meanwhile. */
  private settle(cell: Cell<S, M>): void {
    cell.busy = false;
    this.stats.busy--;
    cell.lastTick = this.wheel.tick;
    const mailbox = cell.mailbox;
    if (mailbox !== null && mailbox.length > 0) {
      const next = mailbox.shift() as M;
      this.stats.queued--;
      this.process(cell, next);
    } else if (this.stats.queued === 0 && this.stats.busy === 0) {
      this.notifyIdle();
    }
  }

  private fail(cell: Cell<S, M>, message: M, err: unknown): void {
    // The state is untouched: the actor continues from its last good state.
    this.stats.failed++;
    try {
      this.o.onDeadLetter({ projectId: cell.projectId, uid: cell.uid, message, error: asError(err), at: this.o.clock.now() });
    } catch (listenerErr) {
      this.o.onError(asError(listenerErr), 'dead-letter listener');
    }
  }

  private onTick(): void {
    const target = Math.floor((this.o.clock.now() - this.epoch) / this.o.tickMs);
    if (target > this.wheel.tick) this.wheel.advance(target, (cell, tick) => this.onIdleDue(cell, tick));
    this.currentTick = this.wheel.tick;
  }

  /** The wheel says this actor may be idle; check lazily against its real last activity. */
  private onIdleDue(cell: Cell<S, M>, tick: number): void {
    const due = cell.lastTick + this.idleTicks;
    if (cell.busy || (cell.mailbox !== null && cell.mailbox.length > 0)) {
      this.wheel.schedule(cell, tick + this.idleTicks);
    } else if (due > tick) {
      this.wheel.schedule(cell, due);
    } else {
      this.passivate(cell);
    }
  }

  /** Passivates the least recently used idle actor. False if every live actor is busy. */
  private evictOne(): boolean {
    let evicted = false;
    this.wheel.scanFromNearest((cell) => {
      if (cell.busy || (cell.mailbox !== null && cell.mailbox.length > 0)) return false;
      const due = cell.lastTick + this.idleTicks;
      if (due > cell.wheelDue) {
        // Active since it was filed: file it where it belongs and keep looking.
        this.wheel.schedule(cell, due);
        return false;
      }
      this.passivate(cell);
      evicted = true;
      return true;
    });
    return evicted;
  }

  private passivate(cell: Cell<S, M>): void {
    this.wheel.remove(cell);
    this.projects.get(cell.projectId)?.delete(cell.uid);
    this.stats.live--;
    this.stats.passivated++;
    this.save(cell);
  }

  private save(cell: Cell<S, M>): void {
    const { behavior, store } = this.o;
    let saved: void | Promise<void>;
    let snapshot: unknown;
    try {
      snapshot = behavior.snapshot ? behavior.snapshot(cell.state as S, cell) : cell.state;
      saved = store.set(cell.projectId, cell.uid, snapshot);
    } catch (err) {
      this.o.onError(asError(err), 'state store set');
      return;
    }
    if (saved instanceof Promise) {
      // Until the write lands, a returning user is restored from here.
      const key = storeKey(cell.projectId, cell.uid);
      this.pendingSaves.set(key, snapshot);
      const clear = (): void => { if (this.pendingSaves.get(key) === snapshot) this.pendingSaves.delete(key); };
      const tracked: Promise<void> = saved.then(clear, (err: unknown) => { clear(); this.o.onError(asError(err), 'state store set'); })
        .finally(() => this.saving.delete(tracked));
      this.saving.add(tracked);
    }
  }

  /** Stops accepting messages. Work already queued still runs. */
  stop(): void {
    this.stopped = true;
  }

  /** Resolves when no message is queued and no actor is busy. */
  drain(): Promise<void> {
    if (this.stats.queued === 0 && this.stats.busy === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private notifyIdle(): void {
    if (this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters.splice(0);
    for (const resolve of waiters) resolve();
  }

  /** Saves every live actor's state and empties the shard (shutdown). */
  async passivateAll(): Promise<void> {
    await this.drain();
    for (const users of this.projects.values()) {
      for (const cell of users.values()) this.passivate(cell);
    }
    this.projects.clear();
    this.lastProjectId = -1;
    this.ticker?.cancel();
    this.ticker = null;
    await this.flushSaves();
  }

  private async flushSaves(): Promise<void> {
    // Saves are fire-and-forget per actor; shutdown waits for the last ones.
    while (this.saving.size > 0) await Promise.all([...this.saving]);
  }

  /** Moves the shard's clock on (the interval does this in production). */
  tickNow(): void {
    this.onTick();
  }

  snapshotStats(): ShardStats {
    return { ...this.stats };
  }
}

function storeKey(projectId: number, uid: string): string {
  return `${projectId}\u0000${uid}`;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
