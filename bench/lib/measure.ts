/** Small measuring helpers shared by scenarios. */

export function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g === undefined) throw new Error('benchmarks need node --expose-gc (use npm run bench)');
  g(); g();
}

export function heapUsed(): number {
  gc();
  return process.memoryUsage().heapUsed;
}

/** Runs `fn` and returns seconds elapsed. */
export function timeIt(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

export function round(value: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
