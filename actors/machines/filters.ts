import { z } from 'zod';
import type { Envelope } from '../../engine/envelope/index.js';

/**
 * Property filters on an envelope: `{ field: 'data.price', op: 'gte', value: 100 }`.
 * Compiled once into a predicate, so an event pays for a field walk and one
 * comparison, never for parsing the filter. No type coercion: `gt 100` does
 * not match the string "150" (a client that sends numbers as strings gets a
 * predictable "no match", not a locale-dependent guess).
 */

/** Envelope fields a filter may name; anything else must be under `data.`. */
export const FILTER_ENVELOPE_FIELDS = Object.freeze([
  'key', 'channel', 'service', 'name', 'uid', 'userId', 'projectId',
  'pageUrl', 'pageReferrer', 'pageTitle', 'userAgent',
] as const);

type EnvelopeField = (typeof FILTER_ENVELOPE_FIELDS)[number];

const ENVELOPE_FIELD_SET: ReadonlySet<string> = new Set(FILTER_ENVELOPE_FIELDS);
const DATA_PATH = /^data(\.[^.\s]+)+$/;

const fieldSchema = z.string().refine(
  (f) => ENVELOPE_FIELD_SET.has(f) || DATA_PATH.test(f),
  `must be an envelope field (${FILTER_ENVELOPE_FIELDS.join(', ')}) or data.<path>`,
);
const scalarSchema = z.union([z.string(), z.number(), z.boolean(), z.null()]);

export const filterSchema = z.discriminatedUnion('op', [
  z.strictObject({ field: fieldSchema, op: z.enum(['eq', 'ne']), value: scalarSchema }),
  z.strictObject({ field: fieldSchema, op: z.enum(['gt', 'gte', 'lt', 'lte']), value: z.number() }),
  z.strictObject({ field: fieldSchema, op: z.literal('in'), value: z.array(scalarSchema).min(1).max(1000) }),
  /** A string field containing the substring, or an array field containing the element. */
  z.strictObject({ field: fieldSchema, op: z.literal('contains'), value: z.union([z.string(), z.number(), z.boolean()]) }),
  /** `value: false` matches a missing (or null) field. */
  z.strictObject({ field: fieldSchema, op: z.literal('exists'), value: z.boolean().default(true) }),
]);

export type FilterConfig = z.output<typeof filterSchema>;
export type EnvelopePredicate = (envelope: Envelope) => boolean;

const ALWAYS: EnvelopePredicate = () => true;

/** One predicate for a list of filters (all must pass); an empty list is free. */
export function compileFilters(filters: readonly FilterConfig[]): EnvelopePredicate {
  if (filters.length === 0) return ALWAYS;
  const predicates = filters.map(compileFilter);
  if (predicates.length === 1) return predicates[0]!;
  return (envelope) => {
    for (const p of predicates) if (!p(envelope)) return false;
    return true;
  };
}

function compileFilter(filter: FilterConfig): EnvelopePredicate {
  const read = compileField(filter.field);
  switch (filter.op) {
    case 'eq': { const v = filter.value; return (e) => read(e) === v; }
    case 'ne': { const v = filter.value; return (e) => read(e) !== v; }
    case 'gt': { const v = filter.value; return (e) => { const x = read(e); return typeof x === 'number' && x > v; }; }
    case 'gte': { const v = filter.value; return (e) => { const x = read(e); return typeof x === 'number' && x >= v; }; }
    case 'lt': { const v = filter.value; return (e) => { const x = read(e); return typeof x === 'number' && x < v; }; }
    case 'lte': { const v = filter.value; return (e) => { const x = read(e); return typeof x === 'number' && x <= v; }; }
    case 'in': { const set = new Set<unknown>(filter.value); return (e) => set.has(read(e)); }
    case 'contains': {
      const v = filter.value;
      const needle = String(v);
      return (e) => {
        const x = read(e);
        if (typeof x === 'string') return x.includes(needle);
        return Array.isArray(x) && x.includes(v);
      };
    }
    case 'exists': {
      const want = filter.value;
      return (e) => { const x = read(e); return (x !== undefined && x !== null) === want; };
    }
  }
}

type FieldReader = (envelope: Envelope) => unknown;

function compileField(field: string): FieldReader {
  if (ENVELOPE_FIELD_SET.has(field)) {
    const name = field as EnvelopeField;
    return (e) => e[name];
  }
  const path = field.split('.').slice(1);
  return (e) => {
    let node: unknown = e.data;
    for (const seg of path) {
      // Own properties only: `data.constructor` must not find Object's prototype.
      if (node === null || typeof node !== 'object' || !Object.hasOwn(node, seg)) return undefined;
      node = (node as Record<string, unknown>)[seg];
    }
    return node;
  };
}
