import type pg from 'pg';
import type { PasswordSource } from './connectionTarget.ts';

/** SQLSTATE 28P01 invalid_password: with Lakebase, an expired or revoked token. */
const INVALID_PASSWORD = '28P01';

export function isLoginRefused(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === INVALID_PASSWORD;
}

/** Where a refused login records when it took its password (a time, never the password). */
const PASSWORD_TAKEN_AT = Symbol('passwordTakenAt');

/**
 * Marks a failed login with the moment its client took the password. A symbol key: loggers and
 * JSON never see it.
 */
export function markPasswordTakenAt(err: unknown, at: number): void {
  if (typeof err === 'object' && err !== null) (err as { [PASSWORD_TAKEN_AT]?: number })[PASSWORD_TAKEN_AT] = at;
}

/**
 * When the refused login took its password. Without a mark (a pool whose client does not record
 * it), the moment of the refusal: never earlier than the real one, so at worst one refresh too many.
 */
function passwordTakenAt(err: unknown): number {
  const at = typeof err === 'object' && err !== null ? (err as { [PASSWORD_TAKEN_AT]?: number })[PASSWORD_TAKEN_AT] : undefined;
  return at ?? Date.now();
}

/**
 * A refused login costs at most this many: one refused as stale (a rotation raced it), one refused
 * with the current token (revoked: the refresh cures it), and the one that succeeds.
 */
const MAX_LOGIN_ATTEMPTS = 3;

/**
 * Runs `attempt` (which opens a connection, so a login happens); if the login is refused with
 * 28P01, asks for a refresh and runs it again. The refresh is told when the refused login took its
 * password: if a newer token arrived since (a rotation raced the login), it mints nothing and the
 * retry uses that newer token. It must be when the password was taken, not when the attempt
 * started: a login that waited for a pool slot may take a token obtained after the attempt began,
 * and if that very token was refused, skipping the refresh would retry with it and fail again.
 * The retry with the newer token may itself be refused (revoked right after the rotation): that
 * refusal is of the current token, so the next refresh is real. The statement never ran on a
 * refused login, so retrying is safe for writes too. A failed refresh, or a refusal on the last
 * attempt, throws that refusal.
 */
export async function withTokenRetry<T>(source: PasswordSource | null | undefined, attempt: () => Promise<T>): Promise<T> {
  for (let attempts = 1; ; attempts++) {
    try {
      return await attempt();
    } catch (err) {
      if (!source || !isLoginRefused(err) || attempts >= MAX_LOGIN_ATTEMPTS) throw err;
      try {
        await source.refresh('login refused (28P01)', { refusedPasswordTakenAt: passwordTakenAt(err) });
      } catch {
        throw err;
      }
    }
  }
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
