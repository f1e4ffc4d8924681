import { mkdirSync } from 'node:fs';
import { asBinary, open, type Key as LmdbKey, type RootDatabase } from 'lmdb';
import { packUuid } from '../envelope/uuid.js';
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
 * - A user's key is one string, `{projectId}/{uid}`, or `{projectId}:{22
 *   base64url characters}` when the uid is a canonical lower-case UUID (what
 *   the gateway gives a new visitor): its 16 bytes instead of its 36
 *   characters (stateKey). One project's users share a prefix, so a
 *   per-project scan is a range read. Keys sit in every leaf page: the
 *   `[projectId, uid]` array keys before (KEY_FORMAT 1) took 46 bytes for a
 *   UUID uid, these take 24. A store written before has its keys rewritten
 *   once, when opened (migrateKeys).
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
  /** Told how far the one-time key rewrite of an older store has come (see migrateKeys). */
  readonly onMigration?: (progress: KeyMigrationProgress) => void;
}

export interface KeyMigrationProgress {
  /** Snapshots re-keyed so far. */
  readonly moved: number;
  readonly done: boolean;
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
type Key = string;
/** KEY_FORMAT 1's keys, found only by the one-time rewrite. */
type LegacyKey = [projectId: number, uid: string];

/**
 * How users are keyed: 1, the array `[projectId, uid]`; 2, one string
 * (stateKey). Kept under KEY_FORMAT_KEY; a store without it was written by a
 * build before format 2, or is new.
 */
const KEY_FORMAT = 2;
const KEY_FORMAT_KEY = Symbol.for('flowstat.state.key-format');
/** Entries moved per write transaction by the one-time key rewrite. */
const MIGRATION_BATCH = 10_000;

/**
 * A user's key. `:` marks a packed UUID and `/` any other uid, right after
 * the project's digits, so no two users share a key; only the canonical
 * spelling is packed, so the uid it came from is the only one it stands for.
 */
export function stateKey(projectId: number, uid: string): Key {
  const packed = packUuid(uid);
  return packed === null ? `${projectId}/${uid}` : `${projectId}:${packed}`;
}

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
  migrateKeys(db, options.onMigration);
  let closing: Promise<void> | null = null;

  return {
    path: options.path,

    get(projectId, uid) {
      let stored: unknown;
      try {
        stored = db.get(stateKey(projectId, uid));
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
        await db.put(stateKey(projectId, uid), [STATE_FORMAT, snapshot]);
      } catch (err) {
        throw new StateStoreError(`state of project ${projectId} uid ${JSON.stringify(uid)} was not saved: ${message(err)}`, projectId, uid, { cause: err });
      }
    },

    async delete(projectId, uid) {
      try {
        await db.remove(stateKey(projectId, uid));
      } catch (err) {
        throw new StateStoreError(`state of project ${projectId} uid ${JSON.stringify(uid)} was not deleted: ${message(err)}`, projectId, uid, { cause: err });
      }
    },

    count() {
      // The shared structures' and key format's entries (symbol keys) are outside the range counted (test/unit/lmdb-state-store.test.ts).
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

/**
 * Re-keys a store written with `[projectId, uid]` keys (KEY_FORMAT 1) to
 * stateKey's strings, in write transactions of MIGRATION_BATCH entries,
 * once: the format is recorded when done, and a new store records it at
 * once. Synchronous, at open, before any user is read (~0.4 s per 25k users
 * in the test). Each entry is written under its new key and removed under
 * its old one in the same transaction, so an interrupted rewrite (a crash)
 * loses nothing and goes on at the next open. The old keys (arrays that
 * start with a number) sort before every string key.
 */
function migrateKeys(db: RootDatabase<StoredValue, Key>, onProgress: ((p: KeyMigrationProgress) => void) | undefined): void {
  const legacy = db as unknown as RootDatabase<unknown, LmdbKey>;
  if (legacy.get(KEY_FORMAT_KEY) === KEY_FORMAT) return;
  let moved = 0;
  for (;;) {
    const batch: { key: LegacyKey; value: Uint8Array }[] = [];
    // Each pass starts over from the first key: the moved entries are gone from the front.
    for (const key of legacy.getKeys({})) {
      if (typeof key === 'string') break; // the rewritten keys: every old one is before them
      if (!isLegacyKey(key)) continue;
      // The bytes as they are (a copy: lmdb reuses its read buffer), so a value that does not decode moves too.
      const bytes = legacy.getBinary(key);
      if (bytes !== undefined) batch.push({ key, value: Uint8Array.prototype.slice.call(bytes) });
      if (batch.length >= MIGRATION_BATCH) break;
    }
    if (batch.length === 0) break;
    legacy.transactionSync(() => {
      for (const { key: [projectId, uid], value } of batch) {
        legacy.putSync(stateKey(projectId, uid), asBinary(value));
        legacy.removeSync([projectId, uid]);
      }
    });
    moved += batch.length;
    onProgress?.({ moved, done: false });
  }
  legacy.putSync(KEY_FORMAT_KEY, KEY_FORMAT);
  if (moved > 0) onProgress?.({ moved, done: true });
}

function isLegacyKey(key: unknown): key is LegacyKey {
  return Array.isArray(key) && key.length === 2 && typeof key[0] === 'number' && typeof key[1] === 'string';
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
