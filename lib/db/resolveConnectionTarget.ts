import type { Logger } from 'pino';
import type { Config } from '../ground/config.ts';
import { ConfigError, type Env } from '../ground/settingsReaders.ts';
import type { ConnectionTarget } from './connectionTarget.ts';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './embeddedPostgres.ts';
import { seedTrips } from './seedTrips.ts';
import { sslFromMode } from './sslMode.ts';

/** A Lakebase resolver returns null when no Lakebase settings are present. */
export type LakebaseResolver = (env: Env, logger: Logger) => Promise<ConnectionTarget | null>;

const nothingToClose = async () => undefined;

function fromDatabaseUrl(raw: string, variable = 'DATABASE_URL'): ConnectionTarget {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(variable, 'is not a valid URL (expected postgresql://user:password@host:5432/database)');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError(variable, `must start with postgresql://, got "${url.protocol}//"`);
  }
  const host = decodeURIComponent(url.hostname) || '127.0.0.1';
  const database = decodeURIComponent(url.pathname.replace(/^\//, '')) || 'postgres';
  const port = url.port ? Number(url.port) : 5432;
  return {
    mode: 'postgres',
    host,
    port,
    database,
    user: decodeURIComponent(url.username) || 'postgres',
    password: decodeURIComponent(url.password),
    ssl: sslFromMode(url.searchParams.get('sslmode') ?? undefined, host, `${variable} sslmode`),
    description: `PostgreSQL at ${host}:${port}/${database}`,
    close: nothingToClose,
  };
}

function readPort(env: Env, variable: string, fallback: number): number {
  const raw = env[variable];
  if (!raw) return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError(variable, `must be a port number, got "${raw}"`);
  return port;
}

/** The standard PG* variables, with `host` taken from PGHOST (or PGHOST_READ for a replica), already checked non-empty. */
function fromPgVariables(env: Env, host: string, portVariable = 'PGPORT'): ConnectionTarget {
  const port = readPort(env, portVariable, readPort(env, 'PGPORT', 5432));
  const database = env.PGDATABASE || 'postgres';
  return {
    mode: 'postgres',
    host,
    port,
    database,
    user: env.PGUSER || 'postgres',
    password: env.PGPASSWORD ?? '',
    ssl: sslFromMode(env.PGSSLMODE, host),
    description: `PostgreSQL at ${host}:${port}/${database}`,
    close: nothingToClose,
  };
}

async function startEmbedded(config: Config, logger: Logger): Promise<ConnectionTarget> {
  logger.info({ dataDir: config.embeddedDataDir }, 'No database configured: starting the embedded PostgreSQL');
  const server = await startEmbeddedPostgres({ dataDir: config.embeddedDataDir, port: config.embeddedPort, logger });
  try {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ host: server.host, port: server.port, database: server.database, user: server.user, password: server.password });
    await client.connect();
    try {
      await seedTrips(client, { schema: config.schema, table: config.table, rows: config.sampleRows, logger });
    } finally {
      await client.end();
    }
  } catch (err) {
    await server.stop();
    throw err;
  }
  return embeddedTarget(server, () => server.stop());
}

/** The connection target of an embedded server; `close` decides whether closing stops it. */
export function embeddedTarget(
  server: Pick<EmbeddedPostgres, 'host' | 'port' | 'database' | 'user' | 'password'>,
  close: () => Promise<void>,
): ConnectionTarget {
  return {
    mode: 'embedded',
    host: server.host,
    port: server.port,
    database: server.database,
    user: server.user,
    password: server.password,
    ssl: false,
    description: `embedded PostgreSQL at ${server.host}:${server.port}/${server.database}`,
    close,
  };
}

/**
 * The read replica of a plain PostgreSQL: DATABASE_URL_READ, or PGHOST_READ (and PGPORT_READ) with
 * the primary's other PG* settings. Undefined when neither is set.
 */
function plainReplica(env: Env): ConnectionTarget | undefined {
  if (env.DATABASE_URL_READ) return fromDatabaseUrl(env.DATABASE_URL_READ, 'DATABASE_URL_READ');
  if (env.PGHOST_READ) return fromPgVariables(env, env.PGHOST_READ, 'PGPORT_READ');
  return undefined;
}

/**
 * Where the database is, in order: Lakebase (OAuth tokens from the workspace), plain Postgres
 * settings with a password (DATABASE_URL or PG* variables), else the embedded database.
 */
export async function resolveConnectionTarget(config: Config, env: Env, logger: Logger, lakebase?: LakebaseResolver): Promise<ConnectionTarget> {
  const viaLakebase = lakebase ? await lakebase(env, logger) : null;
  if (viaLakebase) return viaLakebase;
  const plain = env.DATABASE_URL ? fromDatabaseUrl(env.DATABASE_URL) : env.PGHOST ? fromPgVariables(env, env.PGHOST) : undefined;
  if (plain) {
    const replica = plainReplica(env);
    return replica ? { ...plain, replica } : plain;
  }
  if (env.DATABASE_URL_READ || env.PGHOST_READ) {
    logger.warn('DATABASE_URL_READ / PGHOST_READ ignored: a read replica needs its primary configured too (DATABASE_URL or PGHOST)');
  }
  return startEmbedded(config, logger);
}
