/**
 * Where passivated actors keep their state. The system calls `set` when an
 * actor is passivated and `get` when it is activated again. Either may return
 * a promise (NATS KV); the actor queues its messages meanwhile. A `get` may
 * throw or reject for a value it cannot read, and a `set` for a write that did
 * not land: the shard reports either through `onError` and goes on (an
 * unreadable user starts as new). A `get` made before a `set` settled may
 * return the previous value; the shard restores from the snapshot it is
 * saving meanwhile. Two stores: this process's memory (below, lost on exit)
 * and local disk (lmdb-state-store.ts, the engine's default).
 */
export interface StateStore {
  get(projectId: number, uid: string): unknown | Promise<unknown>;
  set(projectId: number, uid: string, snapshot: unknown): void | Promise<void>;
  delete(projectId: number, uid: string): void | Promise<void>;
  /** Releases resources; called last in shutdown. */
  close?(): void | Promise<void>;
}

export function createMemoryStateStore(): StateStore & { size(): number } {
  const projects = new Map<number, Map<string, unknown>>();
  return {
    get(projectId, uid) {
      return projects.get(projectId)?.get(uid);
    },
    set(projectId, uid, snapshot) {
      let users = projects.get(projectId);
      if (users === undefined) { users = new Map(); projects.set(projectId, users); }
      users.set(uid, snapshot);
    },
    delete(projectId, uid) {
      projects.get(projectId)?.delete(uid);
    },
    size() {
      let n = 0;
      for (const users of projects.values()) n += users.size;
      return n;
    },
  };
}
