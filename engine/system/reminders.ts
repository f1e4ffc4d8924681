import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import { LMDB_MAP_BYTES } from './lmdb-state-store.js';

/**
 * Reminders: durable wake-up times for actors (Orleans calls them reminders).
 * An actor that must act later — a funnel attempt abandoned after ten
 * minutes, a churn score that will cross its threshold in three days — sets
 * one reminder, the earliest time it needs; when it is due the engine sends
 * the actor a wake message, restoring it from the state store if it was
 * passivated. The actor then does what is due and sets its next reminder.
 *
 * What it promises:
 * - One reminder per (project, uid): `set` replaces the previous one, and
 *   `set(…, 0)` clears it.
 * - A reminder is delivered at or after its time (within a tick), at least
 *   once. A wake may come for a reminder the actor has since moved (the
 *   replacing write raced a window load): actors check their own state and
 *   treat an early wake as a no-op. No reminder is lost while the process
 *   runs; with the disk store they survive restarts, and a kill -9 of the
 *   process loses at most the last 100 ms of settings (they are written in
 *   one transaction per 100 ms). A taken reminder stays on disk until its
 *   actor sets the next one, so a crash before the actor's work delivers it
 *   again.
 * - Memory stays bounded by what is due soon: only reminders within
 *   `horizonMs` sit in the in-memory heap; later ones live only on disk and
 *   are loaded by a range read as their window comes (a million users with a
 *   churn reminder days away cost disk, not heap).
 *
 * The memory store (actors.stateStore: memory) keeps everything in the heap
 * and loses it on exit, like the state it belongs with.
 */

export interface Reminder {
  readonly projectId: number;
  readonly uid: string;
  /** Due time, ms since the epoch (the engine clock). */
  readonly at: number;
}

export interface Reminders {
  /** Sets the one reminder of (projectId, uid) to `at`, replacing any; 0 clears it. */
  set(projectId: number, uid: string, at: number): void;
  /** Removes and returns the reminders due at `now`, earliest first, at most `limit`. */
  takeDue(now: number, limit: number): Reminder[];
  /** Reminders in the heap now (due within the horizon, or all with the memory store). */
  pending(): number;
  /** Writes what was set so far to disk now and waits for it to land. */
  flush(): Promise<void>;
  /** Waits for writes to land and closes the disk store. */
  close(): Promise<void>;
}

export interface RemindersOptions {
  /** Directory of the disk store (lmdb); omitted: memory only. */
  readonly path?: string;
  /** Reminders due within this long are kept in memory; later ones are read from disk when their window comes. */
  readonly horizonMs?: number;
  /** Current time, for the window. */
  readonly now: () => number;
  /** A disk write that failed (the reminders of that batch are still in memory if due soon). */
  readonly onError?: (err: Error) => void;
  /**
   * The users whose reminders this instance delivers (default: all). Worker
   * threads share one disk store, each taking only its own users' reminders.
   */
  readonly owns?: (uid: string) => boolean;
}

export const REMINDER_HORIZON_MS = 10 * 60_000;
/** Reminders set within this long share one disk transaction. */
const FLUSH_MS = 100;

/** A heap entry; stale when the user's reminder has moved since (lazy deletion). */
interface Entry {
  readonly at: number;
  readonly key: string;
  readonly projectId: number;
  readonly uid: string;
}

type DueKey = [at: number, projectId: number, uid: string];
type UserKey = [projectId: number, uid: string];

export function createReminders(o: RemindersOptions): Reminders {
  const horizonMs = o.horizonMs ?? REMINDER_HORIZON_MS;
  const heap: Entry[] = [];
  /** key → due time, for the reminders in the heap. */
  const inHeap = new Map<string, number>();
  const disk = o.path === undefined ? null : openDisk(o.path);
  /** Set since the last flush: one write per user however often it moved (key → latest). */
  let pending = new Map<string, Reminder>();
  /** Handed to lmdb, not committed yet. */
  const writing = new Map<string, Reminder>();
  const commits = new Set<Promise<void>>();
  let flushTimer: ReturnType<typeof setTimeout> | null = null;
  /** Reminders due before this are in the heap (or were delivered); with no disk, everything is. */
  let loadedUntil = disk === null ? Infinity : -Infinity;

  function push(e: Entry): void {
    heap.push(e);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.at <= e.at) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = e;
  }

  function pop(): Entry {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= heap.length) break;
        const r = l + 1;
        const c = r < heap.length && heap[r]!.at < heap[l]!.at ? r : l;
        if (heap[c]!.at >= last.at) break;
        heap[i] = heap[c]!;
        i = c;
      }
      heap[i] = last;
    }
    return top;
  }

  function remember(projectId: number, uid: string, key: string, at: number): void {
    inHeap.set(key, at);
    push({ at, key, projectId, uid });
  }

  /** Reads the next window of reminders from disk (and from writes not landed yet) into the heap. */
  function loadWindow(now: number): void {
    if (disk === null || now + horizonMs / 2 < loadedUntil) return;
    const from = loadedUntil === -Infinity ? 0 : loadedUntil;
    const until = now + horizonMs;
    const owns = o.owns;
    for (const { key } of disk.due.getRange({ start: [from], end: [until] })) {
      const [at, projectId, uid] = key;
      if (owns !== undefined && !owns(uid)) continue;
      const k = userKey(projectId, uid);
      // What this process set, landed or not, is fresher than what the disk had when this range was read.
      if (!inHeap.has(k) && !pending.has(k) && !writing.has(k)) remember(projectId, uid, k, at);
    }
    for (const m of [writing, pending]) {
      for (const [k, r] of m) if (r.at > 0 && r.at >= from && r.at < until && inHeap.get(k) !== r.at) remember(r.projectId, r.uid, k, r.at);
    }
    loadedUntil = until;
  }

  /**
   * Writes what was set since the last flush in one transaction: per user,
   * the latest time replaces whatever the disk had (found through by-user).
   * A flush every FLUSH_MS keeps the cost per set to a Map write — sessions
   * ending re-arm reminders all the time — and bounds what a kill -9 loses.
   */
  function flush(): void {
    flushTimer = null;
    if (disk === null || pending.size === 0) return;
    const batch = pending;
    pending = new Map();
    for (const [k, r] of batch) writing.set(k, r);
    const commit = disk.root.transaction(() => {
      for (const r of batch.values()) {
        const user: UserKey = [r.projectId, r.uid];
        const previous = disk.byUser.get(user);
        if (previous === r.at) continue;
        if (previous !== undefined) disk.due.removeSync([previous, r.projectId, r.uid]);
        if (r.at > 0) {
          disk.due.putSync([r.at, r.projectId, r.uid], 1);
          disk.byUser.putSync(user, r.at);
        } else if (previous !== undefined) {
          disk.byUser.removeSync(user);
        }
      }
    }).then(() => {
      for (const [k, r] of batch) if (writing.get(k) === r) writing.delete(k);
    }, (err: unknown) => {
      for (const [k, r] of batch) if (writing.get(k) === r) writing.delete(k);
      o.onError?.(err instanceof Error ? err : new Error(String(err)));
    }).finally(() => commits.delete(commit));
    commits.add(commit);
  }

  return {
    set(projectId, uid, at) {
      const key = userKey(projectId, uid);
      if (disk !== null) {
        pending.set(key, { projectId, uid, at });
        if (flushTimer === null) {
          flushTimer = setTimeout(flush, FLUSH_MS);
          flushTimer.unref();
        }
      }
      // Due within the horizon: into the heap now — a window read may run before this write
      // lands on disk. Later ones are on disk long before their window is read.
      if (at > 0 && (disk === null || at < Math.max(loadedUntil, o.now() + horizonMs))) remember(projectId, uid, key, at);
      else inHeap.delete(key);
    },

    takeDue(now, limit) {
      loadWindow(now);
      const due: Reminder[] = [];
      while (heap.length > 0 && heap[0]!.at <= now && due.length < limit) {
        const e = pop();
        if (inHeap.get(e.key) !== e.at) continue;
        // The disk copy stays until the actor sets its next reminder (it always does when woken):
        // a crash between this and the actor's wake delivers it again on restart.
        inHeap.delete(e.key);
        due.push({ projectId: e.projectId, uid: e.uid, at: e.at });
      }
      // Stale entries pile up when reminders move often; rebuild once they outnumber live ones.
      if (heap.length > 1024 && heap.length > 2 * inHeap.size) {
        const live = heap.filter((e) => inHeap.get(e.key) === e.at);
        heap.length = 0;
        for (const e of live) push(e);
      }
      return due;
    },

    pending: () => inHeap.size,

    async flush() {
      if (flushTimer !== null) clearTimeout(flushTimer);
      flush();
      while (commits.size > 0) await Promise.all([...commits]);
    },

    async close() {
      if (disk === null) return;
      await this.flush();
      await disk.root.flushed;
      await disk.root.close();
    },
  };
}

interface Disk {
  readonly root: RootDatabase;
  /** [at, projectId, uid] → 1, in due order. */
  readonly due: Database<number, DueKey>;
  /** [projectId, uid] → at: finds the entry a new reminder replaces. */
  readonly byUser: Database<number, UserKey>;
}

function openDisk(path: string): Disk {
  mkdirSync(path, { recursive: true });
  // Reserved up front, like the state store's map: no remaps, no pages resident in several maps.
  const root = open({ path, maxDbs: 4, mapSize: LMDB_MAP_BYTES });
  return {
    root,
    due: root.openDB<number, DueKey>({ name: 'due' }),
    byUser: root.openDB<number, UserKey>({ name: 'by-user' }),
  };
}

function userKey(projectId: number, uid: string): string {
  return `${projectId}\u0000${uid}`;
}
