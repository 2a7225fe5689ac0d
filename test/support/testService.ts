import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Express } from 'express';
import pg from 'pg';
import { createExpressApp } from '../../lib/http/adapters/express.ts';
import { loadConfig, type Config } from '../../lib/ground/config.ts';
import { createContext } from '../../lib/context.ts';
import type { Context } from '../../lib/http/serviceContext.ts';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../lib/db/embeddedPostgres.ts';
import { embeddedTarget } from '../../lib/db/resolveConnectionTarget.ts';
import { seedTrips } from '../../lib/db/seedTrips.ts';
import { createRouter, type Router, type RouterOptions } from '../../lib/http/router.ts';
import { APP_VERSION } from '../../lib/version.ts';
import { ApiClient } from './api.ts';
import { ContractChecker } from './contract.ts';
import { captureLogs, type CapturedLogs } from './logCapture.ts';
import { apiService } from '../../functions/index.ts';

/** Where a test database listens, and how to log in to it as the superuser. */
export type DatabaseAddress = Pick<EmbeddedPostgres, 'host' | 'port' | 'database' | 'user' | 'password'>;

export interface TestDatabase {
  server: DatabaseAddress;
  /** A separate superuser pool for test set-up and for checking state behind the API's back. */
  admin: pg.Pool;
  stop(): Promise<void>;
}

/** A throw-away embedded PostgreSQL seeded with `rows` deterministic trips. */
export async function startTestDatabase(
  rows = 2000,
  config: Pick<Config, 'schema' | 'table'> = { schema: 'public', table: 'nyc_train_synced' },
): Promise<TestDatabase> {
  const dataDir = mkdtempSync(join(tmpdir(), 'lakebase-api-test-'));
  const server = await startEmbeddedPostgres({ dataDir, port: 0, persistent: false });
  const admin = new pg.Pool({ host: server.host, port: server.port, database: server.database, user: server.user, password: server.password, max: 4 });
  // pg-pool's end() resolves before its sockets have closed: stopping the server right after may
  // still send them 57P01, which must not become an uncaught exception in whichever test runs next.
  admin.on('error', () => undefined);
  await seedTrips(admin, { schema: config.schema, table: config.table, rows });
  return {
    server,
    admin,
    async stop() {
      await admin.end();
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface TestService {
  database: TestDatabase;
  ctx: Context;
  router: Router;
  app: Express;
  api: ApiClient;
  contract: ContractChecker;
  logs: CapturedLogs;
  close(): Promise<void>;
}

/**
 * A context served as `npm start` serves it (router + Express adapter), with an API client that
 * checks every response it receives against the OpenAPI contract.
 */
export function serveContext(ctx: Context, options: RouterOptions = {}): { router: Router; app: Express; contract: ContractChecker; api: ApiClient } {
  const router = createRouter(apiService, ctx, options);
  const app = createExpressApp(router, { maxBodyBytes: ctx.config.maxBodyBytes });
  const contract = new ContractChecker(router.document);
  return { router, app, contract, api: new ApiClient(app, contract) };
}

/**
 * The whole service (context, router, Express adapter) over a real embedded database. Every
 * response the `api` client receives is checked against the OpenAPI contract.
 */
export interface TestServiceOptions extends RouterOptions {
  rows?: number;
  env?: Record<string, string>;
  database?: TestDatabase;
  /** Where the service logs (default: every line kept in memory). */
  logs?: CapturedLogs;
}

export async function startTestService(options: TestServiceOptions = {}): Promise<TestService> {
  const database = options.database ?? (await startTestDatabase(options.rows ?? 2000));
  const config = loadConfig({ DB_POOL_SIZE: '2', DB_MAX_OVERFLOW: '4', ...options.env });
  const logs = options.logs ?? captureLogs();
  const { server } = database;
  const ctx = await createContext({
    config,
    logger: logs.logger,
    version: APP_VERSION,
    // The suite owns the database: closing the context must not stop it.
    target: embeddedTarget(server, async () => undefined),
  });
  return {
    database,
    ctx,
    ...serveContext(ctx, { document: options.document, handlers: options.handlers }),
    logs,
    async close() {
      await ctx.close();
      if (!options.database) await database.stop();
    },
  };
}
