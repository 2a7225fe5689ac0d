import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { createExpressApp } from '../../lib/http/adapters/express.ts';
import { loadConfig } from '../../lib/ground/config.ts';
import { createContext } from '../../lib/context.ts';
import type { Context } from '../../lib/http/serviceContext.ts';
import type { PasswordSource, TokenState } from '../../lib/db/connectionTarget.ts';
import { embeddedTarget } from '../../lib/db/resolveConnectionTarget.ts';
import { createRouter } from '../../lib/http/router.ts';
import { APP_VERSION } from '../../lib/version.ts';
import type { ApiClient } from '../support/api.ts';
import { captureLogs } from '../support/logCapture.ts';
import { parsePrometheusText, sampleValue, samples } from '../support/prometheusText.ts';
import { serveContext, startTestDatabase, type TestDatabase } from '../support/testService.ts';
import { apiService } from '../../functions/index.ts';

/**
 * A stand-in for the Lakebase token manager: hands out the embedded database's password as "the
 * token" and reports whatever state a test sets. Readiness and metrics only ever see `state()`.
 */
class FakeTokenSource implements PasswordSource {
  current: TokenState;

  constructor(private readonly password: string) {
    this.current = FakeTokenSource.healthy();
  }

  static healthy(): TokenState {
    return {
      valid: true,
      expiresAt: new Date(Date.now() + 42 * 60_000),
      secondsToExpiry: 42 * 60,
      ageSeconds: 18 * 60,
      lastRefreshAt: new Date(Date.now() - 18 * 60_000),
      lastError: null,
      refreshCount: 3,
      refreshFailures: 1,
    };
  }

  async getPassword(): Promise<string> {
    return this.password;
  }
  async refresh(): Promise<void> {
    this.current = { ...this.current, refreshCount: this.current.refreshCount + 1 };
  }
  state(): TokenState {
    return this.current;
  }
  async stop(): Promise<void> {}
}

describe('readiness and metrics report the OAuth token', () => {
  let database: TestDatabase;
  let ctx: Context;
  let api: ApiClient;
  let app: ReturnType<typeof createExpressApp>;
  let tokens: FakeTokenSource;
  const logs = captureLogs();

  before(async () => {
    database = await startTestDatabase(100);
    tokens = new FakeTokenSource(database.server.password);
    ctx = await createContext({
      config: loadConfig({ DB_POOL_SIZE: '1', DB_MAX_OVERFLOW: '2' }),
      logger: logs.logger,
      version: APP_VERSION,
      target: { ...embeddedTarget(database.server, async () => undefined), mode: 'lakebase-provisioned', password: tokens },
    });
    ({ app, api } = serveContext(ctx));
  });
  after(async () => {
    await ctx?.close();
    await database?.stop();
  });

  async function scrape() {
    const res = await request(app).get('/metrics');
    assert.equal(res.status, 200);
    return parsePrometheusText(res.text);
  }

  test('a valid token: ready, with its expiry and refresh history', async () => {
    tokens.current = FakeTokenSource.healthy();
    const res = await api.get('/health/ready');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.failing, []);
    const token = res.body.checks.token;
    assert.equal(token.status, 'up');
    assert.equal(token.valid, true);
    assert.equal(token.minutes_to_expiry, 42);
    assert.equal(token.expires_at, tokens.current.expiresAt!.toISOString());
    assert.equal(token.refreshes, 3);
    assert.equal(token.refresh_failures, 1);
    assert.equal(token.last_error, null);

    const metrics = await scrape();
    assert.equal(sampleValue(metrics, 'lakebase_api_token_valid'), 1);
    assert.equal(sampleValue(metrics, 'lakebase_api_token_expiry_seconds'), 42 * 60);
    assert.equal(sampleValue(metrics, 'lakebase_api_token_age_seconds'), 18 * 60);
    assert.equal(sampleValue(metrics, 'lakebase_api_token_refreshes_total'), 3);
    assert.equal(sampleValue(metrics, 'lakebase_api_token_refresh_failures_total'), 1);
    assert.equal(sampleValue(metrics, 'lakebase_api_info', { mode: 'lakebase-provisioned' }), 1);
  });

  test('a failed refresh while the token is still valid is reported, not failing', async () => {
    tokens.current = { ...FakeTokenSource.healthy(), lastError: 'workspace answered 503', refreshFailures: 2 };
    const res = await api.get('/health/ready');
    assert.equal(res.status, 200);
    assert.equal(res.body.checks.token.last_error, 'workspace answered 503');
    const metrics = await scrape();
    assert.equal(sampleValue(metrics, 'lakebase_api_token_refresh_failures_total'), 2, 'read from the token source, not counted twice');
  });

  test('no valid token: 503 naming the token while the database itself still answers', async () => {
    tokens.current = {
      ...FakeTokenSource.healthy(),
      valid: false,
      expiresAt: new Date(Date.now() - 30_000),
      secondsToExpiry: -30,
      ageSeconds: 3630,
      lastError: 'workspace unreachable',
      refreshFailures: 7,
    };
    const res = await api.get('/health/ready');
    assert.equal(res.status, 503);
    assert.deepEqual(res.body.failing, ['token']);
    assert.equal(res.body.checks.database.status, 'up', 'open connections keep working after expiry');
    assert.equal(res.body.checks.token.valid, false);
    assert.equal(res.body.checks.token.minutes_to_expiry, -0.5);
    assert.equal(res.body.checks.token.last_error, 'workspace unreachable');

    const metrics = await scrape();
    assert.equal(sampleValue(metrics, 'lakebase_api_token_valid'), 0);
    assert.equal(sampleValue(metrics, 'lakebase_api_token_expiry_seconds'), -30);
    assert.equal(sampleValue(metrics, 'lakebase_api_token_refresh_failures_total'), 7);
  });

  test('before any token was obtained the gauges are NaN, not a misleading 0', async () => {
    tokens.current = {
      valid: false,
      expiresAt: null,
      secondsToExpiry: null,
      ageSeconds: null,
      lastRefreshAt: null,
      lastError: null,
      refreshCount: 0,
      refreshFailures: 0,
    };
    const res = await api.get('/health/ready');
    assert.equal(res.status, 503);
    assert.equal(res.body.checks.token.minutes_to_expiry, null);
    const metrics = await scrape();
    assert.ok(Number.isNaN(sampleValue(metrics, 'lakebase_api_token_expiry_seconds')));
    assert.ok(Number.isNaN(sampleValue(metrics, 'lakebase_api_token_age_seconds')));
  });

  test('the token (the database password here) is in no response and no log line', async () => {
    const secret = database.server.password;
    for (const path of ['/health/ready', '/metrics', '/trips/1']) {
      const res = await request(app).get(path);
      assert.ok(!res.text.includes(secret), `${path} does not contain the token`);
    }
    assert.ok(logs.lines.length > 0);
    for (const line of logs.lines) assert.ok(!line.includes(secret), `log line leaks the token: ${line}`);
  });
});

describe('without OAuth', () => {
  test('there are no token metrics at all (not zeros that would page someone)', async () => {
    const database = await startTestDatabase(50);
    const ctx = await createContext({
      config: loadConfig({ DB_POOL_SIZE: '1', DB_MAX_OVERFLOW: '0' }),
      logger: captureLogs().logger,
      version: APP_VERSION,
      target: embeddedTarget(database.server, async () => undefined),
    });
    try {
      const res = await request(createExpressApp(createRouter(apiService, ctx), { maxBodyBytes: 1024 })).get('/metrics');
      const metrics = parsePrometheusText(res.text);
      assert.ok(metrics.has('lakebase_api_db_pool_connections'));
      assert.deepEqual(
        [...metrics.keys()].filter((name) => name.startsWith('lakebase_api_token_')),
        [],
      );
      assert.equal(samples(metrics, 'lakebase_api_info', { mode: 'embedded' }).length, 1);
    } finally {
      await ctx.close();
      await database.stop();
    }
  });
});
