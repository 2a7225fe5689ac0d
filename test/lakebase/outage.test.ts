import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import type { ConnectionTarget, PasswordSource } from '../../lib/db/connectionTarget.ts';
import { Database } from '../../lib/db/database.ts';
import { Unavailable } from '../../lib/errors.ts';
import { isLoginRefused, queryWithTokenRetry } from '../../lib/db/connectWithTokenRetry.ts';
import { resolveLakebaseTarget } from '../../lib/lakebase/resolveLakebaseTarget.ts';
import type { LakebaseTokenState } from '../../lib/lakebase/tokenManager.ts';
import { captureLogs } from '../support/logCapture.ts';
import { TEST_USER, linesLeakingSecrets, poolFor, startEmulatedLakebase, waitFor, type EmulatedLakebase } from '../support/workspaceEmulator.ts';

const fastRetries = {
  TOKEN_REFRESH_INTERVAL_SECONDS: '2',
  TOKEN_REFRESH_MARGIN_SECONDS: '1',
  TOKEN_REFRESH_RETRY_MIN_SECONDS: '0.2',
  TOKEN_REFRESH_RETRY_MAX_SECONDS: '0.5',
  WORKSPACE_REQUEST_TIMEOUT_SECONDS: '1',
};

/** Background point queries through a recycling pool until stopped; failures are collected. */
function startLoad(pool: pg.Pool, source: PasswordSource) {
  let stop = false;
  let requests = 0;
  let logins = 0;
  const failures: string[] = [];
  pool.on('connect', () => (logins += 1));
  const loops = Array.from({ length: 4 }, async (_, w) => {
    while (!stop) {
      try {
        await queryWithTokenRetry(pool, source, 'SELECT id FROM public.nyc_train_synced WHERE id = $1', [w + 1]);
      } catch (err) {
        failures.push(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`);
      }
      requests += 1;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  });
  return {
    get requests() {
      return requests;
    },
    get logins() {
      return logins;
    },
    failures,
    async stop() {
      stop = true;
      await Promise.all(loops);
    },
  };
}

describe('workspace faults during token refresh', () => {
  let lb: EmulatedLakebase;
  const logs = captureLogs();

  before(async () => {
    lb = await startEmulatedLakebase({ rows: 20, tokenLifetimeSeconds: 8 });
  });
  after(async () => {
    await lb?.stop();
    assert.deepEqual(linesLeakingSecrets(logs.lines, lb.emulator.secrets()), [], 'no secret in any log line');
  });

  const stateOf = (target: ConnectionTarget) => (target.password as PasswordSource).state() as LakebaseTokenState;

  test('workspace down: keeps serving on the valid token, shows degraded with the error, recovers', async (t) => {
    const target = (await resolveLakebaseTarget(lb.env('m2m', 'provisioned', fastRetries), logs.logger))!;
    const source = target.password as PasswordSource;
    const pool = poolFor(target, { max: 3, idleTimeoutMillis: 50, maxLifetimeSeconds: 1 });
    const load = startLoad(pool, source);
    try {
      await lb.emulator.down();
      const degraded = await waitFor('a degraded token state', () => (stateOf(target).consecutiveFailures >= 2 ? stateOf(target) : null), 6000);
      assert.equal(degraded.status, 'degraded');
      assert.equal(degraded.valid, true);
      assert.match(degraded.lastError ?? '', /ECONNREFUSED|socket hang up|other side closed/);
      const loginsWhileDown = load.logins;
      await waitFor('new logins during the outage', () => load.logins >= loginsWhileDown + 3, 5000);
      assert.deepEqual(load.failures, [], 'requests keep succeeding on the still-valid token');

      await lb.emulator.up();
      const refreshesBefore = degraded.refreshCount;
      const recovered = await waitFor(
        'recovery',
        () => (stateOf(target).status === 'ok' && stateOf(target).refreshCount > refreshesBefore ? stateOf(target) : null),
        6000,
      );
      assert.equal(recovered.lastError, null);
      assert.ok(recovered.refreshFailures >= 2);
      const loginsAfter = load.logins;
      await waitFor('logins with the new token', () => load.logins >= loginsAfter + 3, 5000);
      await load.stop();
      t.diagnostic(`outage: ${load.requests} requests, ${load.failures.length} failures, ${recovered.refreshFailures} failed refreshes, then recovered`);
      assert.deepEqual(load.failures, []);
    } finally {
      await load.stop();
      await lb.emulator.up();
      await pool.end();
      await target.close();
    }
    const failed = logs.records().filter((r) => String(r.msg).startsWith('Background token refresh failed'));
    assert.ok(failed.length >= 2);
    assert.ok(
      failed.every((r) => typeof r.error === 'string' && r.error.length > 0),
      'failures are logged with their reason',
    );
  });

  test('HTTP 503/500 and slow answers are retried with backoff', async () => {
    const target = (await resolveLakebaseTarget(lb.env('pat', 'autoscaling', fastRetries), logs.logger))!;
    try {
      const before = stateOf(target).refreshFailures;
      lb.emulator.setFault({ kind: 'status', status: 503 }, { match: 'credentials', times: 1 });
      lb.emulator.setFault({ kind: 'status', status: 500 }, { match: 'credentials', times: 1 });
      lb.emulator.setFault({ kind: 'delay', ms: 2500 }, { match: 'credentials', times: 1 });
      const recovered = await waitFor(
        'three failures, then a refresh',
        () => (stateOf(target).refreshFailures >= before + 3 && stateOf(target).status === 'ok' ? stateOf(target) : null),
        12_000,
      );
      assert.equal(recovered.valid, true);
      const reasons = logs
        .records()
        .filter((r) => String(r.msg).startsWith('Background token refresh failed'))
        .map((r) => String(r.error));
      assert.ok(
        reasons.some((r) => /HTTP 503|Emulated fault: HTTP 503/.test(r)),
        reasons.join(' | '),
      );
      assert.ok(
        reasons.some((r) => /did not answer within 1s/.test(r)),
        reasons.join(' | '),
      );
    } finally {
      lb.emulator.setFault(null);
      await target.close();
    }
  });

  test('a revoked token: the next login is refused (28P01), refreshed once and retried; open sessions continue', async () => {
    // Hour-long tokens and the default schedule (every 50 minutes): only the 28P01 path refreshes here.
    lb.emulator.setTokenLifetime(3600);
    const target = (await resolveLakebaseTarget(lb.env('pat', 'provisioned'), logs.logger))!;
    const source = target.password as PasswordSource;
    const pool = poolFor(target, { max: 2, idleTimeoutMillis: 10 });
    const open = await pool.connect();
    let released = false;
    try {
      await lb.emulator.revoke(TEST_USER);
      // Without the retry path, a new login fails.
      const plain = poolFor(target, { max: 1 });
      await assert.rejects(plain.query('SELECT 1'), (err: unknown) => isLoginRefused(err));
      await plain.end();
      // The session opened before the revocation is untouched, as on Lakebase.
      assert.equal((await open.query('SELECT 1 AS one')).rows[0].one, 1);

      const minted = lb.emulator.credentialsFor(TEST_USER);
      const { rows } = await queryWithTokenRetry<{ n: number }>(pool, source, 'SELECT count(*)::int AS n FROM public.nyc_train_synced');
      assert.equal(rows[0]!.n, 20);
      assert.equal(lb.emulator.credentialsFor(TEST_USER), minted + 1, 'exactly one refresh');
      assert.equal(source.state().refreshCount, 2);
      open.release();
      released = true;

      // The core's Database takes the same path (its refresh passes no attempt time, so the
      // manager skips refreshes within 1 s of the last one: wait until the token is older).
      const refreshedAt = source.state().lastRefreshAt!.getTime();
      await waitFor('the token to be over a second old', () => Date.now() - refreshedAt > 1100, 3000);
      await lb.emulator.revoke(TEST_USER);
      const fresh = poolFor(target, { max: 1 });
      try {
        const db = new Database(fresh, source);
        const result = await db.query<{ one: number }>({ text: 'SELECT 1 AS one' });
        assert.equal(result.rows[0]!.one, 1);
        assert.equal(source.state().refreshCount, 3);
        // Revoked again and the refresh cannot help (the workspace is down): a 503, not a hang.
        await lb.emulator.revoke(TEST_USER);
        await lb.emulator.down();
        await fresh.end();
        const again = new Database(poolFor(target, { max: 1 }), source);
        await assert.rejects(again.query({ text: 'SELECT 1' }), (err: unknown) => err instanceof Unavailable);
        await again.pool.end();
      } finally {
        await lb.emulator.up();
        await fresh.end().catch(() => undefined);
      }
    } finally {
      if (!released) open.release();
      await pool.end();
      await target.close();
      lb.emulator.setTokenLifetime(8);
    }
  });
});
