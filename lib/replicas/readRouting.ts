import type pg from 'pg';
import type { Logger } from 'pino';
import { cacheKey } from '../cache/resultsCache.ts';
import type { Config } from '../ground/config.ts';
import type { ConnectionTarget } from '../db/connectionTarget.ts';
import { createPool } from '../db/createPool.ts';
import { Database } from '../db/database.ts';
import { firstRow } from '../db/firstRow.ts';
import { ApiError, ClientClosedRequest, Timeout, Unavailable } from '../errors.ts';
import { outsideRequestScope } from '../ground/requestScope.ts';
import { ReplicationMonitor, type ReplicaStatus } from './replicationMonitor.ts';
import { parseLsn } from './walPosition.ts';
import { WriteFences, type Fence } from './writeFences.ts';

/** Why a read declared for the replica ran on the primary. */
export type PrimaryReason = 'down' | 'lagging' | 'fresh' | 'failed';

export interface ReadRoutingStats {
  /** Reads the replica answered. */
  replicaReads: number;
  /** Replica reads the primary answered instead, by reason. */
  primaryReads: Record<PrimaryReason, number>;
  /** Reads held back by a recent write that asked the replica for its replay position first. */
  replayChecks: number;
  /** Writes whose stale reads are still held on the primary. */
  fences: number;
  replica: ReplicaStatus;
  pool: { total: number; idle: number; waiting: number; max: number };
}

/** An operation's input, as the results cache keys it. */
type ReadInput = { params: object; query: object };

/**
 * The WAL insert position: at or past the end of the write's commit record even with
 * synchronous_commit off, where the write position (pg_current_wal_lsn) may still be behind it.
 */
const CURRENT_WAL_POSITION = { name: 'write_fence_lsn', text: 'SELECT pg_current_wal_insert_lsn()::text AS lsn' };
/** Recovery conflicts: a hot standby cancelled the read to replay WAL. The primary has no such conflict. */
const RECOVERY_CONFLICTS = new Set(['40001', '40P01']);

/**
 * Whether a failure on the replica is the replica's (unreachable, refusing logins, lost, hung,
 * cancelled by replay) rather than the read's own (a bad statement, the statement timeout, a
 * caller who left), and so worth running the read on the primary instead.
 */
function replicaFault(err: unknown): { fault: boolean; replicaDown: boolean } {
  if (err instanceof ClientClosedRequest) return { fault: false, replicaDown: false };
  if (err instanceof Unavailable) return { fault: true, replicaDown: true };
  const cause = err instanceof ApiError ? err.cause : err;
  const code = (cause as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && RECOVERY_CONFLICTS.has(code)) return { fault: true, replicaDown: false };
  // pg's own timer: the replica did not answer at all (not the server's statement timeout, 57014).
  if (err instanceof Timeout && cause instanceof Error && /^Query read timeout$/.test(cause.message)) return { fault: true, replicaDown: true };
  return { fault: false, replicaDown: false };
}

export interface ReadRoutingOptions {
  primary: Database;
  replicaTarget: ConnectionTarget;
  config: Config;
  logger: Logger;
  /** A new replica connection could not be opened (metrics). */
  onConnectError?: () => void;
}

/**
 * Pool selection for reads declared `x-read-from: replica`: the replica while it answers and is
 * within DB_READ_MAX_LAG_SECONDS, unless a write through this instance made the read stale and the
 * replica has not replayed that write yet (read-your-writes); otherwise the primary. A replica
 * failing mid-read hands the read to the primary: its callers never see the replica's outage.
 */
export class ReadRouting {
  readonly replicaPool: pg.Pool;
  readonly replica: Database;
  readonly monitor: ReplicationMonitor;
  private readonly fences = new WriteFences();
  private readonly primaryReads: Record<PrimaryReason, number> = { down: 0, lagging: 0, fresh: 0, failed: 0 };
  private replicaReads = 0;
  private replayChecks = 0;
  private closed: Promise<void> | undefined;
  private readonly maxConnections: number;

  constructor(private readonly options: ReadRoutingOptions) {
    const { config, replicaTarget, logger } = options;
    const settings = config.readReplica;
    this.maxConnections = settings.poolSize + settings.maxOverflow;
    const replicaPoolConfig: Config = {
      ...config,
      pool: { ...config.pool, size: settings.poolSize, maxOverflow: settings.maxOverflow, timeoutSeconds: settings.timeoutSeconds },
    };
    this.replicaPool = createPool(replicaTarget, replicaPoolConfig, 'lakebase-api-read', { onConnectError: () => options.onConnectError?.() });
    this.replicaPool.on(
      'error',
      outsideRequestScope((err: Error) => {
        if (this.closed) return;
        logger.warn({ err: { message: err.message, code: (err as { code?: string }).code } }, 'Idle read replica connection lost');
      }),
    );
    this.replica = new Database(this.replicaPool, typeof replicaTarget.password === 'string' ? undefined : replicaTarget.password);
    this.monitor = new ReplicationMonitor(
      options.primary,
      this.replica,
      {
        maxLagSeconds: settings.maxLagSeconds,
        checkIntervalSeconds: settings.checkIntervalSeconds,
        checkTimeoutMs: Math.max(1000, settings.timeoutSeconds * 1000, config.operations.readinessTimeoutSeconds * 1000),
      },
      logger,
    );
  }

  start(): Promise<void> {
    return this.monitor.start();
  }

  /** Runs a replica-declared read on the pool that may answer it now. */
  async run<T>(operationId: string, input: ReadInput, work: (db: Database) => Promise<T>): Promise<T> {
    const reason = await this.primaryReason(operationId, input);
    if (reason) {
      this.primaryReads[reason] += 1;
      return work(this.options.primary);
    }
    try {
      const result = await work(this.replica);
      this.replicaReads += 1;
      return result;
    } catch (err) {
      const { fault, replicaDown } = replicaFault(err);
      if (!fault) throw err;
      if (replicaDown) this.monitor.markDown(err);
      this.primaryReads.failed += 1;
      return work(this.options.primary);
    }
  }

  /**
   * After a write through this instance has committed: the reads it made stale (its cache
   * invalidation prefixes) stay on the primary until the replica has replayed the write.
   */
  async fenceWrite(prefixes: readonly string[]): Promise<void> {
    if (prefixes.length === 0) return;
    let fence: Fence;
    try {
      const position = await this.options.primary.query<{ lsn: string }>(CURRENT_WAL_POSITION);
      fence = { lsn: parseLsn(firstRow(position, 'pg_current_wal_insert_lsn()').lsn), until: 0 };
    } catch (err) {
      // The position could not be read: hold the reads for as long as a replica serving reads may lag.
      this.options.logger.warn(
        { err: err instanceof ApiError ? (err.cause ?? err) : err },
        "Could not read the write's WAL position: its reads stay on the primary for DB_READ_MAX_LAG_SECONDS",
      );
      fence = { lsn: null, until: Date.now() + this.options.config.readReplica.maxLagSeconds * 1000 };
    }
    this.fences.add(prefixes, fence);
  }

  stats(): ReadRoutingStats {
    this.fences.prune(this.monitor.replayLsn);
    return {
      replicaReads: this.replicaReads,
      primaryReads: { ...this.primaryReads },
      replayChecks: this.replayChecks,
      fences: this.fences.size,
      replica: this.monitor.status(),
      pool: { total: this.replicaPool.totalCount, idle: this.replicaPool.idleCount, waiting: this.replicaPool.waitingCount, max: this.maxConnections },
    };
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      this.monitor.stop();
      await this.replicaPool.end();
      await this.options.replicaTarget.close();
    })();
    return this.closed;
  }

  private async primaryReason(operationId: string, input: ReadInput): Promise<PrimaryReason | undefined> {
    const { monitor } = this;
    if (!monitor.serving) return monitor.status().state === 'lagging' ? 'lagging' : 'down';
    if (this.fences.size === 0) return undefined;
    const fence = this.fences.holding(cacheKey(operationId, input), monitor.replayLsn);
    if (!fence) return undefined;
    // The last check is older than the write: ask the replica where it is now (one query shared by
    // the reads waiting on it) before sending the read to the primary.
    this.replayChecks += 1;
    const replayed = await monitor.refreshReplay();
    return this.fences.passedBy(fence, replayed) ? undefined : 'fresh';
  }
}
