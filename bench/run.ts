/**
 * `npm run bench [scenario…]`: runs benchmark scenarios and records each
 * result as JSON and Markdown in bench/results/, with the machine, Node
 * version and git commit, so numbers can be compared across runs. Each
 * scenario runs its own baselines in the same run (docs/benchmarks.md).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { metTarget, type Scenario, type ScenarioResult } from './lib/scenario.js';
import { actorStageScenario } from './scenarios/actor-stage.js';
import { actorSystemScenario } from './scenarios/actor-system.js';
import { e2eScenario } from './scenarios/e2e.js';
import { enrichmentScenario } from './scenarios/enrichment.js';
import { gatewayScenario } from './scenarios/gateway.js';
import { sinksScenario } from './scenarios/sinks.js';
import { queriesScenario } from './scenarios/queries.js';
import { httpScenario } from './scenarios/http.js';

const SCENARIOS: readonly Scenario[] = [actorSystemScenario, gatewayScenario, sinksScenario, enrichmentScenario, actorStageScenario, queriesScenario, httpScenario, e2eScenario];
const RESULTS_DIR = resolve(import.meta.dirname, '../../bench/results');

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

function machine(): Record<string, string | number> {
  const cpu = cpus();
  return {
    cpu: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

/** The versions a result depends on: flowstat's, the libraries on the hot path, the chDB engine and the ClickHouse server package. */
function versions(): Record<string, string> {
  const root = resolve(import.meta.dirname, '../..');
  const pkg = (name: string): string => {
    try {
      return (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return 'not installed';
    }
  };
  let server = 'not installed';
  try {
    server = execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'clickhouse-server'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || server;
  } catch { /* no dpkg, or the package is absent */ }
  return {
    flowstat: (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version,
    chdb: pkg('chdb'),
    chdbEngine: pkg('@chdb/lib-linux-x64-gnu'),
    clickhouseServer: server,
    uWebSockets: pkg('uWebSockets.js'),
    ws: pkg('ws'),
    clickhouseClient: pkg('@clickhouse/client'),
    xstate: pkg('xstate'),
    msgpackr: pkg('msgpackr'),
  };
}

function toMarkdown(result: ScenarioResult, meta: Record<string, unknown>): string {
  const rows = result.metrics.map((m) => {
    const ok = metTarget(m);
    const target = m.target ? `${m.target.op} ${m.target.value.toLocaleString('en-US')}` : '';
    const status = ok === undefined ? '' : ok ? 'met' : '**missed**';
    return `| ${m.name} | ${m.value.toLocaleString('en-US')} ${m.unit} | ${target} | ${status} | ${m.note ?? ''} |`;
  });
  return [
    `# ${result.scenario}: ${result.description}`,
    '',
    `Run ${String(meta.date)} at commit ${String(meta.commit)} on ${JSON.stringify(meta.machine)}, in ${String(meta.durationS)} s.`,
    `Versions: ${JSON.stringify(meta.versions)}.`,
    `Parameters: ${JSON.stringify(result.params)}.`,
    '',
    '| metric | value | target | status | note |',
    '|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

async function main(names: readonly string[]): Promise<number> {
  const chosen = names.length === 0 ? SCENARIOS : names.map((n) => {
    const s = SCENARIOS.find((x) => x.name === n);
    if (s === undefined) throw new Error(`unknown scenario "${n}" (have: ${SCENARIOS.map((x) => x.name).join(', ')})`);
    return s;
  });
  mkdirSync(RESULTS_DIR, { recursive: true });
  let missed = 0;
  const summary: { scenario: string; seconds: number; targets: string }[] = [];
  const runVersions = versions();
  for (const scenario of chosen) {
    const started = Date.now();
    const progress = (message: string): void => {
      process.stderr.write(`[${scenario.name} ${((Date.now() - started) / 1000).toFixed(1)}s] ${message}\n`);
    };
    const result = await scenario.run(progress);
    const durationS = Math.round((Date.now() - started) / 1000);
    const meta = { date: new Date().toISOString(), commit: gitCommit(), machine: machine(), versions: runVersions, durationS };
    // A scenario run against a ClickHouse server (--server) keeps its own files beside the embedded-store ones.
    const file = `${scenario.name}${process.argv.includes('--server') ? '-server' : ''}`;
    writeFileSync(join(RESULTS_DIR, `${file}.json`), `${JSON.stringify({ ...meta, ...result }, null, 2)}\n`);
    writeFileSync(join(RESULTS_DIR, `${file}.md`), toMarkdown(result, meta));
    console.table(result.metrics.map((m) => ({
      metric: m.name, value: m.value, unit: m.unit,
      target: m.target ? `${m.target.op} ${m.target.value}` : '',
      met: metTarget(m) ?? '',
    })));
    const withTarget = result.metrics.filter((m) => metTarget(m) !== undefined);
    const missedHere = withTarget.filter((m) => metTarget(m) === false).length;
    missed += missedHere;
    summary.push({ scenario: file, seconds: durationS, targets: withTarget.length === 0 ? '—' : `${withTarget.length - missedHere} of ${withTarget.length} met` });
  }
  if (chosen.length > 1) console.table(summary);
  if (missed > 0) process.stderr.write(`${missed} target(s) missed — see bench/results/\n`);
  return 0;
}

// Flags (`--server`) are for the scenarios, which read process.argv themselves.
main(process.argv.slice(2).filter((a) => !a.startsWith('--'))).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
