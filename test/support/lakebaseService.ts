import pg from 'pg';
import { loadConfig } from '../../lib/ground/config.ts';
import { createContext } from '../../lib/context.ts';
import { resolveLakebaseTarget } from '../../lib/lakebase/resolveLakebaseTarget.ts';
import type { RouterOptions } from '../../lib/http/router.ts';
import { APP_VERSION } from '../../lib/version.ts';
import { captureLogs, type CapturedLogs } from './logCapture.ts';
import { serveContext, type TestService } from './testService.ts';
import type { EmulatedLakebase, EmulatedMode, Env } from './workspaceEmulator.ts';

export const TRIPS = 'public.nyc_train_synced';

/** Privileges on the trips table, per test user. */
export type TableGrants = ReadonlyArray<'SELECT' | 'UPDATE'>;

/**
 * Creates each user's Postgres role (named by their e-mail, as Lakebase names them) with exactly
 * the given privileges on the trips table. The emulator creates roles it has not seen with no
 * privileges at all (the suites start it with `grantRoles: []`).
 */
export async function createUserRoles(admin: pg.Pool, users: Readonly<Record<string, TableGrants>>): Promise<void> {
  for (const [email, grants] of Object.entries(users)) {
    const role = pg.escapeIdentifier(email);
    const exists = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [email]);
    if (exists.rowCount === 0) await admin.query(`CREATE ROLE ${role} LOGIN`);
    await admin.query(`REVOKE ALL ON ${TRIPS} FROM ${role}`);
    if (grants.length > 0) await admin.query(`GRANT ${grants.join(', ')} ON ${TRIPS} TO ${role}`);
  }
}

/** The headers the Databricks Apps proxy adds for a signed-in user. */
export function asUser(email: string, token: string): Record<string, string> {
  return { 'x-forwarded-email': email, 'x-forwarded-access-token': token };
}

/** The same handles as a TestService, without an embedded database of its own (the emulated one is the suite's). */
export type LakebaseService = Omit<TestService, 'database'>;

export type UserModeService = LakebaseService;

export interface LakebaseServiceOptions {
  env?: Env;
  mode?: EmulatedMode;
  router?: RouterOptions;
  logs?: CapturedLogs;
}

/**
 * The service with LAKEBASE_ACCESS=user against the emulated workspace: the app itself logs in as
 * the test service principal (M2M); each request runs as the user its headers name.
 */
export function startUserModeService(lb: EmulatedLakebase, options: LakebaseServiceOptions = {}): Promise<LakebaseService> {
  return startLakebaseService(lb, { ...options, env: { LAKEBASE_ACCESS: 'user', DB_POOL_SIZE: '1', DB_MAX_OVERFLOW: '2', ...options.env } });
}

/**
 * The whole service (context, router, Express) in Lakebase mode against the emulated workspace,
 * logging in as the test service principal (M2M) with the tokens the emulator mints.
 */
export async function startLakebaseService(lb: EmulatedLakebase, options: LakebaseServiceOptions = {}): Promise<LakebaseService> {
  const env = lb.env('m2m', options.mode ?? 'provisioned', options.env);
  const logs = options.logs ?? captureLogs();
  const target = await resolveLakebaseTarget(env, logs.logger);
  if (!target) throw new Error('not a Lakebase environment');
  const ctx = await createContext({ config: loadConfig(env), target, logger: logs.logger, version: APP_VERSION });
  return { ctx, ...serveContext(ctx, options.router), logs, close: () => ctx.close() };
}
