import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import request from 'supertest';
import type { Express } from 'express';
import { loadConfig } from '../../lib/ground/config.ts';
import type { Context } from '../../lib/http/serviceContext.ts';
import { openContext } from '../../lib/openContext.ts';
import type { ApiClient } from '../support/api.ts';
import { captureLogs } from '../support/logCapture.ts';
import { parsePrometheusText, sampleValue } from '../support/prometheusText.ts';
import { serveContext } from '../support/testService.ts';
import { linesLeakingSecrets, startEmulatedLakebase, waitFor, type EmulatedLakebase } from '../support/workspaceEmulator.ts';

/**
 * The real token manager, through the emulated workspace: readiness and metrics report its state
 * as it obtains a token, loses the workspace until the token expires, and recovers.
 */
const fastTokens = {
  TOKEN_REFRESH_INTERVAL_SECONDS: '2',
  TOKEN_REFRESH_MARGIN_SECONDS: '1',
  TOKEN_REFRESH_RETRY_MIN_SECONDS: '0.2',
  TOKEN_REFRESH_RETRY_MAX_SECONDS: '0.5',
  WORKSPACE_REQUEST_TIMEOUT_SECONDS: '1',
};

let lb: EmulatedLakebase;
let ctx: Context;
let app: Express;
let api: ApiClient;
const logs = captureLogs();

before(async () => {
  lb = await startEmulatedLakebase({ rows: 50, tokenLifetimeSeconds: 4 });
  const env = lb.env('m2m', 'provisioned', { ...fastTokens, DB_POOL_SIZE: '1', DB_MAX_OVERFLOW: '2' });
  ctx = await openContext(loadConfig(env), env, logs.logger);
  ({ app, api } = serveContext(ctx));
});
after(async () => {
  await ctx?.close();
  await lb?.emulator.up();
  await lb?.stop();
});

async function scrape() {
  const res = await request(app).get('/metrics');
  assert.equal(res.status, 200);
  return parsePrometheusText(res.text);
}

test('with a Lakebase token: ready, token reported; 503 naming the token once it expires with the workspace down; ready again after', async () => {
  const ready = await api.get('/health/ready');
  assert.equal(ready.status, 200);
  assert.equal(ready.body.checks.token.status, 'up');
  assert.ok(ready.body.checks.token.refreshes >= 1);
  // A 4-second token: minutes_to_expiry is rounded to 0.1 min, so it reads 0 once less than 3 s are left,
  // which a busy machine reaches before this check. The expiry itself must lie after the refresh.
  assert.ok(ready.body.checks.token.minutes_to_expiry >= 0);
  assert.ok(Date.parse(ready.body.checks.token.expires_at) > Date.parse(ready.body.checks.token.last_refresh_at));
  let metrics = await scrape();
  assert.equal(sampleValue(metrics, 'lakebase_api_token_valid'), 1);
  assert.ok(sampleValue(metrics, 'lakebase_api_token_refreshes_total') >= 1);
  assert.ok(sampleValue(metrics, 'lakebase_api_token_expiry_seconds') <= 4);
  assert.equal(sampleValue(metrics, 'lakebase_api_info', { mode: 'lakebase-provisioned' }), 1);

  await lb.emulator.down();
  const expired = await waitFor(
    'readiness to fail on the expired token',
    async () => {
      const res = await api.get('/health/ready');
      return res.status === 503 && res.body.failing.includes('token') ? res : null;
    },
    15_000,
    200,
  );
  assert.equal(expired.body.checks.token.valid, false);
  assert.ok(expired.body.checks.token.last_error, 'the refresh error is shown');
  metrics = await scrape();
  assert.equal(sampleValue(metrics, 'lakebase_api_token_valid'), 0);
  assert.ok(sampleValue(metrics, 'lakebase_api_token_refresh_failures_total') >= 1);
  assert.ok(sampleValue(metrics, 'lakebase_api_token_expiry_seconds') <= 0);

  await lb.emulator.up();
  const back = await waitFor(
    'readiness back with a fresh token',
    async () => {
      const res = await api.get('/health/ready');
      return res.status === 200 ? res : null;
    },
    15_000,
    200,
  );
  assert.equal(back.body.checks.token.valid, true);
  assert.equal((await api.get('/trips/count')).status, 200);

  assert.deepEqual(linesLeakingSecrets(logs.lines, lb.emulator.secrets()), [], 'no token or secret in any log line');
  for (const secret of lb.emulator.secrets().filter((s) => s.length >= 8)) {
    assert.ok(!(await request(app).get('/metrics')).text.includes(secret));
  }
});
