/**
 * engine/config — one schema for the config file (JSON or YAML) plus the
 * environment overrides; unknown keys rejected, every problem reported at once
 * with its path, the result frozen. Nothing starts until this passes.
 */
export { loadConfig, parseConfig, ConfigError, CONFIG_ENV_VARS, formatPath, deepFreeze } from './load.js';
export type { LoadOptions } from './load.js';
export * from './schema.js';
