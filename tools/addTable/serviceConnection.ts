import type pg from 'pg';
import pino from 'pino';
import { loadConfig } from '../../lib/ground/config.ts';
import { createPool } from '../../lib/db/createPool.ts';
import { resolveConnectionTarget } from '../../lib/db/resolveConnectionTarget.ts';
import { resolveLakebaseWhenConfigured } from '../../lib/openContext.ts';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * A connection to the database the service would use with this environment, found the way the
 * service finds it: Lakebase (an OAuth token from the Databricks SDK), DATABASE_URL or PG*, else
 * the embedded PostgreSQL. Warnings go to stderr; `close` also stops an embedded server it started.
 */
export async function connectAsTheService(env: Env): Promise<{ pool: pg.Pool; close(): Promise<void> }> {
  const logger = pino({ level: 'warn' }, pino.destination(2));
  const config = loadConfig(env);
  const target = await resolveConnectionTarget(config, env, logger, resolveLakebaseWhenConfigured);
  const pool = createPool(target, { ...config, pool: { ...config.pool, size: 1 } });
  return {
    pool,
    async close() {
      await pool.end();
      await target.close();
    },
  };
}
