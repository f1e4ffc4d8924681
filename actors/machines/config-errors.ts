import type { z } from 'zod';
import { ConfigError, formatPath } from '../../engine/config/load.js';

/**
 * Zod issues → one ConfigError listing every problem with its path, the way
 * engine/config reports the main file. `prefix` places the path inside the
 * caller's config (e.g. `handlers[2].options.funnels`).
 */
export function configErrorFrom(error: z.ZodError, prefix: readonly PropertyKey[] = []): ConfigError {
  const problems: string[] = [];
  for (const issue of error.issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) problems.push(`${formatPath([...path, k])}: unknown key`);
    } else {
      problems.push(`${formatPath(path)}: ${issue.message}`);
    }
  }
  return new ConfigError(problems);
}
