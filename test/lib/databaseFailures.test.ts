import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createExpressApp } from '../../lib/http/adapters/express.ts';
import { loadConfig } from '../../lib/ground/config.ts';
import { createContext } from '../../lib/context.ts';
import type { Context } from '../../lib/http/serviceContext.ts';
import type { ConnectionTarget } from '../../lib/db/connectionTarget.ts';
import type { Handler, HandlerInput } from '../../lib/http/handler.ts';
import { createRouter } from '../../lib/http/router.ts';
import { handlers } from '../../functions/index.ts';
import { buildOpenApiDocument } from '../../openapi/document.ts';
import { ApiClient } from '../support/api.ts';
import { ContractChecker } from '../support/contract.ts';
import { reportFigures } from '../support/figures.ts';
import { captureLogs } from '../support/logCapture.ts';
import { startTestDatabase, type TestDatabase } from '../support/testService.ts';
import { apiService } from '../../functions/index.ts';

/** A test-only operation that holds a connection in pg_sleep, to exhaust the pool or hit the statement timeout. */
const sleepForTest: Handler<HandlerInput<object, { seconds: number }>> = async ({ query }, ctx) => {
  await ctx.db.query({ text: 'SELECT pg_sleep($1)', values: [query.seconds] });
  return { body: { slept: query.seconds } };
};

function documentWithSleep() {
  const document = buildOpenApiDocument('test');
  const countResponses = document.paths!['/trips/count']!.get!.responses;
  document.paths!['/test/sleep'] = {
    get: {
      operationId: 'sleepForTest',
      parameters: [{ name: 'seconds', in: 'query', required: true, schema: { type: 'number', minimum: 0, maximum: 30 } }],
      responses: { ...countResponses, '200': { description: 'slept', content: { 'application/json': { schema: { type: 'object' } } } } },
    },
  };
  return document;
}

let database: TestDatabase;
before(async () => {
  database = await startTestDatabase(100);
});
after(async () => {
  await database?.stop();
});

async function serviceWith(
  env: Record<string, string>,
  target?: Partial<ConnectionTarget>,
): Promise<{ ctx: Context; api: ApiClient; logs: ReturnType<typeof captureLogs> }> {
  const config = loadConfig(env);
  const logs = captureLogs();
  const { server } = database;
  const ctx = await createContext({
    config,
    logger: logs.logger,
    version: 'test',
    warm: false,
    target: {
      mode: 'postgres',
      host: server.host,
      port: server.port,
      database: server.database,
      user: server.user,
      password: server.password,
      ssl: false,
      description: 'test',
      close: async () => undefined,
      ...target,
    },
  });
  const document = documentWithSleep();
  const router = createRouter(apiService, ctx, { document, handlers: { ...handlers, sleepForTest } });
  return { ctx, logs, api: new ApiClient(createExpressApp(router, { maxBodyBytes: 1024 }), new ContractChecker(document)) };
}

test('a statement past DB_COMMAND_TIMEOUT is cancelled by the server and answered 504 with Retry-After', async () => {
  const { ctx, api } = await serviceWith({ DB_COMMAND_TIMEOUT: '0.3' });
  try {
    const started = Date.now();
    const res = await api.get('/test/sleep?seconds=5');
    assert.equal(res.status, 504);
    assert.ok(Number(res.headers['retry-after']) > 0);
    assert.ok(Date.now() - started < 3000, 'cancelled at the timeout, not after the sleep');
    assert.ok(res.body.request_id, '5xx problems carry the request id');
    const answeredMs = Date.now() - started;
    const { rows } = await database.admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'");
    assert.equal(rows[0].n, 0, 'nothing is left running on the server');
    reportFigures('statement timeout', {
      command_timeout_ms: 300,
      statement_ms: 5000,
      status: res.status,
      answered_after_ms: answeredMs,
      left_running_on_server: rows[0].n,
    });
  } finally {
    await ctx.close();
  }
});

test('an exhausted pool answers 503 within DB_POOL_TIMEOUT and recovers when a connection frees up', async () => {
  const { ctx, api } = await serviceWith({ DB_POOL_SIZE: '1', DB_MAX_OVERFLOW: '0', DB_POOL_TIMEOUT: '0.5' });
  try {
    const slow = api.get('/test/sleep?seconds=1.5');
    await new Promise((resolve) => setTimeout(resolve, 200)); // let the slow request take the only connection
    const started = Date.now();
    const starved = await api.get('/trips/count');
    const waited = Date.now() - started;
    assert.equal(starved.status, 503);
    assert.ok(starved.headers['retry-after']);
    assert.ok(waited >= 400 && waited < 1400, `waited ${waited} ms for a 0.5 s pool timeout`);
    assert.equal((await slow).status, 200);
    const recovered = await api.get('/trips/count');
    assert.equal(recovered.status, 200);
    reportFigures('pool exhaustion', {
      pool_max: 1,
      pool_timeout_ms: 500,
      starved_status: starved.status,
      starved_waited_ms: waited,
      holder_status: 200,
      next_request_status: recovered.status,
    });
  } finally {
    await ctx.close();
  }
});

test('an unreachable database is a 503 with Retry-After, and the details stay in the log', async () => {
  const { ctx, api, logs } = await serviceWith({ DB_POOL_TIMEOUT: '2' }, { port: 1 });
  try {
    const res = await api.get('/trips/7');
    assert.equal(res.status, 503);
    assert.ok(res.headers['retry-after']);
    assert.doesNotMatch(res.text, /ECONNREFUSED|127\.0\.0\.1/);
    assert.ok(logs.lines.some((l) => l.includes('ECONNREFUSED')));
  } finally {
    await ctx.close();
  }
});

test('an unexpected database error is a generic 500 without internals', async () => {
  const { ctx, api } = await serviceWith({ DEFAULT_POSTGRES_TABLE: 'no_such_table' });
  try {
    const res = await api.get('/trips/count');
    assert.equal(res.status, 500);
    assert.doesNotMatch(res.text, /no_such_table|relation/);
    assert.ok(res.body.request_id);
  } finally {
    await ctx.close();
  }
});
