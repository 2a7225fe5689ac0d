import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/**
 * The README's quick start, followed literally on a clean copy: the two commands at the top of
 * README.md are parsed, not restated, so the README cannot drift from what works. The copy is a
 * `git clone` of the committed tree (what a newcomer gets). The same clone is also installed the
 * way Databricks Apps does it (NODE_ENV=production: no devDependencies) and started with
 * app.yaml's command.
 *
 * The test command is not run here (it would run this suite again); it is checked to be the
 * package's test script, which is what .ci/run runs.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

/** The commands of the first fenced block, comments stripped. */
function quickStartCommands(): string[] {
  const block = /^```(?:bash|sh)\n([\s\S]*?)^```/m.exec(readme);
  assert.ok(block, 'README.md has a shell code block');
  const before = readme.slice(0, block.index);
  assert.match(before.trim(), /^# [^\n]+$/, 'the commands are the first thing after the title');
  return block[1]!.split('\n').map((line) => line.replace(/\s+#.*$/, '').trim()).filter(Boolean);
}

/** A clean environment: nothing from this machine's database, Databricks or npm-run context leaks in. */
function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (/^(PG|DATABASE_URL|DATABRICKS_|LAKEBASE_|DB_|DEFAULT_POSTGRES|CACHE_|TOKEN_REFRESH|EMBEDDED_PG|SAMPLE_ROWS|PORT$|HOST$|NODE_ENV$|npm_)/.test(k)) continue;
    env[k] = v;
  }
  // Reuse the npm cache CI's own `npm ci` just filled; quieter output.
  return { ...env, npm_config_prefer_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false', ...extra };
}

interface Started {
  child: ChildProcess;
  url: string;
  output: string[];
  exited: Promise<number | null>;
}

/** Runs a command in its own process group and waits for the service's start-up line. */
async function startUntilListening(command: string, args: string[], cwd: string, env: Record<string, string>, timeoutMs: number): Promise<Started> {
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
async function stop(started: Started): Promise<{ code: number | null; ms: number; graceful: boolean }> {
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

function run(command: string, args: string[], cwd: string, env: Record<string, string>, timeoutMs: number): void {
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: timeoutMs });
  assert.equal(result.status, 0, `${command} ${args.join(' ')} failed (${result.error?.message ?? result.signal ?? result.status}):\n${(result.stdout ?? '').slice(-2000)}\n${(result.stderr ?? '').slice(-4000)}`);
}

describe('README quick start on a clean clone', { timeout: 420_000 }, () => {
  let work: string;
  let clone: string;
  const commands = quickStartCommands();

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'lakebase-api-quickstart-'));
    // mkdtemp makes it private; as root, the embedded PostgreSQL runs as `postgres` and must reach the clone.
    chmodSync(work, 0o755);
    clone = join(work, 'app');
    run('git', ['clone', '--quiet', '--no-hardlinks', root, clone], work, cleanEnv({}), 60_000);
  });
  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('the README opens with exactly the two commands, and the test command is the one CI runs', () => {
    assert.deepEqual(commands, ['npm install && npm start', 'npm test']);
    const pkg = JSON.parse(readFileSync(join(clone, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.ok(pkg.scripts.test, 'package.json has a test script');
    // .ci/run may choose the Node it runs on with variable assignments before the command
    // (`PATH="$(dirname "$platform_node"):$PATH" npm test`); the command itself is the README's.
    const ci = readFileSync(join(clone, '.ci/run'), 'utf8').split('\n').map((l) => l.trim());
    const runs = ci.some((line) => line === commands[1] || (line.endsWith(` ${commands[1]}`) && /^[A-Z_][A-Z0-9_]*=/.test(line)));
    assert.ok(runs, `.ci/run runs "${commands[1]}"`);
  });

  test('installed as Databricks Apps does (NODE_ENV=production), app.yaml\'s command serves the API', async () => {
    run('npm', ['install'], clone, cleanEnv({ NODE_ENV: 'production' }), 240_000);
    assert.ok(!existsSync(join(clone, 'node_modules/playwright-core')), 'devDependencies were skipped');
    assert.ok(existsSync(join(clone, 'node_modules/tsx')), 'tsx (needed at run time) was installed');

    const appYaml = parse(readFileSync(join(clone, 'app.yaml'), 'utf8')) as { command: string[] };
    const [command, ...args] = appYaml.command;
    const port = String(20_000 + Math.floor(Math.random() * 20_000));
    const started = await startUntilListening(command!, args, clone, cleanEnv({
      NODE_ENV: 'production',
      DATABRICKS_APP_NAME: 'lakebase-api',
      DATABRICKS_APP_PORT: port,
      SAMPLE_ROWS: '1500',
      EMBEDDED_PG_DATA_DIR: join(work, 'data-app'),
    }), 120_000);
    try {
      assert.equal(started.url, `http://0.0.0.0:${port}`, 'an app listens on 0.0.0.0 at DATABRICKS_APP_PORT');
      const res = await fetch(`http://127.0.0.1:${port}/trips/count`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { total_trips: 1500 });
    } finally {
      const stopped = await stop(started);
      assert.equal(stopped.code, 0, started.output.join('').slice(-2000));
      assert.ok(stopped.graceful, 'the server shut down cleanly');
      assert.ok(stopped.ms < 15_000, `exits within 15 s of SIGTERM (took ${stopped.ms} ms)`);
    }
  });

  test(`"${commands[0]}" as written starts the API`, async () => {
    // Exactly the README's line, through a shell; only where to listen and how much to seed differ.
    const started = await startUntilListening('bash', ['-c', commands[0]!], clone, cleanEnv({
      PORT: '0',
      SAMPLE_ROWS: '1200',
      EMBEDDED_PG_DATA_DIR: join(work, 'data-readme'),
    }), 240_000);
    try {
      assert.match(started.url, /^http:\/\/127\.0\.0\.1:\d+$/, 'locally it binds loopback');
      assert.ok(existsSync(join(clone, 'node_modules/playwright-core')), 'npm install (no NODE_ENV) also installs devDependencies');
      const count = await fetch(`${started.url}/trips/count`);
      assert.equal(count.status, 200);
      assert.deepEqual(await count.json(), { total_trips: 1200 });
      const docs = await fetch(`${started.url}/docs/`);
      assert.equal(docs.status, 200);
    } finally {
      const stopped = await stop(started);
      assert.ok(stopped.graceful, `the server shut down cleanly:\n${started.output.join('').slice(-2000)}`);
    }
  });
});
