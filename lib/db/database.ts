import type pg from 'pg';
import type { PasswordSource } from './connectionTarget.ts';
import { mapDatabaseError } from './databaseErrors.ts';

const INVALID_PASSWORD = '28P01';

function sqlState(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? ((err as { code?: string }).code ?? undefined) : undefined;
}

/**
 * The handlers' door to Postgres: every failure leaves here as a typed API error. A login refused
 * with 28P01 (token expired or revoked) refreshes the token once and retries: the statement never
 * ran, so the retry is safe even for writes.
 */
export class Database {
  constructor(
    readonly pool: pg.Pool,
    private readonly passwordSource?: PasswordSource,
  ) {}

  async query<R extends pg.QueryResultRow>(statement: pg.QueryConfig): Promise<pg.QueryResult<R>> {
    const attemptStartedAt = Date.now();
    try {
      return await this.pool.query<R>(statement);
    } catch (err) {
      if (sqlState(err) !== INVALID_PASSWORD || !this.passwordSource) throw mapDatabaseError(err);
      await this.refreshAfterLoginFailure(err, attemptStartedAt);
      try {
        return await this.pool.query<R>(statement);
      } catch (retryErr) {
        throw mapDatabaseError(retryErr);
      }
    }
  }

  /** Runs `work` in one transaction on one connection; rolls back on any error. */
  async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true; // the connection is gone: never hand it out again
      }
      throw mapDatabaseError(err);
    } finally {
      client.release(broken);
    }
  }

  private async connect(): Promise<pg.PoolClient> {
    const attemptStartedAt = Date.now();
    try {
      return await this.pool.connect();
    } catch (err) {
      if (sqlState(err) !== INVALID_PASSWORD || !this.passwordSource) throw mapDatabaseError(err);
      await this.refreshAfterLoginFailure(err, attemptStartedAt);
      try {
        return await this.pool.connect();
      } catch (retryErr) {
        throw mapDatabaseError(retryErr);
      }
    }
  }

  private async refreshAfterLoginFailure(original: unknown, failedAttemptStartedAt: number): Promise<void> {
    try {
      await this.passwordSource!.refresh('login refused (28P01)', { failedAttemptStartedAt });
    } catch {
      throw mapDatabaseError(original);
    }
  }
}
