import { ConfigError, type Env } from '../ground/settingsReaders.ts';
import { readTokenRefreshSettings, type TokenRefreshSettings } from './tokenManager.ts';
import { StartupError } from './startupError.ts';

type LakebaseMode = 'lakebase-provisioned' | 'lakebase-autoscaling';
type LakebaseSslMode = 'disable' | 'require' | 'verify-ca' | 'verify-full';

/**
 * The Lakebase settings read from the environment:
 *
 * | Variable | Meaning |
 * | --- | --- |
 * | `DATABRICKS_DATABASE_INSTANCE` | Lakebase Provisioned instance name (tokens: POST /api/2.0/database/credentials) |
 * | `LAKEBASE_ENDPOINT` | Lakebase Autoscaling endpoint `projects/…/branches/…/endpoints/…` (tokens: POST /api/2.0/postgres/credentials) |
 * | `PGHOST` | host to connect to (an attached app resource); else looked up from the instance / endpoint |
 * | `DATABRICKS_DATABASE_NAME`, `PGDATABASE` | database (default `databricks_postgres`) |
 * | `DATABRICKS_DATABASE_PORT`, `PGPORT` | port (default 5432) |
 * | `LAKEBASE_USER`, `PGUSER` | Postgres role; else `DATABRICKS_CLIENT_ID`, else the token's identity (SCIM Me) |
 * | `LAKEBASE_SSLMODE`, `PGSSLMODE` | `require` (default), `verify-ca`, `verify-full`; `disable` only for a loopback host |
 * | `PGSSLROOTCERT` | CA bundle file for the verify modes (default: Node's trusted CAs) |
 * | `TOKEN_REFRESH_*`, `WORKSPACE_REQUEST_TIMEOUT_SECONDS` | see lib/lakebase/tokenManager.ts |
 * | `LAKEBASE_READ_ENDPOINT` | Autoscaling: a read-only endpoint (read replica) of the same branch; its own host and credential |
 * | `LAKEBASE_READ_REPLICAS` | Provisioned: `true` reads from the instance's readable secondaries (`read_only_dns`) |
 * | `PGHOST_READ` | the read replica's host, instead of a lookup |
 *
 * Workspace auth is the SDK's: DATABRICKS_HOST + DATABRICKS_TOKEN, DATABRICKS_CLIENT_ID +
 * DATABRICKS_CLIENT_SECRET, or DATABRICKS_CONFIG_PROFILE.
 */
export interface LakebaseSettings {
  mode: LakebaseMode;
  /** DATABRICKS_DATABASE_INSTANCE (Provisioned). */
  instance: string | null;
  /** LAKEBASE_ENDPOINT (Autoscaling). */
  endpoint: string | null;
  /** PGHOST when set: used instead of a lookup (attached-resource mode). */
  host: string | null;
  port: number;
  database: string;
  /** An explicit Postgres user and the variable it came from. */
  user: { name: string; variable: string } | null;
  sslMode: LakebaseSslMode;
  /** The variable that set the TLS mode, or null for the default. */
  sslModeVariable: string | null;
  sslRootCertFile: string | null;
  refresh: TokenRefreshSettings;
  /** A read replica: LAKEBASE_READ_ENDPOINT (Autoscaling) or LAKEBASE_READ_REPLICAS=true (Provisioned); null without one. */
  read: { endpoint: string | null; host: string | null } | null;
  /** Variables present but not used in a Lakebase mode (logged as a warning). */
  ignored: string[];
}

const ENDPOINT_PATH = /^projects\/[^/\s]+\/branches\/[^/\s]+\/endpoints\/[^/\s]+$/;

function nonEmpty(env: Env, name: string): string | null {
  const value = env[name]?.trim();
  return value ? value : null;
}

/** The instance of Lakebase Provisioned settings, which readLakebaseSettings always sets in that mode. */
export function provisionedInstance(resource: { instance?: string | null }): string {
  if (!resource.instance) throw new ConfigError('DATABRICKS_DATABASE_INSTANCE', 'must be set for a Lakebase Provisioned database');
  return resource.instance;
}

/** The endpoint path of Lakebase Autoscaling settings, which readLakebaseSettings always sets in that mode. */
export function autoscalingEndpoint(resource: { endpoint?: string | null }): string {
  if (!resource.endpoint) throw new ConfigError('LAKEBASE_ENDPOINT', 'must be set for a Lakebase Autoscaling database');
  return resource.endpoint;
}

/** The Postgres user set explicitly (LAKEBASE_USER first, then PGUSER), and which variable set it. */
function configuredUser(env: Env): { name: string; variable: string } | null {
  for (const variable of ['LAKEBASE_USER', 'PGUSER']) {
    const name = nonEmpty(env, variable);
    if (name !== null) return { name, variable };
  }
  return null;
}

function readPort(env: Env): number {
  for (const name of ['DATABRICKS_DATABASE_PORT', 'PGPORT']) {
    const raw = nonEmpty(env, name);
    if (raw === null) continue;
    const port = Number(raw);
    if (!/^\d+$/.test(raw) || port < 1 || port > 65535) throw new ConfigError(name, `must be a port number (1-65535), got "${raw}"`);
    return port;
  }
  return 5432;
}

function readSslMode(env: Env): { mode: LakebaseSslMode; variable: string | null } {
  for (const name of ['LAKEBASE_SSLMODE', 'PGSSLMODE']) {
    const raw = nonEmpty(env, name)?.toLowerCase();
    if (raw === undefined || raw === null) continue;
    switch (raw) {
      case 'disable':
      case 'require':
      case 'verify-ca':
      case 'verify-full':
        return { mode: raw, variable: name };
      // Lakebase always needs TLS: the libpq modes that may fall back to plain text mean require here.
      case 'allow':
      case 'prefer':
        return { mode: 'require', variable: name };
      default:
        throw new ConfigError(name, `must be one of require, verify-ca, verify-full (or disable, for a local emulator only); got "${env[name]}"`);
    }
  }
  return { mode: 'require', variable: null };
}

/** The environment looks like a Databricks App or a Lakebase host, not a developer's local Postgres. */
function looksLikeDatabricks(env: Env, pgHost: string): boolean {
  return Boolean(
    nonEmpty(env, 'DATABRICKS_APP_PORT') ||
      nonEmpty(env, 'DATABRICKS_APP_NAME') ||
      nonEmpty(env, 'DATABRICKS_CLIENT_ID') ||
      nonEmpty(env, 'DATABRICKS_HOST') ||
      /databricks/i.test(pgHost),
  );
}

/** LAKEBASE_READ_ENDPOINT / LAKEBASE_READ_REPLICAS / PGHOST_READ, checked against the primary's mode. */
function readLakebaseReplica(env: Env, instance: string | null, endpoint: string | null): LakebaseSettings['read'] {
  const readEndpoint = nonEmpty(env, 'LAKEBASE_READ_ENDPOINT');
  const readReplicasRaw = nonEmpty(env, 'LAKEBASE_READ_REPLICAS')?.toLowerCase() ?? 'false';
  if (!['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'].includes(readReplicasRaw)) {
    throw new ConfigError('LAKEBASE_READ_REPLICAS', `must be true or false, got "${env.LAKEBASE_READ_REPLICAS}"`);
  }
  const readReplicas = ['true', '1', 'yes', 'on'].includes(readReplicasRaw);
  const host = nonEmpty(env, 'PGHOST_READ');
  if (readEndpoint) {
    if (!endpoint) {
      throw new StartupError('LAKEBASE_READ_ENDPOINT names a Lakebase Autoscaling read replica, but the primary is not an Autoscaling endpoint', {
        variable: 'LAKEBASE_READ_ENDPOINT',
        hint: 'With DATABRICKS_DATABASE_INSTANCE (Provisioned) set LAKEBASE_READ_REPLICAS=true to read from its readable secondaries',
      });
    }
    if (!ENDPOINT_PATH.test(readEndpoint)) {
      throw new ConfigError('LAKEBASE_READ_ENDPOINT', `must be projects/<project>/branches/<branch>/endpoints/<endpoint>, got "${readEndpoint}"`);
    }
    // A replica serves its own branch's data: one of another branch would answer with other rows.
    const branchOf = (path: string) => path.slice(0, path.lastIndexOf('/endpoints/'));
    if (branchOf(readEndpoint) !== branchOf(endpoint)) {
      throw new ConfigError('LAKEBASE_READ_ENDPOINT', `must be an endpoint of the primary's branch (${branchOf(endpoint)}), got "${readEndpoint}"`);
    }
    return { endpoint: readEndpoint, host };
  }
  if (readReplicas) {
    if (!instance) {
      throw new StartupError("LAKEBASE_READ_REPLICAS=true reads from a Lakebase Provisioned instance's readable secondaries, but no instance is configured", {
        variable: 'LAKEBASE_READ_REPLICAS',
        hint: 'With LAKEBASE_ENDPOINT (Autoscaling) set LAKEBASE_READ_ENDPOINT to a read-only endpoint of the same branch',
      });
    }
    return { endpoint: null, host };
  }
  return null;
}

/**
 * Null when no Lakebase setting is present (the core then uses plain PG* / DATABASE_URL, or the
 * embedded database). Throws ConfigError for a malformed value, StartupError for a combination
 * that cannot work.
 */
export function readLakebaseSettings(env: Env): LakebaseSettings | null {
  const instance = nonEmpty(env, 'DATABRICKS_DATABASE_INSTANCE');
  const endpoint = nonEmpty(env, 'LAKEBASE_ENDPOINT');
  const pgHost = nonEmpty(env, 'PGHOST');

  if (!instance && !endpoint) {
    if (pgHost && env.PGPASSWORD === undefined && !nonEmpty(env, 'DATABASE_URL') && looksLikeDatabricks(env, pgHost)) {
      throw new StartupError(`PGHOST (${pgHost}) is set without PGPASSWORD, and no Lakebase instance or endpoint is named to mint tokens for`, {
        variable: 'DATABRICKS_DATABASE_INSTANCE',
        hint:
          'Set DATABRICKS_DATABASE_INSTANCE to the Lakebase Provisioned instance name, or LAKEBASE_ENDPOINT to the Autoscaling endpoint ' +
          '(projects/<project>/branches/<branch>/endpoints/<endpoint>), e.g. with valueFrom in app.yaml; for a plain PostgreSQL set PGPASSWORD',
      });
    }
    return null;
  }
  if (instance && endpoint) {
    throw new StartupError('Both DATABRICKS_DATABASE_INSTANCE and LAKEBASE_ENDPOINT are set', {
      variable: 'LAKEBASE_ENDPOINT',
      hint: 'Set DATABRICKS_DATABASE_INSTANCE for Lakebase Provisioned or LAKEBASE_ENDPOINT for Lakebase Autoscaling, not both',
    });
  }
  if (endpoint && !ENDPOINT_PATH.test(endpoint)) {
    throw new ConfigError('LAKEBASE_ENDPOINT', `must be projects/<project>/branches/<branch>/endpoints/<endpoint>, got "${endpoint}"`);
  }

  const ssl = readSslMode(env);
  const ignored = ['DATABASE_URL', 'PGPASSWORD'].filter((name) => env[name] !== undefined);

  return {
    mode: instance ? 'lakebase-provisioned' : 'lakebase-autoscaling',
    instance,
    endpoint,
    host: pgHost,
    port: readPort(env),
    database: nonEmpty(env, 'DATABRICKS_DATABASE_NAME') ?? nonEmpty(env, 'PGDATABASE') ?? 'databricks_postgres',
    user: configuredUser(env),
    sslMode: ssl.mode,
    sslModeVariable: ssl.variable,
    sslRootCertFile: nonEmpty(env, 'PGSSLROOTCERT'),
    refresh: readTokenRefreshSettings(env),
    read: readLakebaseReplica(env, instance, endpoint),
    ignored,
  };
}
