/**
 * FNV-1a over UTF-16 code units: a few ns for a typical uid, stable across
 * processes and machines, so every gateway and engine node picks the same
 * shard (and, in cluster mode, the same NATS partition) for a user.
 */
export function hashUid(uid: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < uid.length; i++) {
    h ^= uid.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function shardOf(uid: string, shardCount: number): number {
  return shardCount === 1 ? 0 : hashUid(uid) % shardCount;
}
