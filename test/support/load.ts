/**
 * A bounded HTTP event load for fault tests: `concurrency` requests in
 * flight, each event with a client id, until stopped. Records which ids were
 * acknowledged (HTTP 200) — the ones that must be stored exactly once.
 */
export interface Load {
  readonly acked: Set<string>;
  readonly refused: Map<number, number>;
  sent: number;
  stop(): Promise<void>;
}

export function startLoad(baseUrl: string, options: { prefix: string; concurrency?: number; projectId?: number; max?: number }): Load {
  const acked = new Set<string>();
  const refused = new Map<number, number>();
  let running = true;
  const load: Load = { acked, refused, sent: 0, stop: async () => { running = false; await Promise.all(workers); } };
  const worker = async (w: number): Promise<void> => {
    let i = 0;
    while (running && (options.max === undefined || load.sent < options.max)) {
      const id = `${options.prefix}-${w}-${i++}`;
      load.sent++;
      try {
        const res = await fetch(`${baseUrl}/track/page/${options.projectId ?? 1}?id=${id}&uid=user-${w}-${i % 50}`, { signal: AbortSignal.timeout(10_000) });
        await res.arrayBuffer();
        if (res.status === 200) acked.add(id);
        else refused.set(res.status, (refused.get(res.status) ?? 0) + 1);
      } catch {
        // The engine went away mid-request (kill -9): not acknowledged.
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  const workers = Array.from({ length: options.concurrency ?? 16 }, (_, w) => worker(w));
  return load;
}
