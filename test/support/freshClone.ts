import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * What a newcomer or the Databricks Apps platform gets: a `git clone` of the committed tree in a
 * temporary directory, commands run in it with a clean environment, and the service's process
 * group started and stopped as a terminal or the platform does. Shared by the README quick-start
 * test and the platform-sequence test.
 */
export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface FreshClone {
  /** The temporary directory holding the clone (data directories go here too). */
  work: string;
  /** The clone itself. */
  dir: string;
  remove(): void;
}

export function cloneProject(prefix: string): FreshClone {
  const work = mkdtempSync(join(tmpdir(), prefix));
  // mkdtemp makes it private; as root, the embedded PostgreSQL runs as `postgres` and must reach the clone.
  chmodSync(work, 0o755);
  const dir = join(work, 'app');
  run('git', ['clone', '--quiet', '--no-hardlinks', projectRoot, dir], work, cleanEnv({}), 60_000);
  return { work, dir, remove: () => rmSync(work, { recursive: true, force: true }) };
}

/** A clean environment: nothing from this machine's database, Databricks or npm-run context leaks in. */
export function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (
      /^(PG|DATABASE_URL|DATABRICKS_|LAKEBASE_|DB_|DEFAULT_POSTGRES|CACHE_|TOKEN_REFRESH|EMBEDDED_PG|SAMPLE_ROWS|PORT$|HOST$|NODE_ENV$|NODE_OPTIONS$|npm_)/.test(
        k,
      )
    )
      continue;
    env[k] = v;
  }
  // Reuse the npm cache CI's own `npm ci` just filled; quieter output.
  return { ...env, npm_config_prefer_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false', ...extra };
}

export function run(command: string, args: string[], cwd: string, env: Record<string, string>, timeoutMs: number): void {
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: timeoutMs });
  assert.equal(
    result.status,
    0,
    `${command} ${args.join(' ')} failed (${result.error?.message ?? result.signal ?? result.status}):\n${(result.stdout ?? '').slice(-2000)}\n${(result.stderr ?? '').slice(-4000)}`,
  );
}

export interface Started {
  child: ChildProcess;
  url: string;
  output: string[];
  exited: Promise<number | null>;
}

/** Runs a command in its own process group and waits for the service's start-up line. */
export async function startUntilListening(command: string, args: string[], cwd: string, env: Record<string, string>, timeoutMs: number): Promise<Started> {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const output: string[] = [];
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const url = await new Promise<string>((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start-up line within ${timeoutMs} ms:\n${output.join('').slice(-4000)}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      output.push(chunk.toString());
      const started = /Application startup complete: listening on (http:\/\/[\d.]+:\d+)/.exec(output.join(''));
      if (started) {
        clearTimeout(timer);
        resolvePromise(started[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before listening:\n${output.join('').slice(-4000)}`));
    });
  });
  return { child, url, output, exited };
}

/**
 * SIGTERM to the whole process group (npm, its shell and node get it, as from a terminal's
 * Ctrl-C or a platform stop), then wait until every process of the group is gone.
 */
export async function stop(started: Started): Promise<{ code: number | null; ms: number; graceful: boolean }> {
  const began = Date.now();
  const group = -started.child.pid!;
  try {
    process.kill(group, 'SIGTERM');
  } catch {
    // already gone
  }
  const code = await started.exited;
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      process.kill(group, 0);
    } catch {
      break; // no process left in the group
    }
    if (Date.now() > deadline) {
      process.kill(group, 'SIGKILL');
      throw new Error(`processes of the group were still running 20 s after SIGTERM:\n${started.output.join('').slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { code, ms: Date.now() - began, graceful: started.output.join('').includes('Shutdown complete') };
}
