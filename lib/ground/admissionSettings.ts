import { ConfigError, type Env, readBoolean, readInt, readNumber } from './settingsReaders.ts';

/** Fair shares of the database (docs/operations.md, "One caller cannot starve the others"). */
export interface AdmissionSettings {
  /** ADMISSION_ENABLED: every protection below; false restores plain queueing (for comparison). */
  enabled: boolean;
  /** TRUSTED_PROXIES: addresses or CIDR ranges whose X-Forwarded-For names the client. */
  trustedProxies: string[];
  /** ADMISSION_MAX_ACTIVE: requests served at once before callers take fair turns. */
  maxActive: number;
  /** ADMISSION_QUEUE_WAIT_MS: the longest a request waits for its turn before 503. */
  queueWaitMs: number;
  /** CALLER_MAX_IN_FLIGHT: one caller's requests using the database at once. */
  callerMaxInFlight: number;
  /** CALLER_RATE_PER_SECOND / CALLER_BURST: one caller's token bucket for scanning reads that reach the database. */
  callerRatePerSecond: number;
  callerBurst: number;
  /** DB_SCAN_SHARE: the share of the pool's connections scanning reads may hold at once. */
  scanShare: number;
  /** DB_SCAN_WAIT_MS: the longest a scanning read waits for its share before 503. */
  scanWaitMs: number;
  /** DB_SCAN_COST: the planner's estimate from which a scanning read's statement is heavy and takes the share (0: every one). */
  scanCost: number;
  /** DB_PARALLEL_WORKERS: max_parallel_workers_per_gather on the service's connections; -1 leaves the server's. */
  parallelWorkers: number;
  /** DB_POOL_WAIT_MS: the longest any statement waits for a busy pool before 503. */
  poolWaitMs: number;
  /** CACHE_REFRESH_INTERVAL: forced refreshes of one key load at most once per this many seconds. */
  refreshIntervalSeconds: number;
}

const ADDRESS_OR_RANGE = /^([0-9.]+|[0-9A-Fa-f:.]+)(\/\d{1,3})?$/;

function readProxies(env: Env): string[] {
  const raw = env.TRUSTED_PROXIES?.trim();
  if (!raw) return [];
  const entries = raw
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  for (const entry of entries) {
    if (!ADDRESS_OR_RANGE.test(entry)) throw new ConfigError('TRUSTED_PROXIES', `must list IP addresses or CIDR ranges (10.0.0.0/8), got "${entry}"`);
  }
  return entries;
}

export function readAdmissionSettings(env: Env): AdmissionSettings {
  return {
    enabled: readBoolean(env, 'ADMISSION_ENABLED', true),
    trustedProxies: readProxies(env),
    maxActive: readInt(env, 'ADMISSION_MAX_ACTIVE', 16, 1, 100_000),
    queueWaitMs: readInt(env, 'ADMISSION_QUEUE_WAIT_MS', 1000, 1, 600_000),
    callerMaxInFlight: readInt(env, 'CALLER_MAX_IN_FLIGHT', 128, 0, 100_000),
    callerRatePerSecond: readNumber(env, 'CALLER_RATE_PER_SECOND', 2000, 0, 1_000_000),
    callerBurst: readInt(env, 'CALLER_BURST', 4000, 1, 10_000_000),
    scanShare: readNumber(env, 'DB_SCAN_SHARE', 0.1, 0.01, 1),
    scanWaitMs: readInt(env, 'DB_SCAN_WAIT_MS', 1000, 1, 600_000),
    scanCost: readNumber(env, 'DB_SCAN_COST', 5000, 0, 1e12),
    parallelWorkers: readInt(env, 'DB_PARALLEL_WORKERS', 0, -1, 1024),
    poolWaitMs: readInt(env, 'DB_POOL_WAIT_MS', 1000, 1, 600_000),
    refreshIntervalSeconds: readNumber(env, 'CACHE_REFRESH_INTERVAL', 1, 0, 3600),
  };
}

/** Scanning reads' connections: the share of the pool's maximum, at least one, leaving at least one for the rest. */
export function scanSlots(settings: AdmissionSettings, maxConnections: number): number {
  return Math.max(1, Math.min(maxConnections - 1, Math.floor(settings.scanShare * maxConnections)));
}

/**
 * Light scanning statements' connections: the pool less a third (at least one) kept for point
 * lookups and writes, less the heavy share. 9 of the default 15.
 */
export function lightScanSlots(settings: AdmissionSettings, maxConnections: number): number {
  const kept = Math.max(1, Math.ceil(maxConnections / 3));
  return Math.max(1, maxConnections - kept - scanSlots(settings, maxConnections));
}
