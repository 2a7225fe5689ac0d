import type { Logger } from 'pino';
import { lightScanSlots, scanSlots } from './ground/admissionSettings.ts';
import { createAuthenticator } from './auth/authenticator.ts';
import { openInvalidationChannel } from './cache/invalidationChannel.ts';
import { ResultsCache } from './cache/resultsCache.ts';
import type { Config } from './ground/config.ts';
import { ConfigError } from './ground/settingsReaders.ts';
import type { ConnectionTarget } from './db/connectionTarget.ts';
import { createPool, warmPool } from './db/createPool.ts';
import { Database } from './db/database.ts';
import { capParallelWorkers } from './db/parallelWorkers.ts';
import { ScanShare } from './db/scanShare.ts';
import { StatementCosts } from './db/statementCosts.ts';
import { quoteIdent } from './db/sqlIdentifiers.ts';
import { createMetrics, type Metrics } from './ops/metrics.ts';
import { outsideRequestScope } from './ground/requestScope.ts';
import { openReadRouting } from './replicas/openReadRouting.ts';
import { UserAccess } from './userAccess/userAccess.ts';
import type { Context } from './http/serviceContext.ts';

export interface CreateContextOptions {
  config: Config;
  target: ConnectionTarget;
  logger: Logger;
  version: string;
  /** Open `DB_POOL_SIZE` connections before serving (default true). */
  warm?: boolean;
  /** A clock for cache TTLs (tests). */
  now?: () => number;
}

export async function createContext(options: CreateContextOptions): Promise<Context> {
  const { config, target, logger, version } = options;
  if (config.access.mode === 'user' && !target.onBehalfOf) {
    throw new ConfigError(
      'LAKEBASE_ACCESS',
      `is "user", which logs each request in to Lakebase as the signed-in user; it needs a Lakebase database (DATABRICKS_DATABASE_INSTANCE or LAKEBASE_ENDPOINT), not ${target.mode} PostgreSQL`,
    );
  }
  let metrics: Metrics | null = null;
  let closed: Promise<void> | undefined;
  const pool = createPool(target, config, undefined, { onConnectError: () => metrics?.connectionError('connect') });
  // An idle connection that dies (database restart) must not crash the process; the pool drops it.
  pool.on(
    'error',
    outsideRequestScope((err: Error) => {
      // pg-pool's end() resolves before its sockets close: a server stopping right after (the embedded
      // one) may still reach them. That is shutdown, not a lost connection.
      if (closed) return;
      metrics?.connectionError('lost');
      logger.warn({ err: { message: err.message, code: (err as { code?: string }).code } }, 'Idle database connection lost');
    }),
  );
  // Protection on: a scan is one process, so the scanning reads' share bounds the database's CPU too.
  if (config.admission.enabled && config.admission.parallelWorkers >= 0) {
    capParallelWorkers(pool, config.admission.parallelWorkers, (err) => logger.warn({ err: { message: err.message } }, 'Could not cap parallel workers'));
  }
  const passwordSource = typeof target.password === 'string' ? undefined : target.password;
  const { admission } = config;
  const maxConnections = config.pool.size + config.pool.maxOverflow;
  const db = new Database(pool, passwordSource, admission.enabled ? admission.poolWaitMs : 0);
  // The share protects the shared pool. With LAKEBASE_ACCESS=user every caller reads through pools of
  // their own (DB_USER_POOL_SIZE each), which already bound one caller's share; one slot across all
  // of them would queue 200 users' first reads (and their logins) behind each other.
  const scanShare =
    admission.enabled && config.access.mode === 'service'
      ? new ScanShare({
          slots: scanSlots(admission, maxConnections),
          lightSlots: lightScanSlots(admission, maxConnections),
          waitMs: admission.scanWaitMs,
          ...(admission.scanCost > 0 ? { costs: new StatementCosts({ heavyFrom: admission.scanCost }) } : {}),
        })
      : null;
  const cache = config.cache.enabled ? new ResultsCache({ maxEntries: config.cache.maxEntries, maxBytes: config.cache.maxBytes, now: options.now }) : null;
  // (With LAKEBASE_ACCESS=user, onBehalfOf was checked above.)
  const userAccess = config.access.mode === 'user' && target.onBehalfOf ? new UserAccess(target.onBehalfOf, target, config, logger) : null;
  const authenticator = await createAuthenticator(config.auth, { userAccess, logger });
  const invalidationChannel = cache && config.cache.invalidation === 'notify' ? openInvalidationChannel({ target, db, cache, logger }) : null;
  const readRouting = openReadRouting({ target, primary: db, config, logger });
  const context: Context = {
    config,
    db,
    pool,
    target,
    trips: { schema: config.schema, table: config.table, qualified: `${quoteIdent(config.schema)}.${quoteIdent(config.table)}` },
    logger,
    cache,
    invalidationChannel,
    publishInvalidation: invalidationChannel ? (prefixes) => invalidationChannel.publish(prefixes) : undefined,
    version,
    startedAt: Date.now(),
    metrics: null,
    shuttingDown: false,
    userAccess,
    authenticator,
    readRouting,
    scanShare,
    tokenState: () => passwordSource?.state() ?? null,
    close() {
      closed ??= (async () => {
        await invalidationChannel?.close();
        await userAccess?.close();
        await readRouting?.close();
        await pool.end();
        await target.close();
      })();
      return closed;
    },
  };
  if (config.operations.metricsEnabled) {
    metrics = context.metrics = createMetrics({
      version,
      mode: target.mode,
      pool,
      maxConnections,
      scanShareStats: scanShare ? () => scanShare.stats() : undefined,
      cacheStats: cache ? () => cache.stats() : undefined,
      invalidationStats: invalidationChannel ? () => invalidationChannel.stats() : undefined,
      userPoolStats: userAccess ? () => userAccess.stats() : undefined,
      readRoutingStats: readRouting ? () => readRouting.stats() : undefined,
      // Token metrics exist only where connections log in with tokens (the state is never null there).
      tokenState: context.tokenState() !== null ? () => context.tokenState() : undefined,
    });
  }
  if (options.warm !== false) {
    try {
      await warmPool(pool, config.pool.size);
    } catch (err) {
      await context.close().catch(() => undefined);
      throw err;
    }
  }
  // Never fails: a replica that is down at start-up serves no reads until it answers.
  await readRouting?.start();
  return context;
}
