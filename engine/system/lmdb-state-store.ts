import { mkdirSync } from 'node:fs';
import { open, type RootDatabase } from 'lmdb';
import type { StateStore } from './state-store.js';

/**
 * The embedded state store: passivated actors' snapshots in an LMDB file on
 * local disk, so a user's state outlives the process. Snapshots are small
 * plain objects, encoded with MessagePack (msgpackr, lmdb's default) with
 * shared record structures: the object shapes (their key names) are stored
 * once in the database, under STRUCTURES_KEY, and each snapshot carries only
 * its values. Without them every snapshot repeated its ~300 bytes of key
 * names (a session snapshot of the e2e bench: 546 B, against 235 B with them
 * and 172 B compressed; the state file was 1.2 KB per user on disk, and an
 * idle user's pages stay mapped). A
 * snapshot written before, with its structures inline, still reads back.
 * Values over 64 bytes are LZ4-compressed (COMPRESSION).
 *
 * What it promises:
 * - Keys are `[projectId, uid]` (lmdb's ordered key encoding), so one
 *   project's users sit together and a later per-project scan is a range read.
 * - `get` is synchronous: a read from the memory map, about a microsecond,
 *   so activating a user does not make the actor wait for a promise.
 * - `set` and `delete` resolve once the write is committed (visible to every
 *   later `get`, and safe from a crash of this process). Writes made in the
 *   same event-loop turn share one transaction. Flushing to the disk itself
 *   (safe from a power loss) follows shortly after, off the main thread
 *   (lmdb's `overlappingSync`); `close` waits for it.
 * - Writes land in call order: the last `set`/`delete` of a key wins.
 *   A `get` made before a `set` resolved may still return the previous value;
 *   the shard covers that window by restoring from the snapshot it is saving.
 * - A value that cannot be decoded, or is not in this store's format, makes
 *   `get` throw a StateStoreError; the shard reports it through `onError` and
 *   the user starts as new. The bad record stays until the user's next
 *   passivation overwrites it.
 * - A write that fails (disk full, a key longer than lmdb's 1978 bytes)
 *   rejects its promise with a StateStoreError; the shard reports it and the
 *   actor system goes on; that user's next activation finds the previous
 *   snapshot, or none.
 */

export interface LmdbStateStoreOptions {
  /** Directory of the database (created if missing); the engine uses `${dataDir}/state`. */
  readonly path: string;
}

export interface LmdbStateStore extends StateStore {
  readonly path: string;
  /** Snapshots stored (counted by lmdb in native code, over its keys). */
  count(): number;
  set(projectId: number, uid: string, snapshot: unknown): Promise<void>;
  delete(projectId: number, uid: string): Promise<void>;
  close(): Promise<void>;
}

/** A snapshot the store cannot read back, or a write that did not land. */
export class StateStoreError extends Error {
  constructor(
    message: string,
    readonly projectId: number,
    readonly uid: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'StateStoreError';
  }
}

/**
 * Every value is stored as `[STATE_FORMAT, snapshot]`. The tag lets `get`
 * tell a snapshot from bytes that merely decode (a lone msgpack byte decodes
 * as a number), and gives a later format change something to switch on.
 */
const STATE_FORMAT = 1;

type StoredValue = readonly [format: number, snapshot: unknown];
type Key = [projectId: number, uid: string];

/**
 * The memory map's size: address space reserved up front, not memory or
 * disk (the file grows as it fills). lmdb-js otherwise starts small and
 * remaps as the file grows, keeping each earlier map for the buffers still
 * pointing into it: at 100k users the state file was mapped 9 times and its
 * pages were resident twice over (113 MB resident for a 55 MB file). Past
 * this size lmdb-js still grows the map. The reminders' database uses it too.
 */
export const LMDB_MAP_BYTES = 2 ** 35;

/**
 * LZ4 with lmdb-js's default shared dictionary, on lmdb's write thread, for
 * any snapshot over 64 bytes: a session snapshot's URLs and field values
 * compress by about a quarter (state file 525 -> 382 B per user in the e2e
 * idle-user stage at 100k users; its resident pages 47.7 -> 33.0 MB).
 * Values written without compression read back unchanged; a file written
 * with it needs this setting to be read (no downgrade to a build before it).
 */
const COMPRESSION = Object.freeze({ threshold: 64 });

/** Where lmdb keeps the shared msgpack structures: a key no user's `[projectId, uid]` can be. */
const STRUCTURES_KEY = Symbol.for('flowstat.state.structures');

export function createLmdbStateStore(options: LmdbStateStoreOptions): LmdbStateStore {
  mkdirSync(options.path, { recursive: true });
  const db: RootDatabase<StoredValue, Key> = open<StoredValue, Key>({
    path: options.path, sharedStructuresKey: STRUCTURES_KEY, mapSize: LMDB_MAP_BYTES, compression: COMPRESSION,
  });
  let closing: Promise<void> | null = null;

  return {
    path: options.path,

    get(projectId, uid) {
      let stored: unknown;
      try {
        stored = db.get([projectId, uid]);
      } catch (err) {
        throw new StateStoreError(`state of project ${projectId} uid ${JSON.stringify(uid)} is unreadable: ${message(err)}`, projectId, uid, { cause: err });
      }
      if (stored === undefined) return undefined;
      if (!Array.isArray(stored) || stored.length !== 2 || stored[0] !== STATE_FORMAT) {
        throw new StateStoreError(`state of project ${projectId} uid ${JSON.stringify(uid)} is not in state format ${STATE_FORMAT}`, projectId, uid);
      }
      return stored[1] as unknown;
    },

    async set(projectId, uid, snapshot) {
      try {
        // lmdb throws synchronously for some failures (key too long) and rejects for others (commit failed).
        await db.put([projectId, uid], [STATE_FORMAT, snapshot]);
      } catch (err) {
        throw new StateStoreError(`state of project ${projectId} uid ${JSON.stringify(uid)} was not saved: ${message(err)}`, projectId, uid, { cause: err });
      }
    },

    async delete(projectId, uid) {
      try {
        await db.remove([projectId, uid]);
      } catch (err) {
        throw new StateStoreError(`state of project ${projectId} uid ${JSON.stringify(uid)} was not deleted: ${message(err)}`, projectId, uid, { cause: err });
      }
    },

    count() {
      // The shared structures' entry (a symbol key) is outside the range counted (test/unit/lmdb-state-store.test.ts).
      return db.getCount();
    },

    close() {
      // Idempotent: shutdown may run the close step after a test already closed the store.
      closing ??= (async () => {
        // Every write so far committed and fsync'd, then the file closed (lmdb's close alone would
        // wait for the commits; waiting for `flushed` makes "exit 0" mean "on the disk").
        await db.flushed;
        await db.close();
      })();
      return closing;
    },
  };
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
