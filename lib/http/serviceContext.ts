import type pg from 'pg';
import type { Logger } from 'pino';
import type { Authenticator } from '../auth/authenticator.ts';
import type { InvalidationChannel } from '../cache/invalidationChannel.ts';
import type { ResultsCache } from '../cache/resultsCache.ts';
import type { ConnectionTarget, TokenState } from '../db/connectionTarget.ts';
import type { Database } from '../db/database.ts';
import type { Config } from '../ground/config.ts';
import type { ScanShare } from '../db/scanShare.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { ReadRouting } from '../replicas/readRouting.ts';
import type { Telemetry } from '../telemetry/telemetrySettings.ts';
import type { UserAccess } from '../userAccess/userAccess.ts';

/** The trips table, its name validated and quoted once. */
export interface TripsTable {
  schema: string;
  table: string;
  /** `"schema"."table"`, safe to put into SQL text. */
  qualified: string;
}

/**
 * Everything a handler may use, built once per process (or per Lambda container). Handlers never
 * reach for environment variables or globals.
 */
export interface Context {
  config: Config;
  db: Database;
  pool: pg.Pool;
  target: ConnectionTarget;
  trips: TripsTable;
  logger: Logger;
  /** The results cache; null when CACHE_ENABLED=false. */
  cache: ResultsCache | null;
  /** Broadcasts writes' invalidations to other instances (CACHE_INVALIDATION=notify). */
  invalidationChannel: InvalidationChannel | null;
  /** Sends a write's invalidation to other instances, when a channel is open. */
  publishInvalidation?: (prefixes: readonly string[]) => Promise<void>;
  version: string;
  startedAt: number;
  /** Prometheus metrics (one registry per context); null when METRICS_ENABLED=false. */
  metrics: Metrics | null;
  /** Set when graceful shutdown begins: readiness answers 503 from then on. */
  shuttingDown: boolean;
  /**
   * LAKEBASE_ACCESS=user: verifies each caller and opens per-user pools. Operations that declare
   * `security` in the OpenAPI document run with `db` logged in as the caller; null in service mode.
   */
  userAccess: UserAccess | null;
  /** AUTH_MODE's check of each caller (lib/auth/); null with AUTH_MODE=none. */
  authenticator: Authenticator | null;
  /** With a read replica configured: picks the pool for reads declared `x-read-from: replica`; else null. */
  readRouting: ReadRouting | null;
  /** The share of the pool scanning reads may hold (DB_SCAN_SHARE); null with ADMISSION_ENABLED=false. */
  scanShare: ScanShare | null;
  /** The OAuth token's state in Lakebase modes; null with a fixed password. */
  tokenState(): TokenState | null;
  close(): Promise<void>;
}

/** A context, and the telemetry exporting what it does (null when OTEL_EXPORTER_OTLP_ENDPOINT is unset). */
export interface ObservedContext {
  ctx: Context;
  telemetry: Telemetry | null;
}
