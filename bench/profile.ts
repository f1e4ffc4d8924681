import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * `node dist/bench/profile.js <file.cpuprofile | dir> [--top N] [--match RE]`:
 * reads a V8 CPU profile (node --cpu-prof; the newest in a directory) and
 * prints where the time went — self time per function, inclusive time per
 * function (filtered by --match, default flowstat's own code), and the
 * longest stretches the event loop was busy without a break (what a reply
 * waits behind). docs/performance.md shows how the numbers there were taken.
 */

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number }

function load(path: string): Profile {
  let file = path;
  if (statSync(path).isDirectory()) {
    const newest = readdirSync(path).filter((f) => f.endsWith('.cpuprofile')).sort().pop();
    if (newest === undefined) throw new Error(`no .cpuprofile in ${path}`);
    file = join(path, newest);
  }
  return JSON.parse(readFileSync(file, 'utf8')) as Profile;
}

const label = (cf: CallFrame): string =>
  `${cf.functionName || '(anonymous)'} ${cf.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${cf.lineNumber + 1}`;

function analyse(p: Profile, top: number, match: RegExp): void {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const stretches: { atS: number; ms: number; top: string }[] = [];
  let total = 0;
  let t = p.startTime;
  let busyFrom = -1;
  let busyTop = new Map<string, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const d = p.timeDeltas[i] ?? 0;
    total += d;
    t += d;
    const leaf = byId.get(p.samples[i]!)!;
    const leafLabel = label(leaf.callFrame);
    self.set(leafLabel, (self.get(leafLabel) ?? 0) + d);
    const seen = new Set<string>();
    let outermost = leafLabel;
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id)!;
      if (parent.get(id) === undefined) break; // (root)
      const l = label(n.callFrame);
      outermost = l;
      if (!seen.has(l)) { seen.add(l); inclusive.set(l, (inclusive.get(l) ?? 0) + d); }
    }
    if (leaf.callFrame.functionName !== '(idle)') {
      if (busyFrom < 0) { busyFrom = t; busyTop = new Map(); }
      busyTop.set(outermost, (busyTop.get(outermost) ?? 0) + d);
    } else if (busyFrom >= 0) {
      const ms = (t - busyFrom) / 1000;
      const [main] = [...busyTop].sort((a, b) => b[1] - a[1]);
      if (ms >= 20) stretches.push({ atS: (busyFrom - p.startTime) / 1e6, ms, top: main?.[0] ?? '' });
      busyFrom = -1;
    }
  }
  const pct = (v: number): string => `${((v / total) * 100).toFixed(1).padStart(5)}%`;
  console.log(`profile: ${(total / 1e6).toFixed(1)} s sampled`);
  console.log('\nself time');
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(pct(v), k);
  console.log(`\ninclusive time (${match.source})`);
  for (const [k, v] of [...inclusive].filter(([k]) => match.test(k)).sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(pct(v), k);
  const buckets = { '20-50 ms': 0, '50-100 ms': 0, '100-200 ms': 0, '>= 200 ms': 0 };
  for (const s of stretches) buckets[s.ms < 50 ? '20-50 ms' : s.ms < 100 ? '50-100 ms' : s.ms < 200 ? '100-200 ms' : '>= 200 ms']++;
  console.log('\nbusy stretches without an idle sample (the event loop did not get round to anything else):', JSON.stringify(buckets));
  for (const s of stretches.sort((a, b) => b.ms - a.ms).slice(0, Math.min(10, top))) console.log(`${s.ms.toFixed(0).padStart(5)} ms at ${s.atS.toFixed(2)} s, mostly ${s.top}`);
}

const args = process.argv.slice(2);
const path = args.find((a) => !a.startsWith('--') && args[args.indexOf(a) - 1] !== '--top' && args[args.indexOf(a) - 1] !== '--match');
if (path === undefined) {
  process.stderr.write('usage: node dist/bench/profile.js <file.cpuprofile | dir> [--top N] [--match RE]\n');
  process.exit(2);
}
const flag = (name: string): string | undefined => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
analyse(load(path), Number(flag('--top') ?? 30), new RegExp(flag('--match') ?? '^(?!.*node_modules).*dist/'));
