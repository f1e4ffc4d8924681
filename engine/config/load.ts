import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { FlowError } from '../errors/index.js';
import { configSchema, type Config } from './schema.js';

/** A configuration that failed validation: every problem, each with its path. */
export class ConfigError extends FlowError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super('FLOW_ERR_CONFIG_INVALID', { details: `${problems.length} problem(s):\n  - ${problems.join('\n  - ')}` });
    this.problems = problems;
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Environment variables that override the file, and where they land. Every
 * value is still validated by the schema, so PORT=abc is reported like a bad
 * file value, with the variable's name.
 */
const ENV_OVERRIDES: readonly { env: string; path: readonly string[]; type: 'int' | 'string' }[] = [
  { env: 'PORT', path: ['server', 'port'], type: 'int' },
  { env: 'FLOWSTAT_HOST', path: ['server', 'host'], type: 'string' },
  { env: 'FLOWSTAT_DATA_DIR', path: ['dataDir'], type: 'string' },
  { env: 'CLICKHOUSE_URL', path: ['clickhouse', 'url'], type: 'string' },
  { env: 'CLICKHOUSE_USER', path: ['clickhouse', 'user'], type: 'string' },
  { env: 'CLICKHOUSE_PASSWORD', path: ['clickhouse', 'password'], type: 'string' },
  { env: 'CLICKHOUSE_DATABASE', path: ['clickhouse', 'database'], type: 'string' },
  { env: 'FLOWSTAT_ADMIN_TOKEN', path: ['adminToken'], type: 'string' },
  { env: 'FLOWSTAT_LOG_LEVEL', path: ['log', 'level'], type: 'string' },
  { env: 'FLOWSTAT_SERVER', path: ['gateway', 'server'], type: 'string' },
  { env: 'FLOWSTAT_DURABILITY', path: ['storage', 'durability'], type: 'string' },
  { env: 'FLOWSTAT_STATE_STORE', path: ['actors', 'stateStore'], type: 'string' },
  { env: 'FLOWSTAT_THREADS', path: ['actors', 'threads'], type: 'int' },
];

export const CONFIG_ENV_VARS: readonly string[] = ['FLOWSTAT_CONFIG', ...ENV_OVERRIDES.map((o) => o.env)];

export interface LoadOptions {
  /** Config file (JSON or YAML). Defaults to $FLOWSTAT_CONFIG; none means defaults only. */
  readonly path?: string;
  readonly env?: Env;
}

/** Reads, merges and validates the configuration; throws ConfigError listing every problem. */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const path = options.path ?? (env.FLOWSTAT_CONFIG || undefined);
  const raw = path === undefined ? {} : readConfigFile(path);
  return parseConfig(raw, env);
}

export function parseConfig(raw: unknown, env: Env = {}): Config {
  const problems: string[] = [];
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(['(root): the config file must contain an object']);
  }
  const merged = structuredClone(raw) as Record<string, unknown>;
  const fromEnv = new Map<string, string>();
  for (const o of ENV_OVERRIDES) {
    const value = env[o.env];
    if (value === undefined || value === '') continue;
    let parsed: unknown = value;
    if (o.type === 'int') {
      parsed = /^\d+$/.test(value) ? Number(value) : value;
    }
    setPath(merged, o.path, parsed);
    fromEnv.set(o.path.join('.'), o.env);
  }
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(...describeIssue(issue, fromEnv));
    throw new ConfigError(problems);
  }
  return deepFreeze(result.data);
}

function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`config file: cannot read ${path}: ${(err as Error).message}`]);
  }
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true }) ?? {};
  } catch (err) {
    throw new ConfigError([`${path}: ${(err as Error).message.split('\n')[0]}`]);
  }
}

function describeIssue(issue: z.core.$ZodIssue, fromEnv: ReadonlyMap<string, string>): string[] {
  const path = formatPath(issue.path);
  const envName = fromEnv.get(issue.path.join('.'));
  const where = envName === undefined ? path : `${path} (from ${envName})`;
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => `${formatPath([...issue.path, k])}: unknown key`);
  }
  return [`${where}: ${issue.message}`];
}

export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i]!;
    const next = node[key];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
