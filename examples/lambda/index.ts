/**
 * AWS Lambda entry point behind API Gateway (HTTP API payload 2.0, or REST API 1.0; proxy
 * integration). The context (pool, cache, token manager) is built on a container's first
 * invocation and reused by the next ones, so each container has its own pool and its own cache.
 * Telemetry too, when OTEL_EXPORTER_OTLP_ENDPOINT is set.
 */
import { createLambdaHandler } from '../../lib/http/adapters/lambda.ts';
import { refuseOpenByDefault } from '../../lib/auth/openByDefault.ts';
import { loadConfig } from '../../lib/ground/config.ts';
import { ConfigError } from '../../lib/ground/settingsReaders.ts';
import { openObservedContext } from '../../lib/observedContext.ts';
import { apiService } from '../../functions/index.ts';

/** The variables that point at a real database; without one, openContext would start the embedded one. */
const DATABASE_SETTINGS = ['DATABASE_URL', 'PGHOST', 'DATABRICKS_DATABASE_INSTANCE', 'LAKEBASE_ENDPOINT'];

export const handler = createLambdaHandler(apiService, async () => {
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
  // With OTEL_EXPORTER_OTLP_ENDPOINT set, traces, metrics and logs are exported and flushed before
  // each invocation returns (docs/telemetry.md); without it no OpenTelemetry module is loaded.
  return openObservedContext(config, env, { pretty: false });
});
