import { literal } from '../sinks/clickhouse/store.js';

/**
 * The one way a query is built from input: every value goes through
 * `SqlBuilder`, never into the SQL text by concatenation.
 *
 * - Modern stores (chDB, ClickHouse >= 22.3) get each value as a real query
 *   parameter: the SQL holds `{p0:String}` and the value travels beside it
 *   (chDB's queryBind, the HTTP client's `param_*`), so the server parses it
 *   as a value of that type and never as SQL.
 * - ClickHouse 18.16 has no query parameters (they came in 19.x). There the
 *   value is rendered by `literal` (sinks/clickhouse/store.ts), the one vetted
 *   string escaper, after a type check: numbers must be finite (integers for
 *   the integer types) and are printed by JavaScript, strings are escaped.
 *
 * Identifiers (columns, map keys) never come from here: they come from the
 * allowlists in columns.ts.
 */

export type ParamType = 'String' | 'UInt32' | 'Int64' | 'Float64' | 'Array(String)';

export interface BuiltQuery {
  readonly sql: string;
  /** Parameter values (modern stores); empty when values were rendered as literals. */
  readonly params: Readonly<Record<string, unknown>> | undefined;
}

export class SqlBuilder {
  private readonly values: Record<string, unknown> = {};
  private count = 0;

  constructor(readonly modern: boolean) {}

  /** A string value. */
  str(value: string): string {
    return this.bind(value, 'String');
  }

  /** A non-negative integer below 2^32. */
  u32(value: number): string {
    if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw new Error(`not a UInt32: ${value}`);
    return this.bind(value, 'UInt32');
  }

  /** A safe integer (timestamps in ms). */
  i64(value: number): string {
    if (!Number.isSafeInteger(value)) throw new Error(`not a safe integer: ${value}`);
    return this.bind(value, 'Int64');
  }

  /** A finite number. */
  f64(value: number): string {
    if (!Number.isFinite(value)) throw new Error(`not a finite number: ${value}`);
    return this.bind(value, 'Float64');
  }

  /** An array of strings (IN lists). */
  strs(values: readonly string[]): string {
    return this.bind(values, 'Array(String)');
  }

  /** The SQL and its parameters. */
  build(sql: string): BuiltQuery {
    return { sql, params: this.modern ? { ...this.values } : undefined };
  }

  private bind(value: string | number | readonly string[], type: ParamType): string {
    if (this.modern) {
      const name = `p${this.count++}`;
      this.values[name] = value;
      return `{${name}:${type}}`;
    }
    return render(value, type);
  }
}

/** A value as an 18.16 literal: numbers were type-checked by the caller, strings go through `literal`. */
function render(value: string | number | readonly string[], type: ParamType): string {
  switch (type) {
    case 'String':
      return literal(value as string);
    case 'Array(String)':
      return `[${(value as readonly string[]).map((v) => literal(v)).join(', ')}]`;
    case 'UInt32':
    case 'Int64':
      // A checked integer as plain digits (LIMIT takes no expression on 18.16).
      return String(value);
    case 'Float64':
      return `toFloat64(${String(value)})`;
  }
}
