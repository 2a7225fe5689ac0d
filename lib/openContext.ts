import type { Logger } from 'pino';
import type { Config } from './ground/config.ts';
import { createContext } from './context.ts';
import type { Context } from './http/serviceContext.ts';
import { resolveConnectionTarget, type LakebaseResolver } from './db/resolveConnectionTarget.ts';
import { readLakebaseSettings } from './lakebase/lakebaseSettings.ts';
import { APP_VERSION } from './version.ts';

import type { Env } from './ground/settingsReaders.ts';

/**
 * Lakebase when it is configured. The Databricks SDK (and the rest of lib/lakebase) is loaded only
 * then: the embedded and plain-Postgres modes never need it, and it is the largest library the
 * service has (about 33 MiB of memory once loaded).
 */
export const resolveLakebaseWhenConfigured: LakebaseResolver = async (env, logger) => {
  if (!readLakebaseSettings(env)) return null;
  const { resolveLakebaseTarget } = await import('./lakebase/resolveLakebaseTarget.ts');
  return resolveLakebaseTarget(env, logger);
};

/**
 * Start-up shared by every runtime: find the database (Lakebase, plain Postgres or embedded),
 * open the pool, report what was chosen.
 */
export async function openContext(config: Config, env: Env, logger: Logger, lakebase: LakebaseResolver = resolveLakebaseWhenConfigured): Promise<Context> {
  const target = await resolveConnectionTarget(config, env, logger, lakebase);
  let ctx: Context;
  try {
    ctx = await createContext({ config, target, logger, version: APP_VERSION });
  } catch (err) {
    await target.close().catch(() => undefined);
    throw err;
  }
  logger.info(
    {
      mode: target.mode,
      host: target.host,
      port: target.port,
      database: target.database,
      table: ctx.trips.qualified,
      pool: { size: config.pool.size, max: config.pool.size + config.pool.maxOverflow },
      cache: config.cache.enabled ? config.cache.invalidation : 'off',
      metrics: config.operations.metricsEnabled ? '/metrics' : 'off',
      version: APP_VERSION,
    },
    `Connected to ${target.description}`,
  );
  return ctx;
}
