import { ConfigError, type Env } from './settingsReaders.ts';

/**
 * How the read replica's pool and health checks behave. Read from the environment with the rest of
 * the configuration; used only when a read endpoint is configured (LAKEBASE_READ_ENDPOINT,
 * LAKEBASE_READ_REPLICAS, PGHOST_READ or DATABASE_URL_READ).
 */
export interface ReadReplicaSettings {
  /** Connections kept warm on the replica (DB_READ_POOL_SIZE, default DB_POOL_SIZE). */
  poolSize: number;
  /** Extra replica connections under load (DB_READ_MAX_OVERFLOW, default DB_MAX_OVERFLOW). */
  maxOverflow: number;
  /**
   * Longest wait for a replica connection (DB_READ_POOL_TIMEOUT, default 2 s). Short on purpose:
   * past it the read goes to the primary instead of waiting on a replica that does not answer.
   */
  timeoutSeconds: number;
  /** Past this replication lag reads go to the primary until the replica catches up (DB_READ_MAX_LAG_SECONDS). */
  maxLagSeconds: number;
  /** How often the replica's replay position and the primary's WAL position are compared (DB_READ_CHECK_SECONDS). */
  checkIntervalSeconds: number;
}

function readNumber(env: Env, name: string, fallback: number, min: number, max: number, integer = false): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || (integer && !Number.isInteger(value)))
    throw new ConfigError(name, `must be ${integer ? 'an integer' : 'a number'}, got "${raw}"`);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

export function readReadReplicaSettings(env: Env, primaryPool: { size: number; maxOverflow: number }): ReadReplicaSettings {
  return {
    poolSize: readNumber(env, 'DB_READ_POOL_SIZE', primaryPool.size, 1, 1000, true),
    maxOverflow: readNumber(env, 'DB_READ_MAX_OVERFLOW', primaryPool.maxOverflow, 0, 1000, true),
    timeoutSeconds: readNumber(env, 'DB_READ_POOL_TIMEOUT', 2, 0.1, 3600),
    maxLagSeconds: readNumber(env, 'DB_READ_MAX_LAG_SECONDS', 10, 0.1, 86_400),
    checkIntervalSeconds: readNumber(env, 'DB_READ_CHECK_SECONDS', 1, 0.05, 3600),
  };
}
