import type { WsSocket } from '../transport/index.js';

/**
 * Open WebSocket connections by user, for pushes: a handler's push reaches
 * every open connection of that (project, uid) — a user with two tabs sees it
 * in both.
 */
export interface Connection {
  readonly socket: WsSocket;
  readonly projectId: number;
  readonly uid: string;
  /** Encode server messages as msgpack (the client spoke binary last). */
  binary: boolean;
}

export interface ConnectionRegistry {
  add(conn: Connection): void;
  remove(conn: Connection): void;
  of(projectId: number, uid: string): ReadonlySet<Connection> | undefined;
  readonly size: number;
}

export function createConnectionRegistry(): ConnectionRegistry {
  const byUser = new Map<string, Set<Connection>>();
  let size = 0;
  const key = (projectId: number, uid: string): string => `${projectId}\u0000${uid}`;
  return {
    get size() { return size; },
    add(conn) {
      const k = key(conn.projectId, conn.uid);
      let set = byUser.get(k);
      if (set === undefined) { set = new Set(); byUser.set(k, set); }
      set.add(conn);
      size++;
    },
    remove(conn) {
      const k = key(conn.projectId, conn.uid);
      const set = byUser.get(k);
      if (set?.delete(conn)) {
        size--;
        if (set.size === 0) byUser.delete(k);
      }
    },
    of: (projectId, uid) => byUser.get(key(projectId, uid)),
  };
}
