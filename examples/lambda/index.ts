/**
 * AWS Lambda entry point behind API Gateway (HTTP API payload 2.0, or REST API 1.0; proxy
 * integration). The context (pool, cache, token manager) is built on a container's first
 * invocation and reused by the next ones, so each container has its own pool and its own cache.
 */
import { createLambdaHandler } from '../../lib/http/adapters/lambda.ts';
import { refuseOpenByDefault } from '../../lib/auth/openByDefault.ts';
import { ConfigError, loadConfig } from '../../lib/config.ts';
import { createLogger } from '../../lib/ops/logger.ts';
import { openContext } from '../../lib/openContext.ts';

/** The variables that point at a real database; without one, openContext would start the embedded one. */
const DATABASE_SETTINGS = ['DATABASE_URL', 'PGHOST', 'DATABRICKS_DATABASE_INSTANCE', 'LAKEBASE_ENDPOINT'];

export const handler = createLambdaHandler(async () => {
  // A container serves one request at a time: one warm connection, plus one for the parallel
  // count of /trips/pages. DB_POOL_SIZE and DB_MAX_OVERFLOW still override these defaults.
  const env: Record<string, string | undefined> = { DB_POOL_SIZE: '1', DB_MAX_OVERFLOW: '1', ...process.env };
  const config = loadConfig(env);
  // API Gateway makes every function reachable: no silent open door (docs/authentication.md).
  refuseOpenByDefault(config, 'lambda');
  if (!DATABASE_SETTINGS.some((name) => env[name])) {
    throw new ConfigError(
      'DATABASE_URL',
      '(or PGHOST, DATABRICKS_DATABASE_INSTANCE, LAKEBASE_ENDPOINT) must be set on Lambda: the embedded database is for local use only',
    );
  }
  return openContext(config, env, createLogger({ level: config.logLevel, pretty: false }));
});
