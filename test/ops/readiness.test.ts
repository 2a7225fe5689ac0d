import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { parsePrometheusText, sampleValue } from '../support/prometheusText.ts';
import { startRestartableTestDatabase, type RestartableTestDatabase } from '../support/restartableDatabase.ts';
import { startTestService, type TestService } from '../support/testService.ts';

/** Polls `probe` until it returns a value, or fails after the deadline (never a fixed sleep). */
async function eventually<T>(what: string, probe: () => Promise<T | undefined>, deadlineMs = 30_000): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what} did not happen within ${deadlineMs} ms${last ? `: ${String(last)}` : ''}`);
}

async function scrape(service: TestService) {
  const res = await request(service.app).get('/metrics');
  assert.equal(res.status, 200);
  return parsePrometheusText(res.text);
}

describe('GET /health/ready follows the database', () => {
  let database: RestartableTestDatabase;
  let service: TestService;

  before(async () => {
    database = await startRestartableTestDatabase(500);
    service = await startTestService({ database, env: { READINESS_TIMEOUT: '5' } });
  });
  after(async () => {
    await service?.close();
    await database?.stop();
  });

  test('ready while the database answers, never cached', async () => {
    const first = await service.api.get('/health/ready');
    assert.equal(first.status, 200);
    assert.equal(first.body.status, 'ready');
    assert.deepEqual(first.body.failing, []);
    assert.equal(first.body.checks.database.status, 'up');
    assert.equal(first.body.checks.server.status, 'up');
    assert.equal(first.body.checks.token, undefined, 'no token component with a fixed password');
    assert.equal(first.headers['cache-control'], 'no-store');
    assert.equal(first.headers.etag, undefined);
    assert.equal(first.headers['x-cache'], undefined);
  });

  test('503 naming the database while it is stopped, 200 again once it is back', async () => {
    const errorsBefore = await scrape(service);
    await database.stopServer();

    // The very next probe after the stop already fails: nothing is cached.
    const down = await service.api.get('/health/ready', { headers: { 'x-request-id': 'probe-while-down' } });
    assert.equal(down.status, 503);
    assert.equal(down.headers['retry-after'], '5');
    assert.equal(down.body.status, 'not_ready');
    assert.deepEqual(down.body.failing, ['database']);
    assert.equal(down.body.checks.server.status, 'up');
    assert.equal(down.body.checks.database.status, 'down');
    assert.match(down.body.checks.database.error, /unavailable|connection was lost/i);
    assert.doesNotMatch(JSON.stringify(down.body), /embedded-local-only|127\.0\.0\.1/, 'no credentials or host in the body');
    // The failure's details are logged under the probe's request id (request scope → logger mixin).
    const warning = service.logs.records().find((r) => r.msg === 'Readiness: the database check failed' && r.reqId === 'probe-while-down');
    assert.ok(warning, 'the failed check is logged with the request id');

    // An API call in the meantime is a 503 problem carrying the id the user can quote.
    const api = await service.api.get('/trips/sample');
    assert.equal(api.status, 503);
    assert.equal(api.body.request_id, api.headers['x-request-id']);

    // The warm idle connections were cut by the stop (lost); probes could not open new ones (connect).
    const moved = (m: typeof errorsBefore, kind: string) =>
      sampleValue(m, 'lakebase_api_db_connection_errors_total', { kind }) - sampleValue(errorsBefore, 'lakebase_api_db_connection_errors_total', { kind });
    const errorsDuring = await eventually(
      'both kinds of connection error counted',
      async () => {
        await service.api.get('/health/ready');
        const m = await scrape(service);
        return moved(m, 'lost') > 0 && moved(m, 'connect') > 0 ? m : undefined;
      },
      10_000,
    );
    assert.equal(
      sampleValue(errorsDuring, 'lakebase_api_http_requests_total', { method: 'GET', route: '/health/ready', status: '503' }),
      sampleValue(errorsDuring, 'lakebase_api_http_request_duration_seconds_count', { method: 'GET', route: '/health/ready', status: '503' }),
    );
    assert.ok(
      sampleValue(errorsDuring, 'lakebase_api_http_requests_total', { method: 'GET', route: '/health/ready', status: '503' }) >= 2,
      'the 503 probes are counted under their route template',
    );

    await database.startServer();
    const up = await eventually('readiness back to 200', async () => {
      const res = await service.api.get('/health/ready');
      return res.status === 200 ? res : undefined;
    });
    assert.equal(up.body.status, 'ready');
    assert.equal(up.body.checks.database.status, 'up');
    const count = await service.api.get('/trips/count', { headers: { 'cache-control': 'no-cache' } });
    assert.equal(count.status, 200, 'the API serves again after the restart');
  });
});

describe('readiness timeout and shutdown', () => {
  let service: TestService;

  before(async () => {
    service = await startTestService({ rows: 100, env: { DB_POOL_SIZE: '1', DB_MAX_OVERFLOW: '0', READINESS_TIMEOUT: '0.3' } });
  });
  after(async () => {
    await service?.close();
  });

  test('a pool that cannot hand out a connection within READINESS_TIMEOUT is not ready', async () => {
    const held = await service.ctx.pool.connect();
    try {
      const started = Date.now();
      const res = await service.api.get('/health/ready');
      assert.equal(res.status, 503);
      assert.deepEqual(res.body.failing, ['database']);
      assert.equal(res.body.checks.database.error, 'no answer within 300 ms');
      assert.ok(Date.now() - started < 5_000, 'answers within the readiness timeout, not the pool timeout');
    } finally {
      held.release();
    }
    const res = await eventually('ready once the connection is free', async () => {
      const r = await service.api.get('/health/ready');
      return r.status === 200 ? r : undefined;
    });
    assert.equal(res.body.status, 'ready');
  });

  test('turns 503 naming the server as soon as shutdown begins', async () => {
    service.ctx.shuttingDown = true;
    try {
      const res = await service.api.get('/health/ready');
      assert.equal(res.status, 503);
      assert.deepEqual(res.body.failing, ['server']);
      assert.match(res.body.checks.server.detail, /shutting down/);
      assert.equal(res.body.checks.database.status, 'up');
      const liveness = await service.api.get('/health');
      assert.equal(liveness.status, 200, 'liveness stays up: the process must not be restarted while it drains');
    } finally {
      service.ctx.shuttingDown = false;
    }
  });
});
