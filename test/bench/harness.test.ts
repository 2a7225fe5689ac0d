import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { BenchReport } from '../../bench/report.ts';
import { allScenarioIds, SERVICE_KEYS } from '../../bench/scenarios.ts';

/**
 * `npm run bench` in its quickest mode on a small table: proves the harness runs end to end (the
 * database, eight server processes (the service compiled, through tsx, with OpenTelemetry export and with AUTH_MODE=jwt among them), an OTLP sink, the start-up measurement, the load generator, both reports), measuring nothing.
 */
const outDir = mkdtempSync(join(tmpdir(), 'lakebase-api-bench-out-'));
// Its own directory under the system temp dir: as root, PostgreSQL runs as another user that must reach it.
const dataDir = mkdtempSync(join(tmpdir(), 'lakebase-api-bench-data-'));
after(() => {
  rmSync(outDir, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
});

test('the benchmark harness runs every scenario and writes both reports', { timeout: 120_000 }, async () => {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(PG|DATABASE_URL|DATABRICKS_|LAKEBASE_|DB_|DEFAULT_POSTGRES|BENCH_)/.test(k)) env[k] = v;
  }
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts'], {
    env: { ...env, BENCH_QUICK: '1', BENCH_ROWS: '2000', BENCH_DATA_DIR: dataDir, BENCH_OUT_DIR: outDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, output);

  const report = JSON.parse(readFileSync(join(outDir, 'results.json'), 'utf8')) as BenchReport;
  const expected = allScenarioIds(2000);
  assert.deepEqual(
    report.scenarios.map((s) => s.id),
    expected,
  );
  for (const s of report.scenarios) {
    assert.ok(s.requests > 0, `${s.id} completed no request`);
    assert.equal(s.non2xx, 0, `${s.id}: ${JSON.stringify(s.statusCodes)}`);
    assert.equal(s.errors, 0, `${s.id} had connection errors`);
    assert.ok(s.peakRssMiB !== null && s.peakRssMiB > 0, `${s.id} has no peak RSS`);
    // The service really logs: one line per request it answered, at info level.
    if (SERVICE_KEYS.includes(s.server)) assert.ok(s.logLines >= s.requests, `${s.id}: ${s.logLines} log lines for ${s.requests} requests`);
    else assert.equal(s.logLines, 0, `${s.id}: a baseline logged`);
  }
  assert.ok(report.scenarios.find((s) => s.id === 'point')!.baseline?.id === 'C');
  assert.equal(report.targets.length, 14);
  assert.equal(report.servers.length, 9);
  // The start-up measurement: both builds of the real entry point, in both database modes.
  assert.deepEqual(report.startup.map((r) => `${r.mode}/${r.build}`).sort(), [
    'embedded/compiled',
    'embedded/tsx',
    'plain Postgres/compiled',
    'plain Postgres/tsx',
  ]);
  for (const r of report.startup) {
    assert.equal(r.startsMs.length, 1, `${r.mode}/${r.build} started once in a quick run`);
    assert.ok(r.startsMs[0]! > 0 && r.idleRssMiB[0]! > 0);
  }
  // The telemetry scenarios really exported: the sink took exports, and the drops were read from /metrics.
  assert.ok(report.telemetry && report.telemetry.sinkExports > 0, JSON.stringify(report.telemetry));
  // Per exporting service: as the platform starts it, and with every request traced.
  assert.deepEqual(Object.keys(report.telemetry.dropped).sort(), ['default sampler', 'every request traced']);
  for (const counts of Object.values(report.telemetry.dropped)) assert.deepEqual(Object.keys(counts).sort(), ['logs', 'metrics', 'traces']);
  assert.equal(report.scenarios.find((s) => s.id === 'point-otel')!.baseline?.id, 'point-otel-off');
  assert.equal(report.scenarios.find((s) => s.id === 'point-otel-all')!.baseline?.id, 'point-otel-off-all');
  for (const server of report.servers) assert.ok(server.startRssMiB !== null && server.startRssMiB > 0, `${server.label} has no RSS at start`);
  assert.match(report.machine.postgres, /^\d+/);

  const markdown = readFileSync(join(outDir, 'RESULTS.md'), 'utf8');
  assert.match(markdown, /Quick smoke run/);
  assert.match(markdown, /\| embedded \| \d+ ms \| \d+ ms \| \d+ MiB \| \d+ MiB \| \d+% \|/);
  assert.match(markdown, /\| GET \/trips\/\{id\} \(random ids\) \| 4 \|/);
  assert.ok(!existsSync(join(outDir, 'out', 'service.log')), 'server logs are removed after the run');
});
