import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { ConnectionTarget } from '../../lib/db/connectionTarget.ts';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../lib/db/embeddedPostgres.ts';
import { seedTrips } from '../../lib/db/seedTrips.ts';
import { startWorkspaceEmulator, type WorkspaceEmulator, type WorkspaceEmulatorOptions } from '../../tools/emulator/workspaceEmulator.ts';

export * from '../../tools/emulator/workspaceEmulator.ts';

/** Identities and resources every emulated workspace in the tests has. */
export const TEST_USER = 'developer@example.com';
export const TEST_SERVICE_PRINCIPAL = { clientId: '6f1c2a3e-0b5d-4c8e-9a7f-1d2e3f4a5b6c', clientSecret: 'emu-client-secret-6f1c2a3e' };
export const TEST_INSTANCE = 'lakebase-api-test';
export const TEST_ENDPOINT = 'projects/lakebase-api/branches/main/endpoints/primary';

export type Env = Record<string, string>;
export type EmulatedAuth = 'pat' | 'm2m';
/** attached-* = as a Databricks App database resource injects it: PG* given, host not looked up. */
export type EmulatedMode = 'provisioned' | 'autoscaling' | 'attached-provisioned' | 'attached-autoscaling';

export interface EmulatedLakebase {
  db: EmbeddedPostgres;
  /** Superuser pool on the embedded database (set-up, checks behind the service's back). */
  admin: pg.Pool;
  emulator: WorkspaceEmulator;
  /** The environment a service would get: auth + mode (+ extra), never touching process.env. */
  env(auth: EmulatedAuth, mode: EmulatedMode, extra?: Env): Env;
  stop(): Promise<void>;
}

/**
 * A throw-away embedded PostgreSQL (seeded with `rows` trips) and a workspace emulator minting
 * passwords on it, with one user (PAT), one service principal (M2M), one Provisioned instance and
 * one Autoscaling endpoint. Each suite starts one and stops it at the end.
 */
export async function startEmulatedLakebase(
  options: {
    rows?: number;
    tokenLifetimeSeconds?: number;
    emulator?: Partial<WorkspaceEmulatorOptions>;
    /** A seeded database the suite owns (e.g. the primary of a streaming replica): used as is, never stopped here. */
    database?: { db: EmbeddedPostgres; admin: pg.Pool };
  } = {},
): Promise<EmulatedLakebase> {
  const owned = !options.database;
  const dataDir = owned ? mkdtempSync(join(tmpdir(), 'lakebase-emulated-')) : '';
  const db = options.database?.db ?? (await startEmbeddedPostgres({ dataDir, port: 0, persistent: false }));
  const admin = options.database?.admin ?? new pg.Pool({ host: db.host, port: db.port, database: db.database, user: db.user, password: db.password, max: 3 });
  admin.on('error', () => undefined);
  const stopDatabase = async () => {
    if (!owned) return;
    await admin.end().catch(() => undefined);
    await db.stop().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  };
  let emulator: WorkspaceEmulator | undefined;
  try {
    if (owned) await seedTrips(admin, { schema: 'public', table: 'nyc_train_synced', rows: options.rows ?? 500 });
    emulator = await startWorkspaceEmulator({
      pg: { host: db.host, port: db.port, database: db.database, user: db.user, password: db.password },
      tokenLifetimeSeconds: options.tokenLifetimeSeconds ?? 3600,
      users: [{ userName: TEST_USER }],
      servicePrincipals: [{ ...TEST_SERVICE_PRINCIPAL, displayName: 'lakebase-api app' }],
      instances: [{ name: TEST_INSTANCE, readWriteDns: db.host }],
      endpoints: [{ name: TEST_ENDPOINT, host: db.host }],
      ...options.emulator,
    });
  } catch (err) {
    await stopDatabase();
    throw err;
  }
  const emu = emulator;
  return {
    db,
    admin,
    emulator: emu,
    env(auth, mode, extra = {}) {
      const credentials: Env =
        auth === 'pat'
          ? { DATABRICKS_HOST: emu.url, DATABRICKS_TOKEN: emu.patFor(TEST_USER) }
          : { DATABRICKS_HOST: emu.url, DATABRICKS_CLIENT_ID: TEST_SERVICE_PRINCIPAL.clientId, DATABRICKS_CLIENT_SECRET: TEST_SERVICE_PRINCIPAL.clientSecret };
      const resource: Env = mode.endsWith('provisioned') ? { DATABRICKS_DATABASE_INSTANCE: TEST_INSTANCE } : { LAKEBASE_ENDPOINT: TEST_ENDPOINT };
      const connection: Env = mode.startsWith('attached')
        ? { PGHOST: db.host, PGPORT: String(db.port), PGDATABASE: db.database, PGSSLMODE: 'disable' }
        : { DATABRICKS_DATABASE_NAME: db.database, DATABRICKS_DATABASE_PORT: String(db.port), PGSSLMODE: 'disable' };
      return { ...credentials, ...resource, ...connection, ...extra };
    },
    async stop() {
      await emu.stop().catch(() => undefined);
      await stopDatabase();
    },
  };
}

/** A pool over a resolved target, configured the way the core's createPool does it. */
export function poolFor(target: ConnectionTarget, extra: pg.PoolConfig = {}): pg.Pool {
  const { password } = target;
  const pool = new pg.Pool({
    host: target.host,
    port: target.port,
    database: target.database,
    user: target.user,
    password: typeof password === 'string' ? password : () => password.getPassword(),
    ssl: target.ssl === false ? false : target.ssl,
    max: 4,
    ...extra,
  });
  pool.on('error', () => undefined);
  return pool;
}

/** Polls `check` until it returns a truthy value or the deadline passes (no fixed sleeps in tests). */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 10_000, intervalMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Lines of `lines` that contain any of `secrets` (reported by their index, never echoed). */
export function linesLeakingSecrets(lines: readonly string[], secrets: readonly string[]): number[] {
  return lines.flatMap((line, index) => (secrets.some((secret) => secret.length >= 8 && line.includes(secret)) ? [index] : []));
}
