/** What a benchmark scenario reports. The runner adds machine, versions and commit. */

export interface Metric {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  /** A target from the issue tracker: `>=` or `<=` a number. */
  readonly target?: { readonly op: '>=' | '<='; readonly value: number };
  readonly note?: string;
}

export interface ScenarioResult {
  readonly scenario: string;
  readonly description: string;
  readonly params: Readonly<Record<string, string | number | boolean>>;
  readonly metrics: readonly Metric[];
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  run(progress: (message: string) => void): Promise<ScenarioResult>;
}

export function metTarget(m: Metric): boolean | undefined {
  if (m.target === undefined) return undefined;
  return m.target.op === '>=' ? m.value >= m.target.value : m.value <= m.target.value;
}
