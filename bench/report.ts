import type { LatencySummary } from './latency.ts';
import type { LoadResult } from './loadPlan.ts';
import type { MachineDescription } from './machine.ts';
import type { BenchSettings } from './settings.ts';

export interface ScenarioResult extends Omit<LoadResult, 'latencies'> {
  id: string;
  label: string;
  server: string;
  connections: number;
  /** Slices it was measured in (interleaved with the other scenarios of its group). */
  rounds: number;
  latencyMs: LatencySummary;
  /** Offered rate for fixed-rate scenarios, and how it was kept. */
  overallRate?: number;
  pacing?: 'autocannon' | 'constant';
  /** Peak resident set size of the server process during the measurement, MiB. */
  peakRssMiB: number | null;
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
  targets: TargetResult[];
  scenarios: ScenarioResult[];
}

const find = (results: ScenarioResult[], id: string, connections?: number) =>
  results.find((r) => r.id === id && (connections === undefined || r.connections === connections));

const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);
const pct = (value: number) => `${(value * 100).toFixed(0)}%`;
const ms = (value: number) => `${value.toFixed(value < 10 ? 2 : 1)} ms`;

/** The issue's targets, judged from this run's numbers alone. A benchmark reports; it never fails. */
export function evaluateTargets(results: ScenarioResult[], connections: number[]): TargetResult[] {
  const low = connections[0]!;
  const high = connections.length > 1 ? connections[connections.length - 1]! : undefined;
  const targets: TargetResult[] = [];
  const throughputTarget = (id: string, baselineId: string, min: number, what: string) => {
    const s = find(results, id, low);
    const b = find(results, baselineId, low);
    const r = s && b ? ratio(s.requestsPerSecond, b.requestsPerSecond) : undefined;
    targets.push({
      target: `${what} at ${low} connections, vs (${baselineId})`,
      measured: r === undefined ? 'not measured' : `${pct(r)} (${Math.round(s!.requestsPerSecond)} vs ${Math.round(b!.requestsPerSecond)} req/s)`,
      needed: `≥ ${pct(min)}`,
      met: r === undefined ? null : r >= min,
    });
  };
  throughputTarget('point', 'C', 0.9, 'Point lookup `GET /trips/{id}` throughput');
  throughputTarget('count', 'B', 0.85, 'Cached `/trips/count` throughput');
  throughputTarget('analytics', 'B', 0.85, 'Cached `/trips/analytics` throughput');

  const s0 = find(results, 'stream-0', low);
  const sDeep = find(results, 'stream-deep', low);
  const flat = s0 && sDeep ? ratio(sDeep.requestsPerSecond, s0.requestsPerSecond) : undefined;
  targets.push({
    target: `\`/trips/stream\`, random deep cursors vs random shallow cursors, uncached, at ${low} connections (keyset cost is flat)`,
    measured: flat === undefined ? 'not measured' : `${pct(flat)} (${Math.round(sDeep!.requestsPerSecond)} vs ${Math.round(s0!.requestsPerSecond)} req/s)`,
    needed: '≥ 90%',
    met: flat === undefined ? null : flat >= 0.9,
  });

  const pHigh = high === undefined ? undefined : find(results, 'point', high);
  const cHigh = high === undefined ? undefined : find(results, 'C', high);
  const p99Ratio = pHigh && cHigh ? ratio(pHigh.latencyMs.p99, cHigh.latencyMs.p99) : undefined;
  targets.push({
    target: `Point lookup p99 at ${high ?? 'high'} connections vs (C)'s p99`,
    measured: p99Ratio === undefined ? 'not measured' : `${p99Ratio.toFixed(2)}× (${ms(pHigh!.latencyMs.p99)} vs ${ms(cHigh!.latencyMs.p99)})`,
    needed: '≤ 1.20×',
    met: p99Ratio === undefined ? null : p99Ratio <= 1.2,
  });

  const rate = find(results, 'point-rate');
  const cRate = find(results, 'C-rate');
  // Judged on the higher of the per-request p99 and autocannon's coordinated-omission-corrected one.
  const rateP99 = rate ? Math.max(rate.latencyMs.p99, rate.correctedP99Ms ?? 0) : undefined;
  targets.push({
    target: `Point lookup p99 at a fixed offered rate of half (C)'s throughput, autocannon's rate option${rate ? ` (${rate.overallRate} req/s, ${rate.connections} connections)` : ''}`,
    measured: rate
      ? `${ms(rate.latencyMs.p99)} per request, ${ms(rate.correctedP99Ms ?? 0)} corrected for coordinated omission; (C) in the same conditions: ${cRate ? `${ms(cRate.latencyMs.p99)}, ${ms(cRate.correctedP99Ms ?? 0)}` : '–'}`
      : 'not measured',
    needed: '< 25 ms',
    met: rateP99 === undefined ? null : rateP99 < 25,
  });
  const paced = find(results, 'point-paced');
  const cPaced = find(results, 'C-paced');
  targets.push({
    target: `Point lookup p99 at the same rate, evenly paced (open loop, latency from each request's due time)`,
    measured: paced ? `${ms(paced.latencyMs.p99)}; (C): ${cPaced ? ms(cPaced.latencyMs.p99) : '–'}` : 'not measured',
    needed: '< 25 ms',
    met: paced ? paced.latencyMs.p99 < 25 : null,
  });

  const servicePeaks = results.filter((r) => r.server === 'service' || r.server === 'serviceNode').map((r) => r.peakRssMiB ?? 0);
  const peak = servicePeaks.length ? Math.max(...servicePeaks) : undefined;
  targets.push({
    target: 'Peak RSS of the service process, any scenario',
    measured: peak === undefined ? 'not measured' : `${peak.toFixed(0)} MiB`,
    needed: '< 200 MiB',
    met: peak === undefined ? null : peak < 200,
  });
  return targets;
}

const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
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
      `Packages: ${Object.entries(m.packages).filter(([p]) => p !== 'autocannon').map(([p, v]) => `${p} ${v}`).join(', ')}.`,
    '',
  );

  lines.push(
    `RSS at start (listening, before any load): ${report.servers.map((sv) => `${sv.label} ${sv.startRssMiB === null ? '–' : `${sv.startRssMiB.toFixed(0)} MiB`}`).join('; ')}.`,
    '',
  );

  lines.push('## Targets', '');
  lines.push('| Target | Measured | Needed | Met |', '| --- | --- | --- | --- |');
  for (const t of report.targets) lines.push(`| ${t.target} | ${t.measured} | ${t.needed} | ${t.met === null ? '–' : t.met ? 'yes' : '**no**'} |`);
  lines.push('');

  lines.push('## Scenarios', '');
  lines.push(
    '| Scenario | Conns | req/s | p50 ms | p99 ms | Errors | Non-2xx | Peak RSS MiB | Log lines | vs baseline |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  );
  for (const r of report.scenarios) {
    const range = r.baseline?.roundRatios ? ` (rounds ${pct(r.baseline.roundRatios.min)}–${pct(r.baseline.roundRatios.max)})` : '';
    const vs = r.baseline ? `${pct(r.baseline.ratio)} of ${r.baseline.id}${range}` : '–';
    const conns = r.overallRate ? `${r.connections}, ${fmtInt(r.overallRate)}/s offered` : String(r.connections);
    lines.push(
      `| ${r.label} | ${conns} | ${fmtInt(r.requestsPerSecond)} | ${fmtMs(r.latencyMs.p50)} | ${fmtMs(r.latencyMs.p99)} | ${r.errors} | ${r.non2xx} | ${r.peakRssMiB === null ? '–' : r.peakRssMiB.toFixed(0)} | ${fmtInt(r.logLines)} | ${vs} |`,
    );
  }
  lines.push('');
  lines.push(
    'Baselines: (A) bare `node:http` answering a fixed small JSON, the HTTP ceiling; (B) a minimal Express 5 app answering the same JSON, ' +
      'the framework ceiling; (C) a minimal Express 5 app running the same prepared point select through a `pg.Pool` of the same size. ' +
      '"Uncached" scenarios send `Cache-Control: no-cache`, so every request runs its query. Latencies are per request as measured ' +
      '(2xx only; evenly paced: from when each request was due). results.json also has autocannon\'s ' +
      'coordinated-omission-corrected p99 for its rate option. ' +
      'Log lines count what the service logged during the measurement: one line per request, at info level.',
    '',
  );
  return lines.join('\n');
}
