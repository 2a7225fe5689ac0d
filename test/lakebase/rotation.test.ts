import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import type { PasswordSource } from '../../lib/db/connectionTarget.ts';
import { isLoginRefused, withTokenRetry } from '../../lib/db/connectWithTokenRetry.ts';
import { resolveLakebaseTarget } from '../../lib/lakebase/resolveLakebaseTarget.ts';
import type { LakebaseTokenState } from '../../lib/lakebase/tokenManager.ts';
import { captureLogs } from '../support/logCapture.ts';
import { linesLeakingSecrets, poolFor, startEmulatedLakebase, type EmulatedLakebase } from '../support/workspaceEmulator.ts';

const TOKEN_LIFETIME_SECONDS = 4;
const CONCURRENCY = 12;
const ROWS = 200;

interface LoadResult {
  requests: number;
  failures: Array<{ at: number; code: string | undefined; message: string }>;
  /** Logins refused with 28P01 (then refreshed / retried, or counted as failures). */
  refusedLogins: number;
  logins: number[];
}

/**
 * `CONCURRENCY` loops of point queries through `pool` until `done()`. The pool recycles its
 * connections every second and closes idle ones quickly, so new logins happen all the time.
 */
async function runLoad(pool: pg.Pool, source: PasswordSource | null, done: () => boolean, deadlineMs: number): Promise<LoadResult> {
  const result: LoadResult = { requests: 0, failures: [], refusedLogins: 0, logins: [] };
  pool.on('connect', () => result.logins.push(Date.now()));
  const deadline = Date.now() + deadlineMs;
  const loop = async (worker: number) => {
    let i = worker;
    while (!done() && Date.now() < deadline) {
      const id = (i++ % ROWS) + 1;
      try {
        const { rows } = await withTokenRetry(source, async () => {
          try {
            return await pool.query<{ id: number }>('SELECT id FROM public.nyc_train_synced WHERE id = $1', [id]);
          } catch (err) {
            if (isLoginRefused(err)) result.refusedLogins += 1;
            throw err;
          }
        });
        assert.equal(Number(rows[0]?.id), id);
      } catch (err) {
        result.failures.push({ at: Date.now(), code: (err as { code?: string }).code, message: (err as Error).message });
      }
      result.requests += 1;
      // Yield to the timers (pool recycling, the refresh heartbeat) between requests.
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => loop(w)));
  return result;
}

const recyclingPool = { max: 6, idleTimeoutMillis: 100, maxLifetimeSeconds: 1, connectionTimeoutMillis: 5000 };

describe('token rotation under load', () => {
  let lb: EmulatedLakebase;
  const logs = captureLogs();

  before(async () => {
    lb = await startEmulatedLakebase({ rows: ROWS, tokenLifetimeSeconds: TOKEN_LIFETIME_SECONDS });
  });
  after(async () => {
    await lb?.stop();
  });

  test('tokens rotate every ~2 s under continuous new logins: zero failed requests', async (t) => {
    const env = lb.env('m2m', 'provisioned', { TOKEN_REFRESH_INTERVAL_SECONDS: '2', TOKEN_REFRESH_MARGIN_SECONDS: '1' });
    const target = (await resolveLakebaseTarget(env, logs.logger))!;
    const source = target.password as PasswordSource;
    const state = () => source.state() as LakebaseTokenState;
    const firstExpiry = state().expiresAt!.getTime();
    const pool = poolFor(target, recyclingPool);
    const started = Date.now();
    try {
      const result = await runLoad(pool, source, () => state().refreshCount >= 6, 40_000);
      const rotations = state().refreshCount - 1;
      const afterFirstExpiry = result.logins.filter((at) => at > firstExpiry).length;
      t.diagnostic(
        `rotation: ${rotations} rotations in ${((Date.now() - started) / 1000).toFixed(1)} s, ${result.requests} requests, ` +
          `${result.failures.length} failures, ${result.logins.length} logins (${afterFirstExpiry} after the first token expired), ` +
          `${result.refusedLogins} logins refused and retried (emulator: one password per role, so a login racing a rotation is refused)`,
      );
      assert.deepEqual(result.failures, []);
      assert.ok(rotations >= 5, `only ${rotations} rotations`);
      assert.ok(result.requests >= 500, `only ${result.requests} requests`);
      assert.ok(afterFirstExpiry >= 10, `only ${afterFirstExpiry} logins after the first token expired`);
      assert.equal(state().status, 'ok');
      assert.equal(state().refreshFailures, 0);
    } finally {
      await pool.end();
      await target.close();
    }
    const updated = logs.records().filter((r) => r.msg === 'Background token refresh: Token updated successfully').length;
    assert.ok(updated >= 5);
    assert.deepEqual(linesLeakingSecrets(logs.lines, lb.emulator.secrets()), []);
  });

  test('control: without refresh, new logins fail once the token expires (so the test above can fail)', async (t) => {
    const env = lb.env('pat', 'provisioned');
    const target = (await resolveLakebaseTarget(env, logs.logger))!;
    const source = target.password as PasswordSource;
    const token = await source.getPassword();
    const expiresAt = source.state().expiresAt!.getTime();
    await target.close(); // no more refreshes: the pool keeps logging in with the first token
    const pool = poolFor({ ...target, password: token }, recyclingPool);
    try {
      const result = await runLoad(pool, null, () => Date.now() > expiresAt + 1500, 15_000);
      t.diagnostic(
        `control: ${result.requests} requests, ${result.failures.length} failures, first at ${result.failures[0] ? result.failures[0].at - expiresAt : '-'} ms after expiry`,
      );
      assert.ok(result.failures.length > 0, 'new logins after expiry must fail');
      assert.ok(
        result.failures.every((f) => f.code === '28P01'),
        JSON.stringify(result.failures.slice(0, 3)),
      );
      assert.ok(result.failures[0]!.at >= expiresAt - 50, 'nothing fails before the token expires');
      assert.ok(result.requests > result.failures.length, 'requests before expiry succeeded');
    } finally {
      await pool.end();
    }
  });
});
