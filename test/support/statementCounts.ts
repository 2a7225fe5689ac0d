import type pg from 'pg';
import { pollUntil } from './pollUntil.ts';
import type { RestartableTestDatabase } from './restartableDatabase.ts';

/**
 * Statements counted by the database itself (pg_stat_statements), which must be loaded when the
 * server starts: set it and restart the server, keeping its data and port.
 */
export async function enableStatementCounting(db: RestartableTestDatabase): Promise<void> {
  await db.admin.query(`ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'`);
  await db.stopServer();
  await db.startServer();
  await pollUntil('the restarted database', 10_000, () =>
    db.admin.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements').then(
      () => true,
      () => undefined,
    ),
  );
}

/** Completed calls of the statements whose text contains `fragment`, per Postgres role. */
export async function statementCallsByRole(admin: pg.Pool, fragment: string): Promise<Map<string, number>> {
  const { rows } = await admin.query<{ role: string; calls: number }>(
    `SELECT r.rolname AS role, sum(s.calls)::int AS calls FROM pg_stat_statements AS s JOIN pg_roles AS r ON r.oid = s.userid
      WHERE strpos(s.query, $1) > 0 GROUP BY r.rolname`,
    [fragment],
  );
  return new Map(rows.map((row) => [row.role, row.calls]));
}
