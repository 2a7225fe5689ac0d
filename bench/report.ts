import type { LatencySummary } from './latency.ts';
import type { LoadResult } from './loadPlan.ts';
import type { MachineDescription } from './machine.ts';
import type { PgbenchResult } from './pgbench.ts';
import type { BenchSettings } from './settings.ts';
import type { StartupResult } from './startup.ts';

export interface ScenarioResult extends Omit<LoadResult, 'latencies'> {
  id: string;
  label: string;
  server: string;
  connections: number;
  /** For groups run several times (fixed rate): which run, from 1. */
  repeat?: number;
  /** Slices it was measured in (interleaved with the other scenarios of its group). */
  rounds: number;
  latencyMs: LatencySummary;
  /** Offered rate for fixed-rate scenarios, and how it was kept. */
  overallRate?: number;
  pacing?: 'autocannon' | 'constant';
  /** Peak resident set size of the server process during the measurement, MiB. */
  peakRssMiB: number | null;
  /** Rows answered a second, for a scenario whose requests each answer a known number of rows (the export). */
  rowsPerSecond?: number;
  /** Lines the server logged during the measurement (the service logs one per request). */
  logLines: number;
  baseline?: {
    id: string;
    requestsPerSecond: number;
    ratio: number;
    /** Lowest and highest ratio over the rounds, when both were measured in the same slices. */
    roundRatios?: { min: number; max: number };
  };
}

export interface TargetResult {
  target: string;
  measured: string;
  needed: string;
  /** null: not measured in this run (e.g. a quick run without 128 connections). */
  met: boolean | null;
}

export interface BenchReport {
  machine: MachineDescription;
  settings: BenchSettings & { pool: { size: number; maxOverflow: number } };
  seed: { rows: number; reused: boolean; seconds: number };
  totalSeconds: number;
  /** Each process under test and its resident set size when it started listening, before any load. */
  servers: Array<{ key: string; label: string; startRssMiB: number | null }>;
  /** The service's real entry point started repeatedly, compiled and through tsx, in both database modes. */
  startup: StartupResult[];
  /** app.yaml's command, which the compiled service ran with. */
  appYamlCommand: string;
  /** pgbench's prepared point select on the same database, in the same run: the database's ceiling. */
  pgbench: PgbenchResult | null;
  targets: TargetResult[];
  scenarios: ScenarioResult[];
  /** The telemetry scenarios' server: what it could not deliver to the sink, and the exports the sink took. */
  telemetry?: { dropped: Record<string, Record<string, number>>; sinkExports: number };
}

const find = (results: ScenarioResult[], id: string, connections?: number) =>
  results.find((r) => r.id === id && (connections === undefined || r.connections === connections));

const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);
const pct = (value: number) => `${(value * 100).toFixed(0)}%`;
const ms = (value: number) => `${value.toFixed(value < 10 ? 2 : 1)} ms`;

const times = (value: number) => `${value.toFixed(2)}×`;

/** Issue 16's targets, judged from this run's numbers alone. A benchmark reports; it never fails. */
export function evaluateTargets(results: ScenarioResult[], connections: number[], pgbench: PgbenchResult | null = null): TargetResult[] {
  const low = connections[0]!;
  const high = connections.length > 1 ? connections[connections.length - 1]! : undefined;
  const targets: TargetResult[] = [];
  const ceiling = (rate: number) => (pgbench ? `; ${pct(rate / pgbench.tps)} of pgbench` : '');
  const throughputTarget = (id: string, baselineId: string, conns: number | undefined, min: number, what: string) => {
    const s = conns === undefined ? undefined : find(results, id, conns);
    const b = conns === undefined ? undefined : find(results, baselineId, conns);
    const r = s && b ? ratio(s.requestsPerSecond, b.requestsPerSecond) : undefined;
    const range = s?.baseline?.roundRatios ? `, rounds ${times(s.baseline.roundRatios.min)}–${times(s.baseline.roundRatios.max)}` : '';
    targets.push({
      target: `${what}, ${conns ?? '–'} connections, vs (${baselineId})`,
      measured:
        r === undefined
          ? 'not measured'
          : `${times(r)} (${Math.round(s!.requestsPerSecond)} vs ${Math.round(b!.requestsPerSecond)} req/s${range}${ceiling(s!.requestsPerSecond)})`,
      needed: `≥ ${times(min)}`,
      met: r === undefined ? null : r >= min,
    });
  };
  throughputTarget('point', 'C', high, 2.0, 'Point lookup `GET /trips/{id}`');
  throughputTarget('point', 'C', low, 1.5, 'Point lookup `GET /trips/{id}`');
  // The operations other work added, each against its own baseline in the same slices.
  throughputTarget(
    'count-jwt',
    'count-bearer',
    low,
    0.9,
    'Cached `/trips/count` with AUTH_MODE=jwt (every request verified), vs the same request with AUTH_MODE=none',
  );
  throughputTarget('ride-get', 'trip-get', low, 0.9, 'Generated `GET /rides/{id}` (add-table)');
  throughputTarget('ride-list', 'trip-stream', low, 0.9, 'Generated `GET /rides` list (add-table)');
  throughputTarget('count-otel', 'count-otel-off', low, 0.9, 'Cached `/trips/count` with OpenTelemetry export on, vs off');
  throughputTarget('point-otel', 'point-otel-off', low, 0.9, 'Point lookup with OpenTelemetry export on, vs off');

  const pHigh = high === undefined ? undefined : find(results, 'point', high);
  const cHigh = high === undefined ? undefined : find(results, 'C', high);
  const p99Ratio = pHigh && cHigh ? ratio(pHigh.latencyMs.p99, cHigh.latencyMs.p99) : undefined;
  targets.push({
    target: `Point lookup p99, ${high ?? '–'} connections, vs (C)'s p99`,
    measured: p99Ratio === undefined ? 'not measured' : `${times(p99Ratio)} (${ms(pHigh!.latencyMs.p99)} vs ${ms(cHigh!.latencyMs.p99)})`,
    needed: '≤ 1.00×',
    met: p99Ratio === undefined ? null : p99Ratio <= 1.0,
  });

  const single = find(results, 'point-single', 1);
  const cSingle = find(results, 'C-single', 1);
  const singleRatio = single && cSingle ? ratio(single.latencyMs.p50, cSingle.latencyMs.p50) : undefined;
  targets.push({
    target: 'Point lookup with one connection (no concurrency), median latency vs (C)',
    measured:
      singleRatio === undefined
        ? 'not measured'
        : `${times(singleRatio)} (p50 ${ms(single!.latencyMs.p50)} vs ${ms(cSingle!.latencyMs.p50)}; mean ${ms(single!.latencyMs.mean)} vs ${ms(cSingle!.latencyMs.mean)})`,
    needed: '≤ 1.10×',
    met: singleRatio === undefined ? null : singleRatio <= 1.1,
  });

  throughputTarget('count', 'B', low, 0.95, 'Cached `/trips/count`');

  const s0 = find(results, 'stream-0', low);
  const sDeep = find(results, 'stream-deep', low);
  const flat = s0 && sDeep ? ratio(sDeep.requestsPerSecond, s0.requestsPerSecond) : undefined;
  const flatRange = sDeep?.baseline?.roundRatios ? `, rounds ${times(sDeep.baseline.roundRatios.min)}–${times(sDeep.baseline.roundRatios.max)}` : '';
  targets.push({
    target: `\`/trips/stream\`, random deep cursors vs random shallow cursors, uncached, ${low} connections`,
    measured:
      flat === undefined
        ? 'not measured'
        : `${times(flat)} (${Math.round(sDeep!.requestsPerSecond)} vs ${Math.round(s0!.requestsPerSecond)} req/s${flatRange})`,
    needed: '≥ 0.90×',
    met: flat === undefined ? null : flat >= 0.9,
  });

  // Fixed rate: every run of the group, each judged; the target holds only if all runs meet it.
  const runsOf = (id: string) => results.filter((r) => r.id === id).sort((a, b) => (a.repeat ?? 1) - (b.repeat ?? 1));
  const paced = runsOf('point-paced');
  const cPaced = runsOf('C-paced');
  targets.push({
    target: `Point lookup p99 at a fixed rate of half (C)'s throughput, evenly paced (open loop, latency from each request's due time)${paced[0] ? `, ${paced[0].overallRate} req/s at ${paced[0].connections} connections, ${paced.length} run${paced.length > 1 ? 's' : ''}` : ''}`,
    measured: paced.length
      ? `${paced.map((r) => ms(r.latencyMs.p99)).join(' / ')}; (C): ${cPaced.map((r) => ms(r.latencyMs.p99)).join(' / ') || '–'}`
      : 'not measured',
    needed: '< 25 ms in every run',
    met: paced.length ? paced.every((r) => r.latencyMs.p99 < 25) : null,
  });
  const rate = runsOf('point-rate');
  const cRate = runsOf('C-rate');
  // Judged on the higher of the per-request p99 and autocannon's coordinated-omission-corrected one.
  targets.push({
    target: "The same with autocannon's rate option (per-second bursts; p99 per request / corrected for coordinated omission)",
    measured: rate.length
      ? `${rate.map((r) => `${ms(r.latencyMs.p99)} / ${ms(r.correctedP99Ms ?? 0)}`).join('; ')}; (C): ${cRate.map((r) => `${ms(r.latencyMs.p99)} / ${ms(r.correctedP99Ms ?? 0)}`).join('; ') || '–'}`
      : 'not measured',
    needed: '< 25 ms in every run',
    met: rate.length ? rate.every((r) => Math.max(r.latencyMs.p99, r.correctedP99Ms ?? 0) < 25) : null,
  });

  // The service as production runs it: the compiled build (app.yaml), not tsx nor the node:http adapter variant.
  const servicePeaks = results.filter((r) => r.server === 'service').map((r) => r.peakRssMiB ?? 0);
  const peak = servicePeaks.length ? Math.max(...servicePeaks) : undefined;
  targets.push({
    target: 'Peak RSS of the service process as app.yaml runs it (compiled), any scenario',
    measured: peak === undefined ? 'not measured' : `${peak.toFixed(0)} MiB`,
    needed: '< 200 MiB',
    met: peak === undefined ? null : peak < 200,
  });
  return targets;
}

const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
};

/** Median, and the range, of a few measurements. */
function spread(values: number[], unit: string): string {
  if (values.length === 0) return '–';
  const middle = `${median(values).toFixed(0)} ${unit}`;
  return values.length === 1 ? middle : `${middle} (${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)})`;
}

/** Start-up time and idle RSS per database mode, compiled against tsx, and the peaks under load. */
function renderStartup(report: BenchReport): string[] {
  const lines = ['## Compiled (app.yaml) against tsx (npm start)', ''];
  lines.push(
    `The service's real entry point, app.yaml's command (\`${report.appYamlCommand}\`, after \`npm run build\`) and \`node --import tsx server.ts\`, started ${report.settings.startupRounds} time(s) each per database mode, ` +
      'alternating: time from spawning node to the start-up line (listening), and RSS after one idle second (the node process only: the embedded PostgreSQL is a process of its own). Median (lowest–highest).',
    '',
  );
  lines.push(
    '| Database mode | Compiled: start | tsx: start | Compiled: idle RSS | tsx: idle RSS | Start, compiled / tsx |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const mode of [...new Set(report.startup.map((r) => r.mode))]) {
    const compiled = report.startup.find((r) => r.mode === mode && r.build === 'compiled')!;
    const tsx = report.startup.find((r) => r.mode === mode && r.build === 'tsx')!;
    const speed = compiled.startsMs.length && tsx.startsMs.length ? pct(median(compiled.startsMs) / median(tsx.startsMs)) : '–';
    lines.push(
      `| ${mode} | ${spread(compiled.startsMs, 'ms')} | ${spread(tsx.startsMs, 'ms')} | ${spread(compiled.idleRssMiB, 'MiB')} | ${spread(tsx.idleRssMiB, 'MiB')} | ${speed} |`,
    );
  }
  lines.push('');
  const peakOf = (server: string) => {
    const peaks = report.scenarios.filter((r) => r.server === server).map((r) => r.peakRssMiB ?? 0);
    return peaks.length ? `${Math.max(...peaks).toFixed(0)} MiB` : '–';
  };
  const vs = report.scenarios.filter((r) => r.server === 'serviceTsx' && r.baseline);
  lines.push(
    `Under load: peak RSS over every scenario it served, compiled ${peakOf('service')}, through tsx ${peakOf('serviceTsx')}. ` +
      `Throughput through tsx as a share of compiled, interleaved in the same slices: ${vs.map((r) => `${r.label.replace(/, through tsx$/, '')} at ${r.connections} connections ${pct(r.baseline!.ratio)}`).join('; ') || '–'}.`,
    '',
  );
  return lines;
}
const fmtMs = (n: number) => (n < 10 ? n.toFixed(2) : n.toFixed(1));

export function renderMarkdown(report: BenchReport): string {
  const { machine: m, settings: s } = report;
  const lines: string[] = [];
  lines.push('# Benchmark results', '');
  lines.push(
    `Written by \`npm run bench\` (bench/run.ts) on ${m.date.slice(0, 16).replace('T', ' ')} UTC; do not edit the generated sections by hand. ` +
      'A "Notes" section at the end, if present, is added by hand after the run and is about this run only. ' +
      'How it is measured and what the numbers mean: [bench/README.md](README.md). ' +
      'Only ratios within one run count: the machine is shared and noisy, so absolute numbers move from run to run.',
    '',
  );
  if (s.quick) lines.push('**Quick smoke run (BENCH_QUICK=1): the numbers measure nothing.**', '');
  lines.push('## Machine', '');
  lines.push('| CPU | Cores | Memory | OS | Node | PostgreSQL | Load average at start → end |', '| --- | --- | --- | --- | --- | --- | --- |');
  lines.push(
    `| ${m.cpuModel} | ${m.cores} | ${m.memoryGiB} GiB | ${m.os} | ${m.node} | ${m.postgres} (embedded) | ${m.loadAverageAtStart.join(' / ')} → ${(m.loadAverageAtEnd ?? []).join(' / ')} |`,
    '',
  );
  lines.push(
    `${fmtInt(report.seed.rows)} rows (${report.seed.reused ? 'seed reused' : `seeded in ${report.seed.seconds.toFixed(0)} s`}); ` +
      `${s.durationSeconds} s per scenario (in ${s.rounds} interleaved slices for all but the offset pages) after ${s.warmupSeconds} s of warm-up; pool ${s.pool.size} + ${s.pool.maxOverflow} overflow for the service and (C); ` +
      `load from autocannon ${m.packages.autocannon} in its own process; whole run ${report.totalSeconds.toFixed(0)} s. ` +
      `Packages: ${Object.entries(m.packages)
        .filter(([p]) => p !== 'autocannon')
        .map(([p, v]) => `${p} ${v}`)
        .join(', ')}.`,
    '',
  );

  lines.push(
    `RSS at start (listening, before any load): ${report.servers.map((sv) => `${sv.label} ${sv.startRssMiB === null ? '–' : `${sv.startRssMiB.toFixed(0)} MiB`}`).join('; ')}.`,
    '',
  );

  lines.push(...renderStartup(report));
  if (report.telemetry) {
    lines.push(
      `Telemetry scenarios: ${fmtInt(report.telemetry.sinkExports)} OTLP exports taken by the sink; dropped (lakebase_api_telemetry_dropped_total): ` +
        `${Object.entries(report.telemetry.dropped)
          .map(
            ([server, counts]) =>
              `${server}: ${Object.entries(counts)
                .map(([signal, n]) => `${signal} ${fmtInt(n)}`)
                .join(', ')}`,
          )
          .join('; ')}.`,
      '',
    );
  }
  lines.push(
    report.pgbench
      ? `Database ceiling: pgbench's prepared point select (\`-M prepared\`, (C)'s statement, random ids) on the same database in this run: ${fmtInt(report.pgbench.tps)} per second with ${report.pgbench.clients} clients (${report.pgbench.version}). "of pgbench" below is each scenario's share of it.`
      : 'Database ceiling: pgbench was not available in this run.',
    '',
  );

  lines.push('## Targets', '');
  lines.push('| Target | Measured | Needed | Met |', '| --- | --- | --- | --- |');
  for (const t of report.targets) lines.push(`| ${t.target} | ${t.measured} | ${t.needed} | ${t.met === null ? '–' : t.met ? 'yes' : '**no**'} |`);
  lines.push('');

  lines.push('## Scenarios', '');
  lines.push(
    '| Scenario | Conns | req/s | of pgbench | p50 ms | p99 ms | Errors | Non-2xx | Peak RSS MiB | Log lines | vs baseline |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  );
  for (const r of report.scenarios) {
    const range = r.baseline?.roundRatios ? ` (rounds ${pct(r.baseline.roundRatios.min)}–${pct(r.baseline.roundRatios.max)})` : '';
    const vs = r.baseline ? `${pct(r.baseline.ratio)} of ${r.baseline.id}${range}` : '–';
    const conns = r.overallRate ? `${r.connections}, ${fmtInt(r.overallRate)}/s offered` : String(r.connections);
    lines.push(
      `| ${r.label}${r.rowsPerSecond === undefined ? '' : ` (${fmtInt(r.rowsPerSecond)} rows/s)`} | ${conns} | ${fmtInt(r.requestsPerSecond)} | ${report.pgbench ? pct(r.requestsPerSecond / report.pgbench.tps) : '–'} | ${fmtMs(r.latencyMs.p50)} | ${fmtMs(r.latencyMs.p99)} | ${r.errors} | ${r.non2xx} | ${r.peakRssMiB === null ? '–' : r.peakRssMiB.toFixed(0)} | ${fmtInt(r.logLines)} | ${vs} |`,
    );
  }
  lines.push('');
  lines.push(
    'Baselines: (A) bare `node:http` answering a fixed small JSON, the HTTP ceiling; (B) a minimal Express 5 app answering the same JSON, ' +
      'the framework ceiling; (C) a minimal Express 5 app running the same prepared point select through a `pg.Pool` of the same size. ' +
      '"Uncached" scenarios send `Cache-Control: no-cache`, so every request runs its query. Latencies are per request as measured ' +
      "(2xx only; evenly paced: from when each request was due). results.json also has autocannon's " +
      'coordinated-omission-corrected p99 for its rate option. ' +
      'Log lines count what the service logged during the measurement: one line per request, at info level.',
    '',
  );
  return lines.join('\n');
}
