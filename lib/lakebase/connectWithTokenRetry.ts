import type pg from 'pg';
import type { PasswordSource } from '../db/connectionTarget.ts';
import type { RefreshOptions } from '../tokenManager.ts';

/** SQLSTATE 28P01 invalid_password: with Lakebase, an expired or revoked token. */
export const INVALID_PASSWORD = '28P01';

export function isLoginRefused(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === INVALID_PASSWORD;
}

type Refreshable = Pick<PasswordSource, 'refresh'> & { refresh(reason: string, options?: RefreshOptions): Promise<void> };

/**
 * Runs `attempt` (which opens a connection, so a login happens); if the login is refused with
 * 28P01, refreshes the token once and runs it again. The refresh is told when the failed attempt
 * started: if a newer token arrived meanwhile (a rotation raced the login), it just retries with
 * that one instead of minting yet another. The statement never ran on a refused login, so the
 * retry is safe for writes too. A second refusal, or a failed refresh, throws the original error.
 */
export async function withTokenRetry<T>(source: PasswordSource | null | undefined, attempt: () => Promise<T>): Promise<T> {
  const startedAt = Date.now();
  try {
    return await attempt();
  } catch (err) {
    if (!source || !isLoginRefused(err)) throw err;
    try {
      await (source as Refreshable).refresh('login refused (28P01)', { failedAttemptStartedAt: startedAt });
    } catch {
      throw err;
    }
    return attempt();
  }
}

/** pool.connect() with the 28P01 refresh-and-retry-once path. */
export function connectWithTokenRetry(pool: pg.Pool, source: PasswordSource | null | undefined): Promise<pg.PoolClient> {
  return withTokenRetry(source, () => pool.connect());
}

/** pool.query() with the 28P01 refresh-and-retry-once path. */
export function queryWithTokenRetry<R extends pg.QueryResultRow = pg.QueryResultRow>(
  pool: pg.Pool,
  source: PasswordSource | null | undefined,
  statement: string | pg.QueryConfig,
  values?: unknown[],
): Promise<pg.QueryResult<R>> {
  return withTokenRetry(source, () => (typeof statement === 'string' ? pool.query<R>(statement, values) : pool.query<R>(statement)));
}
