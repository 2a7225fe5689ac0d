/**
 * A local Databricks workspace for trying the Lakebase (OAuth) modes without one:
 *
 *   npx tsx tools/workspace-emulator.ts        (or `npm run emulator` where package.json has it)
 *
 * Starts an embedded PostgreSQL (its own data directory, seeded with the synthetic trips) and the
 * workspace emulator in front of it, then prints the settings for `npm start` in another terminal:
 * the service then runs through the real SDK, OAuth tokens minted per login role with a real
 * expiry, and the token refresh schedule. Loopback only; the secrets below are fixed on purpose
 * (so a .env keeps working across restarts) and are worthless anywhere else.
 *
 * Settings: EMULATOR_PORT (8787), EMULATOR_PG_PORT (54329), EMULATOR_PG_DATA_DIR
 * (.data/emulator-postgres), EMULATOR_TOKEN_LIFETIME_SECONDS (3600), SAMPLE_ROWS (200000),
 * DEFAULT_POSTGRES_SCHEMA / DEFAULT_POSTGRES_TABLE.
 */
import pg from 'pg';
import { createLogger } from '../lib/ops/logger.ts';
import { startEmbeddedPostgres } from '../lib/db/embeddedPostgres.ts';
import { seedTrips } from '../lib/db/seedTrips.ts';
import { startWorkspaceEmulator } from './emulator/workspaceEmulator.ts';

const USER = 'developer@example.com';
const PAT = 'dapi-emulator-local-developer';
const CLIENT_ID = 'lakebase-api-local-app';
const CLIENT_SECRET = 'emulator-local-client-secret';
const INSTANCE = 'lakebase-api-local';
const ENDPOINT = 'projects/lakebase-api/branches/main/endpoints/primary';

function intSetting(name: string, fallback: number): number {
  const raw = process.env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    console.error(`${name} must be a non-negative integer, got "${raw}"`);
    process.exit(1);
  }
  return value;
}

async function main(): Promise<void> {
  const logger = createLogger({ level: process.env.LOG_LEVEL?.trim() || 'info' });
  const schema = process.env.DEFAULT_POSTGRES_SCHEMA?.trim() || 'public';
  const table = process.env.DEFAULT_POSTGRES_TABLE?.trim() || 'nyc_train_synced';
  const db = await startEmbeddedPostgres({
    dataDir: process.env.EMULATOR_PG_DATA_DIR?.trim() || '.data/emulator-postgres',
    port: intSetting('EMULATOR_PG_PORT', 54329),
    persistent: true,
    logger,
  });
  const admin = new pg.Pool({ host: db.host, port: db.port, database: db.database, user: db.user, password: db.password, max: 2 });
  try {
    await seedTrips(admin, { schema, table, rows: intSetting('SAMPLE_ROWS', 200_000), logger });
  } finally {
    await admin.end();
  }
  const emulator = await startWorkspaceEmulator({
    pg: { host: db.host, port: db.port, database: db.database, user: db.user, password: db.password },
    port: intSetting('EMULATOR_PORT', 8787),
    tokenLifetimeSeconds: intSetting('EMULATOR_TOKEN_LIFETIME_SECONDS', 3600),
    users: [{ userName: USER, token: PAT }],
    servicePrincipals: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, displayName: 'lakebase-api (local)' }],
    instances: [{ name: INSTANCE, readWriteDns: db.host }],
    endpoints: [{ name: ENDPOINT, host: db.host }],
    logger,
  });

  const common = [`DATABRICKS_DATABASE_NAME=${db.database}`, `DATABRICKS_DATABASE_PORT=${db.port}`, 'PGSSLMODE=disable   # accepted for a loopback host only'];
  console.log(`
Workspace emulator on ${emulator.url}, PostgreSQL on ${db.host}:${db.port}/${db.database}.
Run the service against it from another terminal (or put the lines in .env):

  # Lakebase Provisioned, personal access token
  DATABRICKS_HOST=${emulator.url}
  DATABRICKS_TOKEN=${PAT}
  DATABRICKS_DATABASE_INSTANCE=${INSTANCE}
  ${common.join('\n  ')}

  # or Lakebase Autoscaling, OAuth M2M (as a Databricks App): instead of the token and instance
  DATABRICKS_CLIENT_ID=${CLIENT_ID}
  DATABRICKS_CLIENT_SECRET=${CLIENT_SECRET}
  LAKEBASE_ENDPOINT=${ENDPOINT}

  # short tokens to watch the refresh: restart this with EMULATOR_TOKEN_LIFETIME_SECONDS=120 and
  # start the service with TOKEN_REFRESH_INTERVAL_SECONDS=60 TOKEN_REFRESH_MARGIN_SECONDS=30

Ctrl-C stops it.`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'Stopping the workspace emulator');
    await emulator.stop().catch(() => undefined);
    await db.stop().catch(() => undefined);
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err: unknown) => {
  console.error('The workspace emulator did not start:', err instanceof Error ? err.message : err);
  process.exit(1);
});
