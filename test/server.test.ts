import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { APP_VERSION } from '../lib/version.ts';

/**
 * `npm start` as a newcomer runs it: server.ts with no database settings starts the embedded
 * PostgreSQL, seeds it once, serves, and shuts down cleanly on SIGTERM.
 */
const dataDir = mkdtempSync(join(tmpdir(), 'lakebase-api-server-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));

interface Running {
  child: ChildProcess;
  port: number;
  lines: string[];
  exited: Promise<number | null>;
}

async function startServer(extraEnv: Record<string, string> = {}): Promise<Running> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    // A clean environment: no database or Databricks settings leak in from the machine.
    if (v !== undefined && !/^(PG|DATABASE_URL|DATABRICKS_|LAKEBASE_|DB_|DEFAULT_POSTGRES)/.test(k)) env[k] = v;
  }
  const child = spawn(process.execPath, ['--import', 'tsx', 'server.ts'], {
    env: { ...env, PORT: '0', SAMPLE_ROWS: '3000', EMBEDDED_PG_DATA_DIR: dataDir, LOG_LEVEL: 'info', NODE_ENV: 'production', ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`server did not start:\n${lines.join('\n')}`)), 90_000);
    let buffer = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        lines.push(line);
        const started = /Application startup complete: listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
        if (started) { clearTimeout(deadline); resolve(Number(started[1])); }
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => lines.push(chunk.toString()));
    void exited.then((code) => { clearTimeout(deadline); reject(new Error(`server exited with ${code}:\n${lines.join('\n')}`)); });
  });
  return { child, port, lines, exited };
}

test('starts on the embedded database, serves the API and the docs, and stops on SIGTERM', async () => {
  const first = await startServer();
  try {
    const count = await fetch(`http://127.0.0.1:${first.port}/trips/count`);
    assert.equal(count.status, 200);
    assert.deepEqual(await count.json(), { total_trips: 3000 });
    const docs = await fetch(`http://127.0.0.1:${first.port}/docs/`);
    assert.equal(docs.status, 200);
    assert.match(await docs.text(), /swagger-ui/);
    assert.ok(first.lines.some((l) => l.includes('Seeding')), 'the first start seeds');
    for (const line of first.lines.filter((l) => l.startsWith('{'))) assert.doesNotThrow(() => JSON.parse(line), 'logs are JSON lines');
    // Start-up says what it connected to (no secrets) before it says it is ready to serve.
    const records = first.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const connected = records.findIndex((r) => r.mode === 'embedded');
    assert.ok(connected >= 0, 'a start-up line names the mode');
    assert.deepEqual(
      { host: records[connected]!.host, database: records[connected]!.database, pool: records[connected]!.pool, version: records[connected]!.version },
      { host: '127.0.0.1', database: 'lakebase_api', pool: { size: 5, max: 15 }, version: APP_VERSION },
    );
    assert.ok(records.findIndex((r) => String(r.msg).startsWith('Application startup complete')) > connected);
    const ready = await fetch(`http://127.0.0.1:${first.port}/health/ready`);
    assert.equal(ready.status, 200);
  } finally {
    const inFlight = fetch(`http://127.0.0.1:${first.port}/trips/analytics`);
    first.child.kill('SIGTERM');
    const response = await inFlight.catch(() => undefined);
    assert.equal(response?.status, 200, 'the in-flight request finishes');
    const stopped = Date.now();
    assert.equal(await first.exited, 0);
    assert.ok(Date.now() - stopped < 15_000);
  }
  const step = (text: string) => first.lines.findIndex((l) => l.includes(text));
  const steps = ['Shutting down: readiness now answers 503', 'In-flight requests finished', 'Database pool closed', 'Shutdown complete'].map(step);
  assert.ok(steps.every((i) => i >= 0), `every shutdown step is logged: ${steps}`);
  assert.deepEqual([...steps].sort((a, b) => a - b), steps, 'readiness 503, then in-flight requests, then the pool');
  for (const line of first.lines) assert.ok(!line.includes('embedded-local-only'), `no password in the log: ${line}`);
});

test('a second start reuses the seeded data and starts in a few seconds', async () => {
  const started = Date.now();
  const second = await startServer();
  const startupMs = Date.now() - started;
  try {
    assert.ok(!second.lines.some((l) => l.includes('Seeding')), 'no re-seeding');
    assert.ok(startupMs < 15_000, `started in ${startupMs} ms`);
    const res = await fetch(`http://127.0.0.1:${second.port}/trips/count`);
    assert.deepEqual(await res.json(), { total_trips: 3000 });
  } finally {
    second.child.kill('SIGTERM');
    assert.equal(await second.exited, 0);
  }
});

test('a bad setting stops start-up with one clear message naming the variable', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server.ts'], { env: { ...process.env, DB_POOL_SIZE: 'lots' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  const code = await new Promise((resolve) => child.once('exit', resolve));
  assert.equal(code, 1);
  assert.match(stderr, /Start-up failed: Invalid configuration: DB_POOL_SIZE must be an integer/);
});
