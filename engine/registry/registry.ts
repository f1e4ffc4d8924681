import type { z } from 'zod';
import { ConfigError, formatPath } from '../config/index.js';
import type { ComponentConfig, ComponentKind, Config } from '../config/index.js';
import { createKeyMatcher, keyProblem, patternProblem, type KeyMatcher } from '../keys/index.js';

/**
 * The component registry: enricher, handler and sink types registered by
 * name, and the topology check that turns the config's component lists into
 * validated instances before anything starts. Every problem across every
 * component is reported together, each with its config path.
 */

export interface ComponentDefinition<O = unknown> {
  readonly kind: ComponentKind;
  /** The name used as `type` in the config. */
  readonly type: string;
  readonly description: string;
  /** Schema of `options`; unknown keys should be rejected by it (z.strictObject). */
  readonly options: z.ZodType<O>;
  /** Enrichers: the namespace their patch is merged under (unique across enrichers). */
  readonly namespace?: string;
  /** Keys this component may emit as derived events (checked as keys). */
  readonly emits?: readonly string[];
}

export interface ResolvedComponent<O = unknown> {
  readonly name: string;
  readonly kind: ComponentKind;
  readonly definition: ComponentDefinition<O>;
  readonly options: O;
  readonly keys: readonly string[];
  readonly timeoutMs: number | undefined;
  /** Where it came from in the config, for messages: `handlers[2]`. */
  readonly path: string;
}

export interface Topology {
  readonly enrichers: readonly ResolvedComponent[];
  readonly handlers: readonly ResolvedComponent[];
  readonly sinks: readonly ResolvedComponent[];
  /** Per kind: which components a key is routed to, compiled once. */
  readonly routes: Readonly<Record<ComponentKind, KeyMatcher<ResolvedComponent>>>;
  /** Things that are allowed but probably wrong (a subscription nothing produces). */
  readonly warnings: readonly string[];
}

export interface Registry {
  register<O>(definition: ComponentDefinition<O>): void;
  get(kind: ComponentKind, type: string): ComponentDefinition | undefined;
  list(kind?: ComponentKind): readonly ComponentDefinition[];
  /** Validates the config's components and their subscriptions; throws ConfigError with every problem. */
  resolve(config: Pick<Config, ComponentKind>): Topology;
}

const KINDS: readonly ComponentKind[] = ['enrichers', 'handlers', 'sinks'];
/** Key prefixes produced without any component: the gateway and protocol adapters. */
const SOURCE_CHANNELS_OPEN = (pattern: string): boolean => !pattern.startsWith('in.sys.');

export function createRegistry(): Registry {
  const defs = new Map<string, ComponentDefinition>();
  const id = (kind: ComponentKind, type: string): string => `${kind}/${type}`;

  function register<O>(definition: ComponentDefinition<O>): void {
    const key = id(definition.kind, definition.type);
    if (defs.has(key)) throw new Error(`component ${key} is already registered`);
    defs.set(key, definition as ComponentDefinition);
  }

  function resolve(config: Pick<Config, ComponentKind>): Topology {
    const problems: string[] = [];
    const warnings: string[] = [];
    const resolved: Record<ComponentKind, ResolvedComponent[]> = { enrichers: [], handlers: [], sinks: [] };
    const namespaces = new Map<string, string>();
    const emitted: string[] = [];

    for (const kind of KINDS) {
      const names = new Set<string>();
      config[kind].forEach((entry: ComponentConfig, index: number) => {
        const path = `${kind}[${index}]`;
        const definition = defs.get(id(kind, entry.type));
        const name = entry.name ?? entry.type;
        if (names.has(name)) problems.push(`${path}.name: "${name}" is used twice among ${kind}; give one a distinct name`);
        names.add(name);
        entry.keys.forEach((pattern, i) => {
          const problem = patternProblem(pattern);
          if (problem !== null) problems.push(`${path}.keys[${i}]: "${pattern}" ${problem}`);
        });
        if (entry.timeoutMs !== undefined && kind !== 'enrichers') problems.push(`${path}.timeoutMs: only enrichers have a timeout`);
        if (definition === undefined) {
          const known = [...defs.values()].filter((d) => d.kind === kind).map((d) => d.type);
          problems.push(`${path}.type: unknown ${kind.slice(0, -1)} type "${entry.type}" (registered: ${known.join(', ') || 'none'})`);
          return;
        }
        const parsed = definition.options.safeParse(entry.options);
        if (!parsed.success) {
          for (const issue of parsed.error.issues) {
            const where = `${path}.options${issue.path.length ? (typeof issue.path[0] === 'number' ? '' : '.') + formatPath(issue.path) : ''}`;
            problems.push(issue.code === 'unrecognized_keys' ? `${where}: unknown key(s) ${issue.keys.join(', ')}` : `${where}: ${issue.message}`);
          }
          return;
        }
        if (definition.namespace !== undefined) {
          const owner = namespaces.get(definition.namespace);
          if (owner !== undefined) problems.push(`${path}: namespace "${definition.namespace}" is already written by ${owner}`);
          namespaces.set(definition.namespace, path);
        }
        for (const key of definition.emits ?? []) {
          const problem = keyProblem(key);
          if (problem !== null) problems.push(`${path}: type "${entry.type}" declares an invalid emitted key "${key}": ${problem}`);
          else emitted.push(key);
        }
        resolved[kind].push({ name, kind, definition, options: parsed.data, keys: entry.keys, timeoutMs: entry.timeoutMs, path });
      });
    }
    if (problems.length > 0) throw new ConfigError(problems);

    // Derived (sys) keys only exist if some component emits them.
    const emitMatcher = createKeyMatcher(emitted.map((k) => ({ pattern: k, value: k })));
    for (const kind of ['enrichers', 'handlers'] as const) {
      for (const c of resolved[kind]) {
        for (const pattern of c.keys) {
          if (SOURCE_CHANNELS_OPEN(pattern)) continue;
          const literal = !pattern.includes('*');
          if (literal && emitMatcher.match(pattern).length === 0) {
            warnings.push(`${c.path}.keys: no component emits "${pattern}"`);
          }
        }
      }
    }

    const routes = {} as Record<ComponentKind, KeyMatcher<ResolvedComponent>>;
    for (const kind of KINDS) {
      routes[kind] = createKeyMatcher(resolved[kind].flatMap((c) => c.keys.map((pattern) => ({ pattern, value: c }))));
    }
    return Object.freeze({ ...resolved, routes: Object.freeze(routes), warnings: Object.freeze(warnings) });
  }

  return {
    register,
    get: (kind, type) => defs.get(id(kind, type)),
    list: (kind) => [...defs.values()].filter((d) => kind === undefined || d.kind === kind),
    resolve,
  };
}
