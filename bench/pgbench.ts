/**
 * The database's own ceiling for a point select: pgbench (PostgreSQL's load tool, when installed)
 * running (C)'s statement, prepared (`-M prepared`), with a random id per transaction, against the
 * bench database. No HTTP and no Node: what PostgreSQL on this machine answers at most.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TRIP_COLUMNS } from '../functions/tripColumns.ts';

export interface PgbenchResult {
  /** Transactions (one point select each) per second, without initial connection time. */
  tps: number;
  clients: number;
  seconds: number;
  version: string;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('error', (err) => resolve({ code: null, output: err.message }));
    child.once('exit', (code) => resolve({ code, output }));
  });
}

/** pgbench's prepared point-select rate, or null (with a note in the log) when pgbench is not installed or fails. */
export async function runPgbenchPointSelect(options: {
  env: Record<string, string>;
  rows: number;
  /** `schema.table`, plain identifiers (validated by the config). */
  table: string;
  clients: number;
  seconds: number;
  log: (message: string) => void;
}): Promise<PgbenchResult | null> {
  const env = { PATH: process.env.PATH, ...options.env };
  const version = await run('pgbench', ['--version'], env);
  if (version.code !== 0) {
    options.log(`pgbench not available (${version.output.trim() || 'not found'}): no database ceiling in this run`);
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), 'lakebase-api-pgbench-'));
  try {
    const script = join(dir, 'point-select.sql');
    writeFileSync(script, `\\set id random(1, ${options.rows})\nSELECT ${TRIP_COLUMNS} FROM ${options.table} WHERE id = :id;\n`);
    const seconds = Math.max(1, Math.round(options.seconds));
    const threads = Math.min(2, options.clients);
    const result = await run(
      'pgbench',
      ['-n', '-M', 'prepared', '-f', script, '-c', String(options.clients), '-j', String(threads), '-T', String(seconds)],
      env,
    );
    const tps = /tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)\)/.exec(result.output);
    if (result.code !== 0 || !tps) {
      options.log(`pgbench failed (exit ${result.code}): ${result.output.trim().split('\n').slice(-3).join(' | ')}`);
      return null;
    }
    return { tps: Number(tps[1]), clients: options.clients, seconds, version: version.output.trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
