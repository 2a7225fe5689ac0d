/**
 * The noisy neighbour (issue 26): one caller floods 32 connections of the most expensive reads while
 * another looks up single trips. Run against the service with its protection (the defaults) and
 * without it (ADMISSION_ENABLED=false), round by round, so each round's two figures see the same
 * machine moments. Reported as ratios of one run: the neighbour's throughput against its own lone
 * throughput, its p99, the flooder's share, and which statuses the flooder was refused with. Also
 * the cost of the protection where nobody floods: point lookups and cached counts, protected
 * against unprotected, in alternating one-second slices. Results in bench/NEIGHBOUR.md.
 *
 * The two callers are told apart as a proxy in front of the service would tell them apart: both
 * servers trust the loopback proxy (TRUSTED_PROXIES), and each load generator sends its caller's
 * address in X-Forwarded-For.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { waitForIdleDatabase } from './idleDatabase.ts';
import { summarizeLatencies } from './latency.ts';
import type { LoadResult, RequestPlan } from './loadPlan.ts';
import { startLoadGenerator } from './loadGeneratorProcess.ts';
import { startEntryPoint, type ServerProcess } from './serverProcess.ts';
import type { BenchSettings } from './settings.ts';

const FLOODER = '198.51.100.1';
const NEIGHBOUR = '198.51.100.2';
const FLOOD_CONNECTIONS = 32;
const NEIGHBOUR_CONNECTIONS = 8;
const NO_CACHE = { 'cache-control': 'no-cache' };
const PASSED_THROUGH = /^(DB_POOL_SIZE|DB_MAX_OVERFLOW|ADMISSION_[A-Z_]+|CALLER_[A-Z_]+|DB_SCAN_[A-Z_]+|DB_POOL_WAIT_MS|CACHE_REFRESH_INTERVAL)$/;

interface Round {
  id: string;
  label: string;
  flood: RequestPlan;
  /** Requested once before the round, so it measures the steady state rather than the first load. */
  warm?: string;
}

/** What one caller got in one round. */
interface CallerFigures {
  okPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  statusCodes: Record<string, number>;
  errors: number;
}

interface RoundFigures {
  round: string;
  label: string;
  protection: 'on' | 'off';
  neighbour: CallerFigures;
  flooder: CallerFigures;
  /** The neighbour's 2xx throughput as a share of its lone throughput (same server, same run). */
  neighbourShare: number;
  /** Refusals of the flooder that carried Retry-After, of all its refusals (the generator counts them). */
}

function figures(result: LoadResult): CallerFigures {
  const ok = Object.entries(result.statusCodes)
    .filter(([code]) => code.startsWith('2'))
    .reduce((n, [, count]) => n + count, 0);
  const latency = summarizeLatencies([result.latencies]);
  return {
    okPerSecond: result.durationSeconds > 0 ? ok / result.durationSeconds : 0,
    p50Ms: latency.p50,
    p99Ms: latency.p99,
    statusCodes: result.statusCodes,
    errors: result.errors + result.timeouts,
  };
}

function rounds(rows: number): Round[] {
  const caller = { 'x-forwarded-for': FLOODER };
  return [
    {
      id: 'same-url',
      label: 'the same URL with no-cache: GET /trips/analytics',
      flood: { kind: 'fixed', path: '/trips/analytics', headers: { ...NO_CACHE, ...caller } },
      warm: '/trips/analytics',
    },
    {
      id: 'distinct-misses',
      label: 'distinct cache misses: GET /trips/pages?page=N&include_count=true',
      flood: {
        kind: 'randomKey',
        path: '/trips/pages?page={id}&page_size=100&include_count=true',
        maxId: Math.floor(rows / 100),
        headers: caller,
      },
    },
    // Round 3 (a generated table's unindexed filter) waits for the PostgREST dialect (issue 20): the
    // generated tables filter only on indexed columns so far.
  ];
}

const rate = (figure: CallerFigures) => Math.round(figure.okPerSecond).toLocaleString('en-US');
const percent = (ratio: number) => `${Math.round(ratio * 100)}%`;
const codes = (statusCodes: Record<string, number>) =>
  Object.entries(statusCodes)
    .map(([code, n]) => `${code}: ${n}`)
    .join(', ');

export async function runNeighbourBench(options: {
  settings: BenchSettings;
  dbEnv: Record<string, string>;
  admin: pg.Client;
  root: string;
  outDir: string;
  log: (message: string) => void;
}): Promise<RoundFigures[]> {
  const { settings, dbEnv, admin, root, outDir, log } = options;
  const seconds = Math.max(2, settings.durationSeconds);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    ...dbEnv,
    PORT: '0',
    LOG_LEVEL: 'info',
    TRUSTED_PROXIES: '127.0.0.1,::1',
    // The pool and the protection's settings pass through, to compare budgets: `DB_SCAN_SHARE=0.1 BENCH_NEIGHBOUR=1 npm run bench`.
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => PASSED_THROUGH.test(name))),
  };
  mkdirSync(join(outDir, 'out'), { recursive: true });
  const logFiles = [join(outDir, 'out', 'neighbour-on.log'), join(outDir, 'out', 'neighbour-off.log')];
  const servers: Record<'on' | 'off', ServerProcess> = {
    on: await startEntryPoint({ name: 'protected', build: 'tsx', root, env, logFile: join(outDir, 'out', 'neighbour-on.log') }),
    off: await startEntryPoint({
      name: 'unprotected',
      build: 'tsx',
      root,
      env: { ...env, ADMISSION_ENABLED: 'false' },
      logFile: join(outDir, 'out', 'neighbour-off.log'),
    }),
  };
  const flooder = await startLoadGenerator();
  const neighbour = await startLoadGenerator();
  const lookups: RequestPlan = { kind: 'randomKey', path: '/trips/{id}', maxId: settings.rows, headers: { 'x-forwarded-for': NEIGHBOUR } };
  const results: RoundFigures[] = [];
  const cost: Array<{ scenario: string; on: number; off: number }> = [];
  try {
    const lone: Record<'on' | 'off', CallerFigures> = {} as Record<'on' | 'off', CallerFigures>;
    for (const protection of ['on', 'off'] as const) {
      const origin = servers[protection].origin;
      await neighbour.run({ origin, connections: NEIGHBOUR_CONNECTIONS, durationSeconds: 1, plan: lookups }); // warm-up
      lone[protection] = figures(await neighbour.run({ origin, connections: NEIGHBOUR_CONNECTIONS, durationSeconds: seconds, plan: lookups }));
      log(`neighbour alone, protection ${protection}: ${rate(lone[protection])} req/s, p99 ${lone[protection].p99Ms.toFixed(1)} ms`);
      await waitForIdleDatabase(admin, undefined, log);
    }
    for (const round of rounds(settings.rows)) {
      for (const protection of ['on', 'off'] as const) {
        const origin = servers[protection].origin;
        if (round.warm) await (await fetch(`${origin}${round.warm}`)).arrayBuffer();
        const [flood, looked] = await Promise.all([
          flooder.run({ origin, connections: FLOOD_CONNECTIONS, durationSeconds: seconds, plan: round.flood }),
          neighbour.run({ origin, connections: NEIGHBOUR_CONNECTIONS, durationSeconds: seconds, plan: lookups }),
        ]);
        const figure: RoundFigures = {
          round: round.id,
          label: round.label,
          protection,
          neighbour: figures(looked),
          flooder: figures(flood),
          neighbourShare: lone[protection].okPerSecond > 0 ? figures(looked).okPerSecond / lone[protection].okPerSecond : 0,
        };
        results.push(figure);
        log(
          `${round.id}, protection ${protection}: neighbour ${rate(figure.neighbour)} req/s (${percent(figure.neighbourShare)} of alone), p99 ${figure.neighbour.p99Ms.toFixed(1)} ms; ` +
            `flooder ${rate(figure.flooder)} 2xx/s, ${codes(figure.flooder.statusCodes)}`,
        );
        // The unprotected server still has the flood queued in its pool: let it drain before the next round.
        await waitForIdleDatabase(admin, 180_000, log);
      }
    }
    // The protection's cost where nobody floods: the same loads, protected and not, in alternating slices.
    const plain: Array<{ scenario: string; plan: RequestPlan }> = [
      { scenario: 'GET /trips/{id}, random ids', plan: { kind: 'randomTrip', maxId: settings.rows } },
      { scenario: 'GET /trips/count (cached)', plan: { kind: 'fixed', path: '/trips/count' } },
    ];
    for (const { scenario, plan } of plain) {
      const served = { on: 0, off: 0 };
      for (let slice = 0; slice < Math.max(3, settings.rounds); slice++) {
        for (const protection of ['on', 'off'] as const) {
          const result = await neighbour.run({ origin: servers[protection].origin, connections: 32, durationSeconds: 1, plan });
          served[protection] += result.requests;
        }
      }
      cost.push({ scenario, ...served });
      log(`plain ${scenario}: protected ${percent(served.on / served.off)} of unprotected`);
    }
  } finally {
    flooder.stop();
    neighbour.stop();
    await Promise.all([servers.on.stop(), servers.off.stop()]);
    if (!settings.keepLogs) for (const file of logFiles) rmSync(file, { force: true });
  }
  writeFileSync(join(outDir, 'NEIGHBOUR.md'), renderNeighbour(results, cost, seconds));
  log(`wrote ${join(outDir, 'NEIGHBOUR.md')}`);
  return results;
}

function renderNeighbour(results: RoundFigures[], cost: Array<{ scenario: string; on: number; off: number }>, seconds: number): string {
  const lines = [
    '# Noisy neighbour',
    '',
    `Written by \`npm run bench\` (bench/noisyNeighbour.ts; \`BENCH_NEIGHBOUR=1\` runs it alone). One caller floods ${FLOOD_CONNECTIONS} connections for ${seconds} s per round while a second caller looks up random trips over ${NEIGHBOUR_CONNECTIONS} connections; the service as \`npm start\` runs it, with its protection (defaults) and with ADMISSION_ENABLED=false, round by round. Only the ratios of one run count. Targets (issue 26): the neighbour keeps at least 50% of its lone throughput with p99 at most 100 ms; the flooder gets a share (not zero) and is refused only with 429/503.`,
    '',
    '| Round | Protection | Neighbour req/s | of alone | Neighbour p99 ms | Flooder 2xx/s | Flooder statuses | Errors | Met |',
    '| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | --- |',
  ];
  for (const r of results) {
    const refusalsOnly = Object.keys(r.flooder.statusCodes).every((code) => code.startsWith('2') || code === '429' || code === '503');
    const met = r.neighbourShare >= 0.5 && r.neighbour.p99Ms <= 100 && r.flooder.okPerSecond > 0 && refusalsOnly && r.flooder.errors === 0;
    lines.push(
      `| ${r.label} | ${r.protection} | ${rate(r.neighbour)} | ${percent(r.neighbourShare)} | ${r.neighbour.p99Ms.toFixed(1)} | ${rate(r.flooder)} | ${codes(r.flooder.statusCodes)} | ${r.flooder.errors + r.neighbour.errors} | ${met ? 'yes' : '**no**'} |`,
    );
  }
  lines.push(
    '',
    'Round 3 (a generated table filtered on an unindexed column) is not run: the generated tables filter only on indexed columns until the PostgREST dialect (issue 20) lands.',
    '',
    '## The protection where nobody floods',
    '',
    'Requests served at 32 connections by one caller, protected against unprotected, in alternating one-second slices (target: within 5%).',
    '',
    '| Load | Protected / unprotected |',
    '| --- | ---: |',
    ...cost.map((c) => `| ${c.scenario} | ${percent(c.on / c.off)} |`),
    '',
  );
  return lines.join('\n');
}
