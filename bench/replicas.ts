/**
 * `BENCH_REPLICAS=1 npm run bench`: the read replica comparison. One primary and a real streaming
 * standby of it (test/support/streamingReplica.ts) on this machine; the service twice, as
 * `npm start` serves it, once on the primary alone and once with PGHOST_READ; the same load
 * against each in alternating one-second slices. With two servers on the same cores throughput
 * cannot double: what it shows is where the statements go and how much of the primary's CPU the
 * service uses per request, with and without the replica, and what the read-your-writes check
 * costs a read. Results in bench/REPLICAS.md.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../lib/ground/config.ts';
import { createLogger } from '../lib/ops/logger.ts';
import { openContext } from '../lib/openContext.ts';
import { STANDBY_HOST, startReplicatedDatabase, type ReplicatedDatabase } from '../test/support/streamingReplica.ts';
import { startLoadGenerator } from './loadGeneratorProcess.ts';
import type { RequestPlan } from './loadPlan.ts';
import { summarizeLatencies } from './latency.ts';
import { startServer, type ServerProcess } from './serverProcess.ts';
import type { BenchSettings } from './settings.ts';

const here = dirname(fileURLToPath(import.meta.url));
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** CPU seconds a PostgreSQL server has used: the postmaster, its live processes, and those it has reaped. */
function serverCpuSeconds(dataDir: string): number {
  const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fields: string[];
    try {
      // After the command name (which may hold spaces): state, ppid, … utime (14), stime, cutime, cstime.
      fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ');
    } catch {
      continue; // exited meanwhile
    }
    const pid = Number(entry);
    const ppid = Number(fields[1]);
    if (pid === postmaster) ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    else if (ppid === postmaster) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / CLOCK_TICKS;
}

/**
 * From the service's /metrics: `lakebase_api_db_replica_reads_total` by `server/reason`, and under
 * `answered` the trips requests it answered (counted by the server, so the split does not depend on
 * which responses the load generator's window caught).
 */
async function replicaReads(server: ServerProcess): Promise<Record<string, number>> {
  const text = await (await fetch(`${server.origin}/metrics`)).text();
  const counts: Record<string, number> = { answered: 0 };
  for (const match of text.matchAll(/^lakebase_api_db_replica_reads_total\{server="(\w+)",reason="(\w+)"\} (\d+)/gm))
    counts[`${match[1]}/${match[2]}`] = Number(match[3]);
  for (const match of text.matchAll(/^lakebase_api_http_requests_total\{[^}]*route="\/trips[^"]*"[^}]*\} (\d+)/gm)) counts.answered! += Number(match[1]);
  return counts;
}

interface Workload {
  id: string;
  label: string;
  plan: RequestPlan;
  /** Shares of the requests that are replica-declared reads, point reads, writes. */
  shares: { streamRead: number; pointRead: number; write: number };
}

interface Measured {
  requests: number;
  seconds: number;
  latencies: Float64Array[];
  primaryCpu: number;
  standbyCpu: number;
  non2xx: number;
  reads: Record<string, number>;
}

/** Sequential timing of `work`, in ms per call (after a warm-up of a tenth). */
async function msPerCall(count: number, work: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.ceil(count / 10); i++) await work();
  const started = performance.now();
  for (let i = 0; i < count; i++) await work();
  return (performance.now() - started) / count;
}

/**
 * The read-your-writes check, measured in this process on the service's own routing: the decision
 * for a read no write touched (no fences, and 1,000 fences on another operation), and a read a
 * write made stale while the standby's replay is held back (a replay-position query on the
 * replica, then the read on the primary), against the same read served by the replica.
 */
async function measureReadYourWritesCost(replicated: ReplicatedDatabase, env: Record<string, string>, quick: boolean) {
  const config = loadConfig({ ...env, DB_READ_MAX_LAG_SECONDS: '3600' });
  const ctx = await openContext(config, { ...env, DB_READ_MAX_LAG_SECONDS: '3600' }, createLogger({ level: 'warn', pretty: false }));
  const routing = ctx.readRouting!;
  const input = { params: {}, query: { cursor: 100, page_size: 20 } };
  const handler = (await import('../functions/streamTrips.ts')).streamTrips;
  const read = () => routing.run('streamTrips', input, (db) => handler(input as never, { ...ctx, db }));
  const decisions = quick ? 20_000 : 200_000;
  const reads = quick ? 100 : 1000;
  try {
    const noop = async () => 0;
    const decisionBaseline = await msPerCall(decisions, () => noop());
    const noFences = await msPerCall(decisions, () => routing.run('streamTrips', input, noop));
    await routing.fenceWrite(Array.from({ length: 1000 }, (_, i) => `getTrip?trip_id=${i + 1}&`));
    const otherFences = await msPerCall(decisions, () => routing.run('streamTrips', input, noop));
    const replicaRead = await msPerCall(reads, read);
    const selectOne = await msPerCall(reads, () => routing.replica.query({ text: 'SELECT 1' }));
    const replayCheck = await msPerCall(reads, () => routing.monitor.refreshReplay());
    // Hold replay back, write, and read what the write made stale: every read checks, then goes to the primary.
    await replicated.standby.setApplyDelay(600_000);
    await replicated.admin.query('UPDATE nyc_train_synced SET vendor_id = vendor_id WHERE id = 101');
    await routing.fenceWrite(['streamTrips?']);
    const before = routing.stats();
    const fencedRead = await msPerCall(reads, read);
    const after = routing.stats();
    return {
      decisionBaselineNs: decisionBaseline * 1e6,
      noFencesNs: noFences * 1e6,
      otherFencesNs: otherFences * 1e6,
      replicaReadMs: replicaRead,
      selectOneMs: selectOne,
      replayCheckMs: replayCheck,
      fencedReadMs: fencedRead,
      fencedToPrimary: after.primaryReads.fresh - before.primaryReads.fresh,
      fencedChecks: after.replayChecks - before.replayChecks,
    };
  } finally {
    await replicated.standby.setApplyDelay(0);
    await ctx.close();
  }
}

export async function runReplicaBench(settings: BenchSettings, log: (message: string) => void): Promise<void> {
  const started = Date.now();
  const outDir = resolve(settings.outDir);
  const logsDir = join(outDir, 'out');
  mkdirSync(logsDir, { recursive: true });
  const rows = Math.min(settings.rows, settings.quick ? 5_000 : 200_000);
  const connections = settings.connections[0]!;
  log(`replicas: a primary and a streaming standby, ${rows.toLocaleString('en-US')} rows, ${connections} connections`);
  const replicated = await startReplicatedDatabase({ rows, logStatements: false });
  const { primary } = replicated;
  const base: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    PGHOST: primary.host,
    PGPORT: String(primary.port),
    PGDATABASE: primary.database,
    PGUSER: primary.user,
    PGPASSWORD: primary.password,
    PGSSLMODE: 'disable',
    PORT: '0',
    LOG_LEVEL: 'warn',
    // Every read reaches a database: the comparison is about where statements run.
    CACHE_ENABLED: 'false',
    DB_POOL_SIZE: process.env.DB_POOL_SIZE ?? '5',
    DB_MAX_OVERFLOW: process.env.DB_MAX_OVERFLOW ?? '10',
  };
  const withReplica = { ...base, PGHOST_READ: STANDBY_HOST };
  const servers: Record<'primary' | 'replica', ServerProcess> = {
    primary: await startServer({
      name: 'service, primary only',
      script: join(here, 'servers', 'service.ts'),
      env: base,
      logFile: join(logsDir, 'replicas-primary.log'),
    }),
    replica: await startServer({
      name: 'service, with replica',
      script: join(here, 'servers', 'service.ts'),
      env: withReplica,
      logFile: join(logsDir, 'replicas-replica.log'),
    }),
  };
  const load = await startLoadGenerator();
  const workloads: Workload[] = [
    {
      id: 'reads',
      label: '90% stream pages (random cursor), 10% point reads',
      plan: { kind: 'mixed', maxId: rows, shares: { pointRead: 0.1, streamRead: 0.9, write: 0 } },
      shares: { streamRead: 0.9, pointRead: 0.1, write: 0 },
    },
    {
      id: 'mixed',
      label: '80% stream pages, 10% point reads, 10% vendor updates',
      plan: { kind: 'mixed', maxId: rows, shares: { pointRead: 0.1, streamRead: 0.8, write: 0.1 } },
      shares: { streamRead: 0.8, pointRead: 0.1, write: 0.1 },
    },
  ];
  const results = new Map<string, Measured>();
  const sliceSeconds = Math.max(1, settings.durationSeconds / settings.rounds);
  try {
    for (const key of ['primary', 'replica'] as const) {
      await load.run({ origin: servers[key].origin, connections, durationSeconds: Math.max(settings.warmupSeconds, 0.5), plan: workloads[0]!.plan });
    }
    for (let round = 0; round < settings.rounds; round++) {
      for (const workload of workloads) {
        for (const key of ['primary', 'replica'] as const) {
          const server = servers[key];
          const readsBefore = await replicaReads(server);
          const primaryBefore = serverCpuSeconds(primary.dataDir);
          const standbyBefore = serverCpuSeconds(replicated.standby.dataDir);
          const result = await load.run({ origin: server.origin, connections, durationSeconds: sliceSeconds, plan: workload.plan });
          const primaryCpu = serverCpuSeconds(primary.dataDir) - primaryBefore;
          const standbyCpu = serverCpuSeconds(replicated.standby.dataDir) - standbyBefore;
          const readsAfter = await replicaReads(server);
          const id = `${workload.id}/${key}`;
          const so = results.get(id) ?? { requests: 0, seconds: 0, latencies: [], primaryCpu: 0, standbyCpu: 0, non2xx: 0, reads: {} };
          so.requests += result.requests;
          so.seconds += result.durationSeconds;
          so.latencies.push(result.latencies);
          so.primaryCpu += primaryCpu;
          so.standbyCpu += standbyCpu;
          so.non2xx += result.non2xx + result.errors;
          for (const [name, count] of Object.entries(readsAfter)) so.reads[name] = (so.reads[name] ?? 0) + count - (readsBefore[name] ?? 0);
          results.set(id, so);
          log(`${id} round ${round + 1}: ${(result.requests / result.durationSeconds).toFixed(0)} req/s`);
        }
      }
    }
  } finally {
    load.stop();
    await servers.primary.stop();
    await servers.replica.stop();
  }
  log('read-your-writes check, in process');
  const ryw = await measureReadYourWritesCost(replicated, withReplica, settings.quick);
  await replicated.stop();
  if (!settings.keepLogs) rmSync(logsDir, { recursive: true, force: true });

  const lines: string[] = [
    '# Read replicas: statement split, primary load, read-your-writes cost',
    '',
    `\`BENCH_REPLICAS=1 npm run bench\`, ${new Date().toISOString().slice(0, 16)}Z, ${settings.quick ? 'QUICK run (numbers mean little)' : 'full run'}: ` +
      `${rows.toLocaleString('en-US')} rows, ${connections} connections, ${settings.rounds} alternating slices of ${sliceSeconds} s per cell, ` +
      `cache off (every read reaches a database), primary and standby on the same ${os()} as the service and the load generator. ` +
      'Primary and standby CPU: seconds of all their processes (from /proc), per 1,000 requests. Each request runs one ' +
      "statement (a write adds the WAL-position query of its read-your-writes fence, on the primary); the replica's monitor adds one " +
      'query a second on each server.',
    '',
    '| Workload | Service | req/s | p50 ms | p99 ms | primary CPU ms / 1k req | standby CPU ms / 1k req | requests answered by the primary | replica-declared reads: replica / primary (why) | non-2xx |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |',
  ];
  for (const workload of workloads) {
    for (const key of ['primary', 'replica'] as const) {
      const m = results.get(`${workload.id}/${key}`)!;
      const latency = summarizeLatencies(m.latencies);
      const replicaAnswered = m.reads['replica/replica'] ?? 0;
      const primaryAnswered = Object.entries(m.reads)
        .filter(([name]) => name.startsWith('primary/'))
        .reduce((n, [, c]) => n + c, 0);
      const why = Object.entries(m.reads)
        .filter(([name, c]) => name.startsWith('primary/') && c > 0)
        .map(([name, c]) => `${name.slice(8)} ${c}`)
        .join(', ');
      // Point reads and writes always run on the primary; stream pages where the router sent them.
      const answered = m.reads.answered ?? 0;
      const primaryShare = answered > 0 ? (answered - (key === 'primary' ? 0 : replicaAnswered)) / answered : 0;
      lines.push(
        `| ${workload.label} | ${key === 'primary' ? 'primary only' : 'with replica'} | ${(m.requests / m.seconds).toFixed(0)} | ${latency.p50.toFixed(2)} | ${latency.p99.toFixed(2)} | ` +
          `${((m.primaryCpu * 1e6) / m.requests).toFixed(1)} | ${((m.standbyCpu * 1e6) / m.requests).toFixed(1)} | ${(primaryShare * 100).toFixed(1)} % | ` +
          `${key === 'primary' ? '– (no replica)' : `${replicaAnswered} / ${primaryAnswered}${why ? ` (${why})` : ''}`} | ${m.non2xx} |`,
      );
    }
    const alone = results.get(`${workload.id}/primary`)!;
    const split = results.get(`${workload.id}/replica`)!;
    const ratio = split.primaryCpu / split.requests / (alone.primaryCpu / alone.requests);
    lines.push(
      `| | **ratio** with / without | ${(split.requests / split.seconds / (alone.requests / alone.seconds)).toFixed(2)} | | | **${ratio.toFixed(2)}** | | | | |`,
    );
  }
  lines.push(
    '',
    '## The read-your-writes check per read',
    '',
    "Measured in the bench process on the service's own routing, sequentially (one read at a time).",
    '',
    '| What | Cost | Baseline (same run) | Ratio |',
    '| --- | ---: | ---: | ---: |',
    `| routing decision, no write pending | ${ryw.noFencesNs.toFixed(0)} ns | awaiting the read itself: ${ryw.decisionBaselineNs.toFixed(0)} ns | ${(ryw.noFencesNs / ryw.decisionBaselineNs).toFixed(2)} |`,
    `| routing decision, 1,000 writes pending on another operation | ${ryw.otherFencesNs.toFixed(0)} ns | ${ryw.decisionBaselineNs.toFixed(0)} ns | ${(ryw.otherFencesNs / ryw.decisionBaselineNs).toFixed(2)} |`,
    `| replay-position check on the replica (a fenced read asks first) | ${ryw.replayCheckMs.toFixed(3)} ms | \`SELECT 1\` on the replica pool: ${ryw.selectOneMs.toFixed(3)} ms | ${(ryw.replayCheckMs / ryw.selectOneMs).toFixed(2)} |`,
    `| a stale read, replica behind (check, then the primary) | ${ryw.fencedReadMs.toFixed(3)} ms | the same read on the replica: ${ryw.replicaReadMs.toFixed(3)} ms | ${(ryw.fencedReadMs / ryw.replicaReadMs).toFixed(2)} |`,
    '',
    `While replay was held back, ${ryw.fencedToPrimary} of the fenced reads went to the primary after ${ryw.fencedChecks} replay checks.`,
    '',
    `Total ${((Date.now() - started) / 1000).toFixed(0)} s.`,
    '',
  );
  writeFileSync(join(outDir, 'REPLICAS.md'), lines.join('\n'));
  log(`wrote ${join(outDir, 'REPLICAS.md')}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

function os(): string {
  const cpus = (() => {
    try {
      return readFileSync('/proc/cpuinfo', 'utf8').match(/^processor\s*:/gm)?.length ?? 0;
    } catch {
      return 0;
    }
  })();
  return cpus ? `${cpus}-CPU machine` : 'machine';
}
