import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { LambdaResult } from '../../lib/http/adapters/lambda.ts';
import { ConfigError } from '../../lib/ground/settingsReaders.ts';
import { processAlive } from '../../lib/db/embeddedPostgres.ts';
import { bundleLambda } from '../../tools/bundleLambda.ts';
import { startFetchExample } from '../support/fetchExample.ts';
import { startTestDatabase, type TestDatabase } from '../support/testService.ts';

/** The example entry points, run as a user would run them. */
const run = promisify(execFile);

async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('examples/lambda/index.ts', () => {
  let database: TestDatabase;
  // The entry reads process.env, as on Lambda: set what it needs, put everything back after.
  const touched = ['DATABASE_URL', 'PGHOST', 'DB_POOL_SIZE', 'DB_MAX_OVERFLOW', 'LOG_LEVEL', 'AUTH_MODE'];
  const saved = Object.fromEntries(touched.map((name) => [name, process.env[name]]));
  before(async () => {
    database = await startTestDatabase(100);
  });
  after(async () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await database?.stop();
  });

  test('refuses to be open by default and the embedded default, then serves from DATABASE_URL with a one-connection pool', async () => {
    for (const name of touched) delete process.env[name];
    process.env.LOG_LEVEL = 'silent';
    const { handler } = await import('../../examples/lambda/index.ts');
    const event = JSON.parse(readFileSync(new URL('../adapters/fixtures/apigw-v2-event.json', import.meta.url), 'utf8')) as APIGatewayProxyEventV2;
    try {
      // Secure by default: API Gateway makes the function reachable, so no AUTH_MODE is no start, in one line.
      await assert.rejects(
        handler(event),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.variable === 'AUTH_MODE' &&
          !err.message.includes('\n') &&
          /AUTH_MODE must be set on AWS Lambda.*one of apps-proxy, databricks-token, jwt, none/.test(err.message),
      );
      process.env.AUTH_MODE = 'none';
      await assert.rejects(handler(event), (err: unknown) => err instanceof ConfigError && /embedded database is for local use only/.test(err.message));
      const { server } = database;
      process.env.DATABASE_URL = `postgresql://${server.user}:${server.password}@${server.host}:${server.port}/${server.database}`;
      const result = await handler(event);
      assert.equal(result.statusCode, 200);
      assert.equal(JSON.parse(result.body).id, 42);
      const { rows } = await database.admin.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'lakebase-api' AND datname = $1",
        [server.database],
      );
      assert.equal(rows[0]!.n, 1, 'one warm connection per container');
    } finally {
      await handler.close();
    }
  });

  test('bundled for Lambda (npm run bundle:lambda), it runs on plain node with nothing else installed', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'lakebase-api-bundle-'));
    try {
      const entry = await bundleLambda(outDir);
      // Invokes the bundle as the Lambda runtime would: import, call handler(event), print the results.
      const probe = join(outDir, 'probe.mjs');
      writeFileSync(
        probe,
        `
        import { readFileSync } from 'node:fs';
        const { handler } = await import(${JSON.stringify(pathToFileURL(entry).href)});
        const event = JSON.parse(readFileSync(${JSON.stringify(fileURLToPath(new URL('../adapters/fixtures/apigw-v1-event.json', import.meta.url)))}, 'utf8'));
        const trip = await handler(event);
        const icon = await handler({ ...event, path: '/docs/favicon-32x32.png' });
        await handler.close();
        console.log(JSON.stringify({ trip, icon }));
      `,
      );
      const { server } = database;
      const env = {
        PATH: process.env.PATH,
        LOG_LEVEL: 'silent',
        AUTH_MODE: 'none',
        DATABASE_URL: `postgresql://${server.user}:${server.password}@${server.host}:${server.port}/${server.database}`,
      };
      const { stdout } = await run(process.execPath, [probe], { cwd: outDir, env, timeout: 30_000 });
      const { trip, icon } = JSON.parse(stdout) as Record<string, LambdaResult>;
      assert.equal(trip!.statusCode, 200);
      assert.equal(JSON.parse(trip!.body).id, 42);
      assert.equal(icon!.statusCode, 200, 'the docs assets ship with the bundle');
      assert.equal(icon!.isBase64Encoded, true);
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
  });
});

describe('examples/fetch-server.ts', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'lakebase-api-example-'));
  let child: ChildProcess | undefined;
  after(async () => {
    // Whatever happened, leave no server behind: the example, then its database.
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    const pidFile = join(dataDir, 'postmaster.pid');
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').split('\n')[0]) : 0;
    if (pid > 0 && processAlive(pid)) {
      process.kill(pid, 'SIGINT');
      await until('the orphaned PostgreSQL to stop', () => (processAlive(pid) ? undefined : true), 15_000).catch(() => undefined);
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('serves the API over the embedded default and stops it on SIGTERM', async () => {
    const example = await startFetchExample({ SAMPLE_ROWS: '50', EMBEDDED_PG_DATA_DIR: dataDir, LOG_LEVEL: 'warn', DB_POOL_SIZE: '1' }, (spawned) => {
      child = spawned;
    });
    const { base, exited } = example;

    const count = await fetch(`${base}/trips/count`);
    assert.equal(count.status, 200);
    assert.deepEqual(await count.json(), { total_trips: 50 });
    const head = await fetch(`${base}/trips/1`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.ok(head.headers.get('etag'));
    assert.equal((await head.arrayBuffer()).byteLength, 0);
    const written = await fetch(`${base}/trips/1/vendor`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'example-1' },
      body: '{"vendor_id":"2"}',
    });
    assert.equal(written.status, 200);
    assert.equal(written.headers.get('x-request-id'), 'example-1');
    assert.equal((await written.json()).vendor_id, '2');
    const tooLarge = await fetch(`${base}/trips/1/vendor`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(1_000_000) });
    assert.equal(tooLarge.status, 413);
    assert.equal(tooLarge.headers.get('content-type'), 'application/problem+json; charset=utf-8');

    const postgresPid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    assert.ok(processAlive(postgresPid));
    example.child.kill('SIGTERM');
    assert.equal(await exited, 0, example.output());
    await until('the embedded PostgreSQL to stop', () => (processAlive(postgresPid) ? undefined : true), 15_000);
  });
});
