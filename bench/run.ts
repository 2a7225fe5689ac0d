/**
 * `npm run bench`: the service and three baselines on one dedicated embedded database, load from a
 * separate autocannon process, results in bench/RESULTS.md and bench/results.json. A benchmark,
 * not a test: it reports numbers and never fails on one. See bench/README.md.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfig } from '../lib/ground/config.ts';
import { startBenchDatabase } from './benchDatabase.ts';
import { waitForIdleDatabase } from './idleDatabase.ts';
import { runNeighbourBench } from './noisyNeighbour.ts';
import { startLoadGenerator } from './loadGeneratorProcess.ts';
import type { LoadResult } from './loadPlan.ts';
import { summarizeLatencies } from './latency.ts';
import { describeMachine } from './machine.ts';
import { evaluateTargets, renderMarkdown, type BenchReport, type ScenarioResult } from './report.ts';
import {
  exportGroup,
  exportRows,
  fixedRateGroup,
  scenarioGroups,
  SERVER_LABELS,
  singleConnectionGroup,
  type Scenario,
  type ScenarioGroup,
  type ServerKey,
} from './scenarios.ts';
import { appYamlNodeArgs, PeakRssSampler, startEntryPoint, startServer, type Build, type ServerProcess } from './serverProcess.ts';
import { runPgbenchPointSelect, type PgbenchResult } from './pgbench.ts';
import { runReplicaBench } from './replicas.ts';
import { readSettings } from './settings.ts';
import { measureStartups } from './startup.ts';
import { startTestIssuer, TEST_AUDIENCE, type TestIssuer } from '../test/support/testIssuer.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);

/** One request, retried until a 2xx or the deadline: the server answers, and caches are warm. */
async function probe(server: ServerProcess, scenario: Scenario): Promise<void> {
  const deadline = Date.now() + 120_000;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${server.origin}${scenario.probe.path}`, { headers: scenario.probe.headers, signal: AbortSignal.timeout(60_000) });
      await response.arrayBuffer();
      if (response.ok) return;
      last = `status ${response.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${scenario.id}: ${server.name} ${scenario.probe.path} never answered 2xx (${last})`);
}

/** Newline count of what a server logged after `offset`: one line per request for the service. */
function linesSince(file: string, offset: number): { lines: number; size: number } {
  const size = statSync(file).size;
  const fd = openSync(file, 'r');
  const buffer = Buffer.alloc(1 << 20);
  let lines = 0;
  try {
    for (let position = offset; position < size; ) {
      const read = readSync(fd, buffer, 0, Math.min(buffer.length, size - position), position);
      if (read === 0) break;
      for (let i = 0; i < read; i++) if (buffer[i] === 10) lines++;
      position += read;
    }
  } finally {
    closeSync(fd);
  }
  return { lines, size };
}

/**
 * The logger writes asynchronously, in batches at least every 100 ms (lib/ops/logger.ts): count
 * once the file has stopped growing for longer than that (or after 2 s).
 */
async function settledLinesSince(file: string, offset: number): Promise<number> {
  const deadline = Date.now() + 2000;
  let last = linesSince(file, offset);
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 150));
    const now = linesSince(file, offset);
    if (now.size === last.size) return now.lines;
    last = now;
  }
  return last.lines;
}

type Slice = LoadResult & { peakRssMiB: number | null; logLines: number };

const sliceRate = (slice: Slice) => (slice.durationSeconds > 0 ? slice.requests / slice.durationSeconds : 0);

/** One scenario's slices as one result: totals summed, latencies pooled, the highest peak. */
function combineSlices(scenario: Scenario, connections: number, slices: Slice[], overallRate?: number): ScenarioResult {
  const sum = (pick: (s: Slice) => number) => slices.reduce((n, s) => n + pick(s), 0);
  const statusCodes: Record<string, number> = {};
  for (const slice of slices) for (const [code, n] of Object.entries(slice.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + n;
  const peaks = slices.map((s) => s.peakRssMiB).filter((p): p is number => p !== null);
  const corrected = slices.map((s) => s.correctedP99Ms).filter((p): p is number => p !== undefined);
  const durationSeconds = sum((s) => s.durationSeconds);
  const requests = sum((s) => s.requests);
  const requestsPerSecond = durationSeconds > 0 ? requests / durationSeconds : 0;
  return {
    id: scenario.id,
    label: scenario.label,
    server: scenario.server,
    connections,
    ...(overallRate ? { overallRate, pacing: scenario.pacing } : {}),
    rounds: slices.length,
    requestsPerSecond,
    ...(scenario.rowsPerRequest ? { rowsPerSecond: requestsPerSecond * scenario.rowsPerRequest } : {}),
    requests,
    durationSeconds,
    latencyMs: summarizeLatencies(slices.map((s) => s.latencies)),
    // Percentiles of separate histograms don't combine: keep the worst slice's.
    ...(corrected.length ? { correctedP99Ms: Math.max(...corrected) } : {}),
    errors: sum((s) => s.errors),
    timeouts: sum((s) => s.timeouts),
    non2xx: sum((s) => s.non2xx),
    statusCodes,
    peakRssMiB: peaks.length ? Math.max(...peaks) : null,
    logLines: sum((s) => s.logLines),
  };
}

/** lakebase_api_telemetry_dropped_total by signal, from the server's /metrics. */
async function droppedTelemetry(server: ServerProcess): Promise<Record<string, number>> {
  const text = await (await fetch(`${server.origin}/metrics`)).text();
  const dropped: Record<string, number> = {};
  for (const match of text.matchAll(/^lakebase_api_telemetry_dropped_total\{signal="(\w+)"\} (\S+)$/gm)) dropped[match[1]!] = Number(match[2]);
  return dropped;
}

/** How many exports the sink answered (it tells over IPC). */
function sinkExports(sink: ServerProcess): Promise<number> {
  return sink.request<{ exports: number }>({ type: 'stats' }).then((stats) => stats.exports);
}

/** The servers that are the service's real entry point (server.ts or dist/server.js), not a bench script. */
type EntryPointKey = 'service' | 'serviceTsx' | 'serviceAlt' | 'serviceTelemetry' | 'serviceTelemetryAll';

async function main(): Promise<void> {
  const started = Date.now();
  const settings = readSettings(process.env);
  // BENCH_REPLICAS=1: the read replica comparison instead (bench/replicas.ts).
  if (settings.replicas) return runReplicaBench(settings, log);
  // BENCH_NEIGHBOUR=1: only the noisy-neighbour rounds (bench/noisyNeighbour.ts), on the bench database.
  if (settings.neighbour) return runNeighbourOnly(settings);
  const outDir = resolve(settings.outDir);
  const logsDir = join(outDir, 'out');
  mkdirSync(logsDir, { recursive: true });
  const config = loadConfig({ DB_POOL_SIZE: process.env.DB_POOL_SIZE, DB_MAX_OVERFLOW: process.env.DB_MAX_OVERFLOW });

  // The compiled service is measured as the platform runs it: built by `npm run build` first.
  const build = spawnSync('npm', ['run', 'build'], { cwd: root, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`npm run build failed:\n${build.stdout}\n${build.stderr}`);
  log(`built dist/ in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  log(`database: ${settings.dataDir}, ${settings.rows.toLocaleString('en-US')} rows`);
  const db = await startBenchDatabase({ dataDir: settings.dataDir, rows: settings.rows, schema: config.schema, table: config.table, log });
  log(db.seed.reused ? 'seed reused' : `seeded in ${(db.seed.ms / 1000).toFixed(1)} s`);
  const machine = describeMachine(db.serverVersion);
  const admin = new pg.Client({
    host: db.env.PGHOST,
    port: Number(db.env.PGPORT),
    database: db.env.PGDATABASE,
    user: db.env.PGUSER,
    password: db.env.PGPASSWORD,
  });
  await admin.connect();

  // The servers see the bench database as plain PostgreSQL and nothing else of the caller's setup.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    ...db.env,
    DB_POOL_SIZE: String(config.pool.size),
    DB_MAX_OVERFLOW: String(config.pool.maxOverflow),
    DEFAULT_POSTGRES_SCHEMA: config.schema,
    DEFAULT_POSTGRES_TABLE: config.table,
    LOG_LEVEL: 'info',
    CACHE_ENABLED: 'true',
    // The CSV export asks for 100,000 rows in one response (it streams); every other scenario pages with limit=.
    DB_MAX_ROWS: String(Math.max(1000, exportRows(settings.rows))),
  };
  // AUTH_MODE=jwt against a loopback issuer in this process: fetched once by the server, then idle.
  const issuer: TestIssuer = await startTestIssuer();
  const bearerToken = await issuer.sign({ email: 'bench@example.com' }, { expiresAt: Math.floor(Date.now() / 1000) + 24 * 3600 });
  const groups = () => scenarioGroups(settings.rows, bearerToken);
  const serverScripts: Record<Exclude<ServerKey, EntryPointKey>, { script: string; args?: string[]; env?: NodeJS.ProcessEnv }> = {
    A: { script: 'servers/baselineNodeHttp.ts' },
    B: { script: 'servers/baselineExpress.ts' },
    C: { script: 'servers/baselineExpressPg.ts' },
    serviceNode: { script: 'servers/service.ts', args: ['node'] },
    serviceJwt: {
      script: 'servers/service.ts',
      args: ['express'],
      env: { AUTH_MODE: 'jwt', AUTH_JWT_ISSUER: issuer.issuer, AUTH_JWT_AUDIENCE: TEST_AUDIENCE },
    },
  };
  const isScript = (key: ServerKey): key is Exclude<ServerKey, EntryPointKey> => key in serverScripts;
  // The service itself through its real entry point, on a free loopback port.
  const entryEnv: NodeJS.ProcessEnv = { ...env, PORT: '0' };
  // Next to the bench database (a place PostgreSQL's own user can reach), removed after measuring.
  const embeddedDataDir = `${resolve(settings.dataDir)}-embedded`;
  const { PGHOST: _h, PGPORT: _p, PGDATABASE: _d, PGUSER: _u, PGPASSWORD: _pw, PGSSLMODE: _s, ...withoutDatabase } = entryEnv;
  const startup = await measureStartups({
    root,
    rounds: settings.startupRounds,
    env: { 'plain Postgres': entryEnv, embedded: { ...withoutDatabase, EMBEDDED_PG_DATA_DIR: embeddedDataDir, SAMPLE_ROWS: '10000' } },
    logsDir,
    log,
  });
  rmSync(embeddedDataDir, { recursive: true, force: true });
  const logFiles: string[] = [];
  const servers = new Map<ServerKey, ServerProcess>();
  let sink: ServerProcess | undefined;
  let telemetry: BenchReport['telemetry'];
  let load: Awaited<ReturnType<typeof startLoadGenerator>> | undefined;
  const results: ScenarioResult[] = [];
  let pgbench: PgbenchResult | null = null;
  try {
    const selected = (list: Scenario[]) =>
      (settings.only ? list.filter((s) => settings.only!.includes(s.id)) : list).filter(
        (s) => s.server !== 'serviceAlt' || settings.altNodeArgs.length > 0 || Object.keys(settings.altEnv).length > 0,
      );
    const plannedScenarios = selected(
      [...groups(), fixedRateGroup(settings.rows), singleConnectionGroup(settings.rows), exportGroup(settings.rows)].flatMap((g) => g.scenarios),
    );
    const neededServers = new Set(plannedScenarios.map((s) => s.server));
    if (neededServers.size === 0) throw new Error(`BENCH_ONLY matched no scenario: ${settings.only?.join(', ')}`);
    if (neededServers.has('serviceTelemetry') || neededServers.has('serviceTelemetryAll')) {
      const logFile = join(logsDir, 'otlpSink.log');
      logFiles.push(logFile);
      sink = await startServer({ name: 'OTLP sink', script: join(here, 'servers/otlpSink.ts'), env: { PATH: env.PATH, HOME: env.HOME }, logFile });
    }
    /**
     * How each server that is the service's real entry point starts. The telemetry servers are the
     * same compiled entry point as `service`, so on and off differ in telemetry alone (not in tsx or
     * the bench's own server script), on as a Databricks App has it: OTLP/gRPC to a collector on the
     * same machine.
     */
    const entryPointOf = (key: EntryPointKey): { build: Build; nodeArgs: string[]; env: NodeJS.ProcessEnv } => {
      const compiled = (env: NodeJS.ProcessEnv, nodeArgs = settings.serverNodeArgs) => ({ build: 'compiled' as const, nodeArgs, env });
      switch (key) {
        case 'service':
          return compiled(entryEnv);
        case 'serviceTsx':
          return { build: 'tsx', nodeArgs: settings.serverNodeArgs, env: entryEnv };
        case 'serviceAlt':
          return compiled({ ...entryEnv, ...settings.altEnv }, [...settings.serverNodeArgs, ...settings.altNodeArgs]);
        case 'serviceTelemetry':
        case 'serviceTelemetryAll':
          return compiled({
            ...entryEnv,
            OTEL_EXPORTER_OTLP_ENDPOINT: sink!.origin,
            OTEL_SERVICE_NAME: 'lakebase-api-bench',
            ...(key === 'serviceTelemetryAll' ? { OTEL_TRACES_SAMPLER: 'parentbased_always_on' } : {}),
          });
      }
    };
    const entries = await Promise.all(
      [...neededServers].map(async (key) => {
        const logFile = join(logsDir, `${key}.log`);
        rmSync(logFile, { force: true });
        logFiles.push(logFile);
        if (!isScript(key)) return [key, await startEntryPoint({ name: SERVER_LABELS[key], root, logFile, ...entryPointOf(key) })] as const;
        const { script, args, env: own } = serverScripts[key];
        return [
          key,
          await startServer({
            name: SERVER_LABELS[key],
            script: join(here, script),
            args,
            nodeArgs: settings.serverNodeArgs,
            env: { ...env, ...own },
            logFile,
          }),
        ] as const;
      }),
    );
    for (const [key, server] of entries) servers.set(key, server);
    load = await startLoadGenerator();

    /** One slice of one scenario: load, peak RSS, what the server logged. */
    const measureSlice = async (scenario: Scenario, connections: number, seconds: number, overallRate?: number): Promise<Slice> => {
      const server = servers.get(scenario.server)!;
      const before = statSync(server.logFile).size;
      server.resetPeakRss();
      const sampler = new PeakRssSampler(server);
      const result = await load!.run({
        origin: server.origin,
        connections,
        durationSeconds: seconds,
        overallRate,
        pacing: scenario.pacing,
        plan: scenario.plan,
      });
      const peakRssMiB = sampler.stop();
      const logLines = await settledLinesSince(server.logFile, before);
      // Requests queued in a server's pool would still run after the clients left: let them finish.
      await waitForIdleDatabase(admin, undefined, log);
      return { ...result, peakRssMiB, logLines };
    };

    const runGroup = async (group: ScenarioGroup, connections: number, overallRate?: number, repeat?: number) => {
      const members = selected(group.scenarios);
      if (members.length === 0) return;
      for (const scenario of members) {
        const server = servers.get(scenario.server)!;
        await probe(server, scenario);
        if (settings.warmupSeconds > 0) {
          await load!.run({
            origin: server.origin,
            connections,
            durationSeconds: settings.warmupSeconds,
            overallRate,
            pacing: scenario.pacing,
            plan: scenario.plan,
          });
          await waitForIdleDatabase(admin, undefined, log);
        }
      }
      const rounds = group.interleave ? settings.rounds : 1;
      const sliceSeconds = group.interleave ? Math.max(1, Math.round(settings.durationSeconds / rounds)) : settings.durationSeconds;
      const slices = new Map<string, Slice[]>(members.map((s) => [s.id, []]));
      for (let round = 0; round < rounds; round++) {
        for (const scenario of members) slices.get(scenario.id)!.push(await measureSlice(scenario, connections, sliceSeconds, overallRate));
      }
      for (const scenario of members) {
        const entry = combineSlices(scenario, connections, slices.get(scenario.id)!, overallRate);
        if (repeat !== undefined) {
          entry.repeat = repeat;
          entry.label = `${entry.label}, run ${repeat} of ${settings.fixedRateRepeats}`;
        }
        const baseline = scenario.baseline
          ? results.find((r) => r.id === scenario.baseline && r.connections === connections && r.repeat === entry.repeat)
          : undefined;
        if (baseline) {
          const own = slices.get(scenario.id)!;
          const theirs = slices.get(baseline.id);
          // Same group: the ratio in each round too, to show how much the machine moved.
          const perRound = theirs ? own.map((slice, i) => sliceRate(slice) / Math.max(1e-9, sliceRate(theirs[i]!))) : [];
          entry.baseline = {
            id: baseline.id,
            requestsPerSecond: baseline.requestsPerSecond,
            ratio: baseline.requestsPerSecond > 0 ? entry.requestsPerSecond / baseline.requestsPerSecond : 0,
            ...(perRound.length > 1 ? { roundRatios: { min: Math.min(...perRound), max: Math.max(...perRound) } } : {}),
          };
        }
        results.push(entry);
        log(
          `${scenario.id.padEnd(12)} ${String(connections).padStart(4)}c  ${Math.round(entry.requestsPerSecond).toString().padStart(6)} req/s  ` +
            `p50 ${entry.latencyMs.p50.toFixed(2)} ms  p99 ${entry.latencyMs.p99.toFixed(2)} ms  errors ${entry.errors}  non-2xx ${entry.non2xx}  ` +
            `rss ${entry.peakRssMiB?.toFixed(0)} MiB${entry.rowsPerSecond === undefined ? '' : `  ${Math.round(entry.rowsPerSecond)} rows/s`}${entry.baseline ? `  ${(entry.baseline.ratio * 100).toFixed(0)}% of ${entry.baseline.id}` : ''}` +
            (entry.baseline?.roundRatios
              ? ` (rounds ${(entry.baseline.roundRatios.min * 100).toFixed(0)}–${(entry.baseline.roundRatios.max * 100).toFixed(0)}%)`
              : ''),
        );
      }
    };

    for (const connections of settings.connections) {
      for (const group of groups()) await runGroup(group, connections);
      const c = results.find((r) => r.id === 'C' && r.connections === connections);
      if (connections === settings.fixedRateConnections && c) {
        const rate = Math.max(1, Math.floor(c.requestsPerSecond / 2));
        for (let repeat = 1; repeat <= settings.fixedRateRepeats; repeat++) {
          await runGroup(fixedRateGroup(settings.rows), connections, rate, settings.fixedRateRepeats > 1 ? repeat : undefined);
        }
      }
    }
    if (sink) {
      const dropped: Record<string, Record<string, number>> = {};
      for (const [key, label] of [
        ['serviceTelemetry', 'default sampler'],
        ['serviceTelemetryAll', 'every request traced'],
      ] as const) {
        const exporting = servers.get(key);
        if (exporting) dropped[label] = await droppedTelemetry(exporting);
      }
      telemetry = { dropped, sinkExports: await sinkExports(sink) };
      log(`telemetry: ${telemetry.sinkExports} exports taken by the sink; dropped ${JSON.stringify(telemetry.dropped)}`);
    }
    await runGroup(singleConnectionGroup(settings.rows), 1);
    await runGroup(exportGroup(settings.rows), 1);
    // The database's own ceiling for the same point select, with as many connections as the service may open.
    const pgbenchClients = config.pool.size + config.pool.maxOverflow;
    if (!settings.only || settings.only.includes('pgbench'))
      pgbench = await runPgbenchPointSelect({
        env: db.env,
        rows: settings.rows,
        table: `${config.schema}.${config.table}`,
        clients: pgbenchClients,
        seconds: settings.durationSeconds,
        log,
      });
    await waitForIdleDatabase(admin, undefined, log);
    // One caller flooding, another looking up trips: with the protection and without (bench/noisyNeighbour.ts).
    // Not in a quick run (the harness test's): BENCH_QUICK=1 BENCH_NEIGHBOUR=1 smoke-tests it alone.
    if (!settings.quick && (!settings.only || settings.only.includes('neighbour')))
      await runNeighbourBench({ settings, dbEnv: db.env, admin, root, outDir, log });
  } finally {
    load?.stop();
    await sink?.stop().catch(() => undefined);
    await admin.end().catch(() => undefined);
    await Promise.all([...servers.values()].map((s) => s.stop().catch(() => undefined)));
    await db.stop().catch(() => undefined);
    await issuer.close();
    if (!settings.keepLogs) for (const file of logFiles) rmSync(file, { force: true });
  }

  machine.loadAverageAtEnd = os.loadavg().map((l) => Math.round(l * 100) / 100);
  const report: BenchReport = {
    machine,
    settings: { ...settings, pool: { size: config.pool.size, maxOverflow: config.pool.maxOverflow } },
    seed: { rows: db.seed.rows, reused: db.seed.reused, seconds: db.seed.ms / 1000 },
    totalSeconds: (Date.now() - started) / 1000,
    servers: [...servers].map(([key, server]) => ({ key, label: server.name, startRssMiB: server.startRssMiB })),
    startup,
    appYamlCommand: ['node', ...appYamlNodeArgs(root)].join(' '),
    pgbench,
    targets: evaluateTargets(results, settings.connections, pgbench),
    scenarios: results,
    ...(telemetry ? { telemetry } : {}),
  };
  writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(outDir, 'RESULTS.md'), renderMarkdown(report));
  log(`wrote ${join(outDir, 'RESULTS.md')} and results.json in ${report.totalSeconds.toFixed(0)} s`);
  for (const t of report.targets) log(`target: ${t.target}: ${t.measured} (needed ${t.needed}) ${t.met === null ? '' : t.met ? 'MET' : 'NOT MET'}`);
}

/** The noisy-neighbour rounds alone, on the bench database (seeded as the full run would). */
async function runNeighbourOnly(settings: ReturnType<typeof readSettings>): Promise<void> {
  const config = loadConfig({});
  const db = await startBenchDatabase({ dataDir: settings.dataDir, rows: settings.rows, schema: config.schema, table: config.table, log });
  const admin = new pg.Client({
    host: db.env.PGHOST,
    port: Number(db.env.PGPORT),
    database: db.env.PGDATABASE,
    user: db.env.PGUSER,
    password: db.env.PGPASSWORD,
  });
  await admin.connect();
  try {
    await runNeighbourBench({ settings, dbEnv: db.env, admin, root, outDir: resolve(settings.outDir), log });
  } finally {
    await admin.end().catch(() => undefined);
    await db.stop().catch(() => undefined);
  }
}

main().catch((err: unknown) => {
  // A broken harness (a server that would not start) is an error; a slow number never is.
  console.error(err);
  process.exit(1);
});
