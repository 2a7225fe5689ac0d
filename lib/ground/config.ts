import { readAuthSettings, type AuthSettings } from './authSettings.ts';
import { ConfigError, type Env, readBoolean, readChoice, readIdentifier, readInt, readNumber } from './settingsReaders.ts';
import { readReadReplicaSettings, type ReadReplicaSettings } from './readReplicaSettings.ts';
import { readAdmissionSettings, type AdmissionSettings } from './admissionSettings.ts';

/**
 * Configuration from the environment (server.ts loads `.env` into it first), validated once at
 * start-up. A bad value stops the process with a message naming the variable.
 */
export interface Config {
  /** Address to bind: 0.0.0.0 inside a Databricks App, loopback elsewhere unless HOST says so. */
  host: string;
  port: number;
  pool: {
    /** Connections kept warm. */
    size: number;
    /** Extra connections opened under load and closed again when idle. */
    maxOverflow: number;
    /** Longest wait for a free connection before answering 503. */
    timeoutSeconds: number;
    /** Server-side statement timeout; the caller gets 504. */
    commandTimeoutSeconds: number;
    /** Idle time after which an overflow connection is closed. */
    idleTimeoutSeconds: number;
    /** Connections are recycled after this long so fresh logins (with fresh tokens) happen; 0 = never. */
    maxLifetimeSeconds: number;
  };
  schema: string;
  table: string;
  /** Rows seeded into the embedded database. */
  sampleRows: number;
  /** Where the embedded database keeps its data. */
  embeddedDataDir: string;
  /** Fixed port for the embedded database; 0 = any free port. */
  embeddedPort: number;
  logLevel: string;
  /** Largest accepted request body. */
  maxBodyBytes: number;
  /** Largest request line plus headers the HTTP server parses (node's `maxHeaderSize`); beyond it, 431. */
  maxHeaderBytes: number;
  /** Longest accepted path and query string; beyond it, 414. */
  maxUrlLength: number;
  /** Most rows one PostgREST-dialect response carries (the Data API's db-max-rows), unless a table's narrowing (functions/<singular>Dialect.ts) sets its own. */
  dbMaxRows: number;
  /** Browser origins allowed to call the API cross-origin; empty = CORS off. */
  corsOrigins: string[];
  cache: {
    enabled: boolean;
    maxEntries: number;
    maxBytes: number;
    /** `local`: each instance evicts on its own writes; `notify`: writes are broadcast with Postgres NOTIFY. */
    invalidation: 'local' | 'notify';
  };
  /**
   * Who Postgres sees. `service`: every request as the app's own identity (one shared pool).
   * `user`: each request as the signed-in Databricks user (on-behalf-of), with per-user pools.
   */
  access: {
    mode: 'service' | 'user';
    /** Connections one user's pool may open. */
    connectionsPerUser: number;
    /** All per-user pools together never hold more connections than this. */
    maxConnections: number;
    /** A user's pool idle this long is closed (its connections too). */
    idleCloseSeconds: number;
  };
  /** Who may call: AUTH_MODE, AUTH_WRITERS, AUTH_JWT_* (lib/ground/authSettings.ts, docs/authentication.md). */
  auth: AuthSettings;
  /** The read replica's pool and health checks; used only when a read endpoint is configured (docs/read-replicas.md). */
  readReplica: ReadReplicaSettings;
  /** Fair shares of the database: per-caller limits, the scanning reads' share, wait budgets (lib/admission/). */
  admission: AdmissionSettings;
  operations: {
    /** Serve Prometheus metrics at /metrics. */
    metricsEnabled: boolean;
    /** Longest the readiness probe waits for the database (connection and query) before 503. */
    readinessTimeoutSeconds: number;
    /**
     * On SIGTERM, how long readiness answers 503 while requests are still served, so a load
     * balancer stops routing here before the listener closes.
     */
    shutdownDrainSeconds: number;
  };
}

/**
 * Explicit origins only (`https://app.example.com`, no path): a wildcard would let any web page
 * read the API's answers with its visitors' network position, so `*` is refused.
 */
function readOrigins(env: Env, name: string): string[] {
  const raw = env[name]?.trim();
  if (!raw) return [];
  const origins: string[] = [];
  for (const entry of raw
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean)) {
    if (entry === '*' || entry.includes('*')) throw new ConfigError(name, 'must list explicit origins (https://host[:port]); wildcards are not allowed');
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      throw new ConfigError(name, `has an invalid origin "${entry}" (expected https://host[:port])`);
    }
    const bare = url.pathname === '/' && !url.search && !url.hash && !url.username && !url.password;
    if ((url.protocol !== 'https:' && url.protocol !== 'http:') || !bare) {
      throw new ConfigError(name, `has an invalid origin "${entry}" (expected scheme://host[:port] with no path)`);
    }
    origins.push(url.origin); // normalised as browsers send it: lower-case host, no default port
  }
  return origins;
}

function readAccess(env: Env): Config['access'] {
  const connectionsPerUser = readInt(env, 'DB_USER_POOL_SIZE', 2, 1, 100);
  const maxConnections = readInt(env, 'DB_USER_CONNECTIONS_MAX', 50, 1, 10_000);
  if (maxConnections < connectionsPerUser) {
    throw new ConfigError('DB_USER_CONNECTIONS_MAX', `must be at least DB_USER_POOL_SIZE (${connectionsPerUser}), got ${maxConnections}`);
  }
  return {
    mode: readChoice(env, 'LAKEBASE_ACCESS', ['service', 'user'] as const, 'service'),
    connectionsPerUser,
    maxConnections,
    idleCloseSeconds: readNumber(env, 'DB_USER_POOL_IDLE_SECONDS', 60, 1, 86_400),
  };
}

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

export function loadConfig(env: Env = process.env): Config {
  // Every Databricks App gets DATABRICKS_APP_NAME; its port is 8000 unless DATABRICKS_APP_PORT says otherwise.
  const inDatabricksApp = Boolean(env.DATABRICKS_APP_PORT?.trim() || env.DATABRICKS_APP_NAME?.trim());
  const port = inDatabricksApp ? readInt(env, 'DATABRICKS_APP_PORT', 8000, 1, 65535) : readInt(env, 'PORT', 8000, 0, 65535);
  const host = env.HOST?.trim() || (inDatabricksApp ? '0.0.0.0' : '127.0.0.1');
  const logLevel = (env.LOG_LEVEL?.trim() || 'info').toLowerCase();
  if (!LOG_LEVELS.has(logLevel)) throw new ConfigError('LOG_LEVEL', `must be one of ${[...LOG_LEVELS].join(', ')}`);
  const access = readAccess(env);

  const pool = {
    size: readInt(env, 'DB_POOL_SIZE', 5, 1, 1000),
    maxOverflow: readInt(env, 'DB_MAX_OVERFLOW', 10, 0, 1000),
    timeoutSeconds: readNumber(env, 'DB_POOL_TIMEOUT', 30, 0.1, 3600),
    commandTimeoutSeconds: readNumber(env, 'DB_COMMAND_TIMEOUT', 10, 0.1, 3600),
    idleTimeoutSeconds: readNumber(env, 'DB_POOL_IDLE_TIMEOUT', 30, 1, 86400),
    maxLifetimeSeconds: readInt(env, 'DB_POOL_MAX_LIFETIME', 1800, 0, 86400),
  };
  return {
    host,
    port,
    pool,
    schema: readIdentifier(env, 'DEFAULT_POSTGRES_SCHEMA', 'public'),
    table: readIdentifier(env, 'DEFAULT_POSTGRES_TABLE', 'nyc_train_synced'),
    sampleRows: readInt(env, 'SAMPLE_ROWS', 200_000, 1, 100_000_000),
    embeddedDataDir: env.EMBEDDED_PG_DATA_DIR?.trim() || '.data/postgres',
    embeddedPort: readInt(env, 'EMBEDDED_PG_PORT', 0, 0, 65535),
    logLevel,
    maxBodyBytes: readInt(env, 'MAX_BODY_BYTES', 16 * 1024, 64, 10 * 1024 * 1024),
    maxHeaderBytes: readInt(env, 'MAX_HEADER_BYTES', 16 * 1024, 1024, 1024 * 1024),
    maxUrlLength: readInt(env, 'MAX_URL_LENGTH', 4096, 256, 1024 * 1024),
    dbMaxRows: readInt(env, 'DB_MAX_ROWS', 1000, 1, 10_000_000),
    corsOrigins: readOrigins(env, 'CORS_ORIGINS'),
    cache: {
      enabled: readBoolean(env, 'CACHE_ENABLED', true),
      maxEntries: readInt(env, 'CACHE_MAX_ENTRIES', 5000, 1, 10_000_000),
      // 16 MiB, counted as the entries really take it (lib/cache/resultsCache.ts): every point lookup
      // the 5000 entries allow, or about 570 stream pages. The old 64 MiB filled with no-cache stream
      // pages under the benchmark and took the process's peak RSS from about 185 to 255-300 MiB
      // (docs/performance.md); the 200 MiB target leaves the cache about 16.
      maxBytes: readInt(env, 'CACHE_MAX_BYTES', 16 * 1024 * 1024, 1024, 64 * 1024 * 1024 * 1024),
      invalidation: readChoice(env, 'CACHE_INVALIDATION', ['local', 'notify'] as const, 'local'),
    },
    access,
    auth: readAuthSettings(env, { inDatabricksApp, userAccess: access.mode === 'user' }),
    readReplica: readReadReplicaSettings(env, pool),
    admission: readAdmissionSettings(env),
    operations: {
      metricsEnabled: readBoolean(env, 'METRICS_ENABLED', true),
      readinessTimeoutSeconds: readNumber(env, 'READINESS_TIMEOUT', 2, 0.1, 60),
      shutdownDrainSeconds: readNumber(env, 'SHUTDOWN_DRAIN_SECONDS', 0, 0, 300),
    },
  };
}
