/**
 * AWS Lambda entry point (API Gateway HTTP API payload 2.0 or REST API 1.0, proxy integration).
 * The context — pool, cache, token manager — is built on the first invocation of a container and
 * reused by the next ones. Configure the database with PG* / DATABASE_URL (or the Lakebase
 * variables); the embedded default is for local use only. Keep DB_POOL_SIZE small (1-2): every
 * container has its own pool.
 */
import { createLambdaHandler } from '../../lib/adapters/lambda.ts';
import { loadConfig } from '../../lib/config.ts';
import { createLogger } from '../../lib/logger.ts';
import { openContext } from '../../lib/openContext.ts';

export const handler = createLambdaHandler(async () => {
  const config = loadConfig(process.env);
  return openContext(config, process.env, createLogger({ level: config.logLevel, pretty: false }));
});
