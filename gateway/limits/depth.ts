/**
 * True when `value` nests objects/arrays deeper than `max`. Iterative, stops
 * at the first too-deep path; a flat event costs a walk over its few keys.
 */
export function exceedsDepth(value: unknown, max: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  const stack: unknown[] = [value];
  const depths: number[] = [1];
  while (stack.length > 0) {
    const node = stack.pop() as object;
    const depth = depths.pop()!;
    if (depth > max) return true;
    if (Array.isArray(node)) {
      for (const child of node) {
        if (child !== null && typeof child === 'object') { stack.push(child); depths.push(depth + 1); }
      }
    } else {
      for (const key in node) {
        const child = (node as Record<string, unknown>)[key];
        if (child !== null && typeof child === 'object') { stack.push(child); depths.push(depth + 1); }
      }
    }
  }
  return false;
}
