import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSilentLogger } from '../../engine/index.js';
import { createQueryService, type QueryResult } from '../../query/index.js';
import { createChdbStore, migrate } from '../../sinks/index.js';
import { round } from '../lib/measure.js';
import type { Metric, Scenario, ScenarioResult } from '../lib/scenario.js';

/**
 * The query API's heavy reports on 10M events in chDB (one project, 30
 * days, 400k users): a three-step ordered funnel with a 1 h window and
 * daily retention cohorts (7 periods), each over the 30 days, through the
 * query service exactly as /api/v1/query runs them (bound parameters, the
 * funnel evaluated by the actors' funnel library). No event is stored twice
 * here, so the funnel's read skips FINAL (query/reports/funnel.ts checks it
 * on every run); retention never needs it.
 *
 * The events are made inside chDB by INSERT … SELECT FROM numbers() with
 * deterministic hash expressions (the same data every run): users and
 * times by cityHash64, keys by share — page 60%, shop.view 8%, shop.cart 2%,
 * shop.buy 0.7%, signup 4%, the rest clicks. Each report runs once to warm
 * up, then RUNS times; the median and the slowest are reported.
 *
 * Generating the events takes minutes. BENCH_QUERY_DATA=<dir> keeps the chDB
 * data there and reuses it on the next run when it holds exactly the events
 * this scenario makes (same count; the data is deterministic), so query work
 * can be measured again in seconds (data kept from before schema 4, without
 * arrival stamps, is made again). Without it the data lives in a temporary
 * directory removed at the end.
 */

const EVENTS = Number(process.env.BENCH_QUERY_EVENTS ?? 10_000_000);
const USERS = 400_000;
const DAYS = 30;
const RUNS = 5;
const BASE = Date.UTC(2026, 5, 1);
const TARGET_S = 1;

function keyExpr(h: string): string {
  return `multiIf(${h} < 600, 'in.gen.track.page', ${h} < 680, 'in.gen.shop.view', ${h} < 700, 'in.gen.shop.cart', ${h} < 707, 'in.gen.shop.buy', ${h} < 747, 'in.gen.track.signup', 'in.gen.track.click')`;
}

export const queriesScenario: Scenario = {
  name: 'queries',
  description: `Query API on ${EVENTS / 1e6}M events in chDB over ${DAYS} days: funnel (3 steps, ordered, 1 h window) and retention (daily cohorts, 7 periods)`,
  async run(progress): Promise<ScenarioResult> {
    const kept = process.env.BENCH_QUERY_DATA;
    const dir = kept !== undefined && kept !== '' ? kept : mkdtempSync(join(tmpdir(), 'flowstat-bench-queries-'));
    try {
      const store = await createChdbStore({ path: join(dir, 'chdb'), database: 'bench' });
      await migrate(store, createSilentLogger());
      const [held] = await store.query<{ n: string; unstamped: string }>('SELECT count() AS n, countIf(arrival = 0) AS unstamped FROM bench.events');
      const have = Number(held?.n);
      // Data kept from before schema 4 has no arrival stamps: made again.
      const reuse = kept !== undefined && have === EVENTS && Number(held?.unstamped) === 0;
      if (!reuse && have > 0) await store.command('TRUNCATE TABLE bench.events');
      progress(reuse ? `reusing ${have} events in ${dir}` : `generating ${EVENTS} events`);
      const t0 = performance.now();
      if (!reuse) {
        // n → user, time, key; ts ascending per n is irrelevant: every user's events are spread over the 30 days.
        // arrival as the actor stamps it (received ms × 1024), made unique within a ms by the event number.
        await store.command(`INSERT INTO bench.events (event_id, project_id, event_date, key, channel, service, name, uid, session_id, seq, ts, received_at, arrival, page_url, utm_source, geo_country, props)
          SELECT generateUUIDv4(number) AS event_id, 1, toDate(t) AS event_date, k, 'gen', splitByChar('.', k)[3], splitByChar('.', k)[4],
            concat('u', toString(cityHash64(number, 1) % ${USERS})) AS uid, concat(uid, '-', toString(intDiv(toUnixTimestamp64Milli(t), 1800000))),
            1, t, t + toIntervalMillisecond(150), toUInt64(toUnixTimestamp64Milli(t) + 150) * 1024 + number % 1024, concat('https://shop.example/p/', toString(number % 50)),
            ['', 'google', 'newsletter'][1 + number % 3], ['DE', 'FR', 'US', 'BR'][1 + number % 4],
            if(k = 'in.gen.shop.buy', map('price', toString(number % 300)), map())
          FROM (SELECT number, fromUnixTimestamp64Milli(toInt64(${BASE} + cityHash64(number, 2) % ${DAYS * 86_400_000}), 'UTC') AS t, ${keyExpr('cityHash64(number, 3) % 1000')} AS k
                FROM numbers(${EVENTS}))`);
      }
      const loadS = (performance.now() - t0) / 1000;
      const stored = Number((await store.query<{ n: string }>('SELECT count() AS n FROM bench.events'))[0]?.n);
      // chDB merges the fresh parts in background threads of this process: let
      // it finish (up to 3 minutes) so the reports are not timed, and their CPU
      // not counted, while a merge runs beside them.
      const merging = async (): Promise<number> => Number((await store.query<{ n: string }>("SELECT count() AS n FROM system.merges WHERE database = 'bench'"))[0]?.n);
      for (let waited = 0; waited < 180 && (await merging()) > 0; waited++) await new Promise((r) => setTimeout(r, 1000));
      const parts = Number((await store.query<{ n: string }>("SELECT count() AS n FROM system.parts WHERE database = 'bench' AND table = 'events' AND active"))[0]?.n);
      progress(`${stored} events in ${round(loadS, 1)} s, ${parts} parts`);

      const service = createQueryService({ store: async () => store, defaultProjectId: 1, now: () => BASE + 40 * 86_400_000 });
      const range = { from: [new Date(BASE).toISOString()], to: [new Date(BASE + DAYS * 86_400_000).toISOString()], project: ['1'] };
      // Wall time, and the process's CPU time (chDB's threads included): on a
      // shared machine the wall time moves with the neighbours' load, the CPU
      // time much less.
      const time = async (name: string, params: Record<string, string[]>): Promise<{ median: number; max: number; cpu: number; result: QueryResult }> => {
        let result = await service.run(name, params);
        const runs: number[] = [];
        const cpu: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          const t = performance.now();
          const c = process.cpuUsage();
          result = await service.run(name, params);
          runs.push((performance.now() - t) / 1000);
          const used = process.cpuUsage(c);
          cpu.push((used.user + used.system) / 1e6);
        }
        runs.sort((a, b) => a - b);
        cpu.sort((a, b) => a - b);
        progress(`${name}: ${runs.map((r) => round(r, 3)).join(' ')} s (CPU ${cpu.map((r) => round(r, 2)).join(' ')} s)`);
        return { median: runs[Math.floor(runs.length / 2)]!, max: runs[runs.length - 1]!, cpu: cpu[Math.floor(cpu.length / 2)]!, result };
      };
      const funnel = await time('funnel', { ...range, step: ['in.gen.shop.view', 'in.gen.shop.cart', 'in.gen.shop.buy'], window: ['1h'] });
      const retention = await time('retention', { ...range, period: ['day'], periods: ['7'] });
      await store.close();

      const metrics: Metric[] = [
        { name: 'funnel over 30 days, median', value: round(funnel.median, 3), unit: 's', target: { op: '<=', value: TARGET_S } },
        { name: 'funnel over 30 days, slowest', value: round(funnel.max, 3), unit: 's' },
        { name: 'funnel CPU per run, median', value: round(funnel.cpu, 2), unit: 's', note: 'user + system, all threads' },
        { name: 'funnel events read into the evaluator', value: Number(funnel.result.meta.eventsRead), unit: 'events', note: 'events before a user\'s first step 0 are left in the store' },
        { name: 'funnel conversions', value: Number(funnel.result.meta.conversions), unit: 'attempts', note: `of ${Number(funnel.result.meta.attempts).toLocaleString('en-US')} attempts; random times rarely make 3 steps within 1 h; read ${funnel.result.meta.final === true ? 'with' : 'without'} FINAL` },
        { name: 'retention over 30 days, median', value: round(retention.median, 3), unit: 's', target: { op: '<=', value: TARGET_S } },
        { name: 'retention over 30 days, slowest', value: round(retention.max, 3), unit: 's' },
        { name: 'retention CPU per run, median', value: round(retention.cpu, 2), unit: 's', note: 'user + system, all threads' },
        { name: 'retention cohort users', value: Number(retention.result.meta.users), unit: 'users' },
        { name: 'events stored', value: stored, unit: 'events' },
        ...(reuse ? [] : [{ name: 'load (INSERT … SELECT)', value: round(loadS, 1), unit: 's' }]),
        { name: 'active parts', value: parts, unit: 'parts', note: `${reuse ? `data reused from ${dir}` : 'as loaded'}, background merges finished before timing` },
      ];
      return {
        scenario: 'queries', description: queriesScenario.description,
        params: { events: EVENTS, users: USERS, days: DAYS, runs: RUNS, store: 'chdb' },
        metrics,
      };
    } finally {
      if (kept === undefined || kept === '') rmSync(dir, { recursive: true, force: true });
    }
  },
};
