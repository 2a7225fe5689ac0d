import type pg from 'pg';

/**
 * Waits until no query runs on the bench database (twice in a row, 100 ms apart): a slow scenario
 * (deep offset pages at 128 connections) leaves requests queued in the server's pool that would
 * otherwise still be running during the next one.
 */
export async function waitForIdleDatabase(admin: pg.Client, timeoutMs = 120_000, log: (message: string) => void = () => undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let quiet = 0;
  while (Date.now() < deadline) {
    const { rows } = await admin.query<{ active: number }>(
      `SELECT count(*)::int AS active FROM pg_stat_activity
       WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND datname = current_database()`,
    );
    quiet = rows[0]!.active === 0 ? quiet + 1 : 0;
    if (quiet >= 2) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  log(`the database was still busy after ${timeoutMs / 1000} s; going on`);
}
