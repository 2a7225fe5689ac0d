import type pg from 'pg';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CacheStats } from '../cache/resultsCache.ts';
import type { TokenState } from '../db/connectionTarget.ts';
import type { ScanShareStats } from '../db/scanShare.ts';
import type { UserPoolStats } from '../db/userPools.ts';
import type { ReadRoutingStats } from '../replicas/readRouting.ts';

/** What /metrics reports on; every source is read when Prometheus scrapes, never copied. */
export interface MetricSources {
  version: string;
  mode: string;
  pool: pg.Pool;
  /** `DB_POOL_SIZE + DB_MAX_OVERFLOW`. */
  maxConnections: number;
  cacheStats?: () => CacheStats;
  /** The scanning reads' share of the pool (DB_SCAN_SHARE), when protection is on. */
  scanShareStats?: () => ScanShareStats;
  invalidationStats?: () => { connected: boolean; received: number; reconnects: number };
  /** LAKEBASE_ACCESS=user: the per-user pools. */
  userPoolStats?: () => UserPoolStats;
  /** With a read replica: where replica-declared reads ran, and the replica's lag. */
  readRoutingStats?: () => ReadRoutingStats;
  /** Present only when connections log in with OAuth tokens; the token metrics exist only then. */
  tokenState?: () => TokenState | null;
}

type ConnectionErrorKind = 'connect' | 'lost';

export interface Metrics {
  readonly registry: Registry;
  /** One finished request; `route` is the route template (low cardinality), never the raw path. */
  observeRequest(method: string, route: string, status: number, seconds: number): void;
  /** `connect`: a new connection could not be opened; `lost`: an open idle connection died. */
  connectionError(kind: ConnectionErrorKind): void;
  /**
   * A request refused to keep shares fair: `reason` is the limit (caller-rate, caller-in-flight:
   * 429; scan-share, pool-wait: 503 shed). Labelled by operation, never by caller.
   */
  refused(operation: string, reason: string): void;
  /** The Prometheus text exposition of everything in this registry. */
  exposition(): Promise<{ contentType: string; body: string }>;
}

const PREFIX = 'lakebase_api_';
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** Seconds: cache hits take well under a millisecond, cold analytics scans up to the command timeout. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * A counter whose running total is kept elsewhere (the cache, the token manager): the value is
 * read at scrape time instead of being counted twice.
 */
function mirroredCounter(registry: Registry, name: string, help: string, read: () => number | undefined): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const value = read();
      this.reset();
      if (value !== undefined) this.inc(value);
    },
  });
}

/** A gauge read at scrape time; an unknown value (no token yet) is NaN, never a misleading 0. */
function readGauge(registry: Registry, name: string, help: string, read: () => number | undefined): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read() ?? Number.NaN);
    },
  });
}

/** The read replica: its lag and state, its pool, and where the reads declared for it ran. */
function registerReplicaMetrics(registry: Registry, stats: () => ReadRoutingStats): void {
  readGauge(
    registry,
    `${PREFIX}db_replica_lag_seconds`,
    'Seconds of primary writes the read replica has not replayed yet (0 when caught up)',
    () => stats().replica.lagSeconds ?? undefined,
  );
  readGauge(registry, `${PREFIX}db_replica_up`, '1 while the read replica serves reads (answering, within DB_READ_MAX_LAG_SECONDS)', () =>
    Number(stats().replica.state === 'up'),
  );
  readGauge(registry, `${PREFIX}db_replica_pool_connections`, 'Connections the read replica pool holds open', () => stats().pool.total);
  readGauge(registry, `${PREFIX}db_replica_pool_max_connections`, 'The most connections the read replica pool may open', () => stats().pool.max);
  readGauge(
    registry,
    `${PREFIX}db_replica_write_fences`,
    'Writes whose stale reads are held on the primary until the replica replays them',
    () => stats().fences,
  );
  mirroredCounter(
    registry,
    `${PREFIX}db_replica_replay_checks_total`,
    'Reads held by a recent write that asked the replica for its replay position',
    () => stats().replayChecks,
  );
  new Counter({
    name: `${PREFIX}db_replica_reads_total`,
    help: 'Reads declared x-read-from: replica, by the server that answered (replica, primary) and why the primary did (down, lagging, fresh = read-your-writes, failed = the replica failed mid-read)',
    labelNames: ['server', 'reason'],
    registers: [registry],
    collect() {
      const { replicaReads, primaryReads } = stats();
      this.reset();
      this.inc({ server: 'replica', reason: 'replica' }, replicaReads);
      for (const [reason, count] of Object.entries(primaryReads)) this.inc({ server: 'primary', reason }, count);
    },
  });
}

/**
 * One registry per context (not prom-client's global one), so several contexts in one process
 * (tests, a Lambda container re-initialising) never clash over metric names.
 */
export function createMetrics(sources: MetricSources): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  new Gauge({
    name: `${PREFIX}info`,
    help: 'Always 1; the labels say which version runs in which database mode',
    labelNames: ['version', 'mode'],
    registers: [registry],
  }).set({ version: sources.version, mode: sources.mode }, 1);

  const requests = new Counter({
    name: `${PREFIX}http_requests_total`,
    help: 'Requests answered, by method, route template and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: `${PREFIX}http_request_duration_seconds`,
    help: 'Time from receiving a request to having its response, by method, route template and status',
    labelNames: ['method', 'route', 'status'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });

  const { pool } = sources;
  readGauge(registry, `${PREFIX}db_pool_connections`, 'Connections the pool holds open (busy and idle)', () => pool.totalCount);
  readGauge(registry, `${PREFIX}db_pool_idle_connections`, 'Open connections not in use', () => pool.idleCount);
  readGauge(registry, `${PREFIX}db_pool_waiting_requests`, 'Callers waiting for a free connection', () => pool.waitingCount);
  readGauge(
    registry,
    `${PREFIX}db_pool_max_connections`,
    'The most connections the pool may open (DB_POOL_SIZE + DB_MAX_OVERFLOW)',
    () => sources.maxConnections,
  );
  const connectionErrors = new Counter({
    name: `${PREFIX}db_connection_errors_total`,
    help: 'Database connection failures: connect = a new connection could not be opened, lost = an idle connection died',
    labelNames: ['kind'],
    registers: [registry],
  });
  for (const kind of ['connect', 'lost'] as const) connectionErrors.inc({ kind }, 0);

  const refusals = new Counter({
    name: `${PREFIX}requests_refused_total`,
    help: 'Requests refused to keep the database fair, by operation and reason: caller-rate and caller-in-flight (429), queue-wait, scan-share and pool-wait (503, shed)',
    labelNames: ['operation', 'reason'],
    registers: [registry],
  });
  const { scanShareStats } = sources;
  if (scanShareStats) {
    readGauge(
      registry,
      `${PREFIX}db_scan_slots`,
      'Connections heavy scanning statements may hold at once (DB_SCAN_SHARE of the pool)',
      () => scanShareStats().slots,
    );
    readGauge(registry, `${PREFIX}db_scan_slots_in_use`, 'Heavy scanning statements holding their share now', () => scanShareStats().inUse);
    readGauge(
      registry,
      `${PREFIX}db_scan_waiting_requests`,
      'Heavy scanning statements waiting for their share (at most DB_SCAN_WAIT_MS)',
      () => scanShareStats().waiting,
    );
    readGauge(
      registry,
      `${PREFIX}db_scan_light_slots`,
      'Connections light scanning statements may hold at once (the pool less a third and the heavy share)',
      () => scanShareStats().lightSlots,
    );
    readGauge(registry, `${PREFIX}db_scan_light_slots_in_use`, 'Light scanning statements holding a connection now', () => scanShareStats().lightInUse);
    mirroredCounter(
      registry,
      `${PREFIX}db_scan_heavy_statements_total`,
      "Scanning reads' statements the planner estimated heavy (DB_SCAN_COST), which took the share",
      () => scanShareStats().heavy,
    );
    mirroredCounter(
      registry,
      `${PREFIX}db_scan_light_statements_total`,
      "Scanning reads' statements the planner estimated light, which ran beside the share",
      () => scanShareStats().light,
    );
  }

  const { tokenState } = sources;
  if (tokenState) {
    readGauge(registry, `${PREFIX}token_valid`, '1 while a valid OAuth token for the database is held', () => Number(tokenState()?.valid ?? false));
    readGauge(registry, `${PREFIX}token_age_seconds`, 'Seconds since the current token was obtained', () => tokenState()?.ageSeconds ?? undefined);
    readGauge(
      registry,
      `${PREFIX}token_expiry_seconds`,
      'Seconds until the current token expires (negative once expired)',
      () => tokenState()?.secondsToExpiry ?? undefined,
    );
    mirroredCounter(registry, `${PREFIX}token_refreshes_total`, 'Successful token refreshes', () => tokenState()?.refreshCount);
    mirroredCounter(registry, `${PREFIX}token_refresh_failures_total`, 'Failed token refresh attempts', () => tokenState()?.refreshFailures);
  }

  const { cacheStats } = sources;
  if (cacheStats) {
    const stat = (key: keyof CacheStats) => () => cacheStats()[key];
    mirroredCounter(registry, `${PREFIX}cache_hits_total`, 'Reads answered from the results cache', stat('hits'));
    mirroredCounter(registry, `${PREFIX}cache_misses_total`, 'Reads that ran a query to fill the results cache', stat('misses'));
    mirroredCounter(registry, `${PREFIX}cache_coalesced_total`, 'Reads that waited for a query another request had already started', stat('coalesced'));
    mirroredCounter(
      registry,
      `${PREFIX}cache_refreshes_spared_total`,
      'Forced refreshes (no-cache, max-age) answered without a load of their own: they shared a load under way, or waited for the next one (CACHE_REFRESH_INTERVAL)',
      stat('refreshesSpared'),
    );
    mirroredCounter(registry, `${PREFIX}cache_evictions_total`, 'Entries dropped to stay within CACHE_MAX_ENTRIES / CACHE_MAX_BYTES', stat('evictions'));
    mirroredCounter(registry, `${PREFIX}cache_invalidations_total`, 'Entries removed because a write made them stale', stat('invalidations'));
    readGauge(registry, `${PREFIX}cache_entries`, 'Entries in the results cache', stat('entries'));
    readGauge(registry, `${PREFIX}cache_bytes`, 'Response bytes held by the results cache', stat('bytes'));
  }
  const { invalidationStats } = sources;
  if (invalidationStats) {
    readGauge(registry, `${PREFIX}cache_invalidation_listener_connected`, '1 while the LISTEN connection for cross-instance invalidation is open', () =>
      Number(invalidationStats().connected),
    );
    mirroredCounter(
      registry,
      `${PREFIX}cache_invalidation_notifications_total`,
      'Invalidations received from other instances',
      () => invalidationStats().received,
    );
    mirroredCounter(
      registry,
      `${PREFIX}cache_invalidation_reconnects_total`,
      'Times the LISTEN connection was re-opened',
      () => invalidationStats().reconnects,
    );
  }

  const { userPoolStats } = sources;
  if (userPoolStats) {
    const stat = (key: keyof UserPoolStats) => () => userPoolStats()[key];
    readGauge(registry, `${PREFIX}user_pools`, 'Per-user pools open (LAKEBASE_ACCESS=user)', stat('pools'));
    readGauge(registry, `${PREFIX}user_pool_connections`, 'Connections all per-user pools hold', stat('connections'));
    readGauge(
      registry,
      `${PREFIX}user_pool_max_connections`,
      'The most connections the per-user pools may hold together (DB_USER_CONNECTIONS_MAX, rounded down to whole pools)',
      stat('ceiling'),
    );
    mirroredCounter(registry, `${PREFIX}user_pools_opened_total`, 'Per-user pools opened', stat('created'));
    mirroredCounter(registry, `${PREFIX}user_pools_closed_total`, 'Per-user pools closed (idle, or to make room for another user)', stat('closed'));
    mirroredCounter(registry, `${PREFIX}user_pool_waits_total`, 'Requests that waited for a per-user pool slot', stat('waited'));
    mirroredCounter(
      registry,
      `${PREFIX}user_pool_rejections_total`,
      'Requests answered 503 after waiting DB_POOL_TIMEOUT for a per-user pool slot',
      stat('rejected'),
    );
  }

  const { readRoutingStats } = sources;
  if (readRoutingStats) registerReplicaMetrics(registry, readRoutingStats);

  return {
    registry,
    observeRequest(method, route, status, seconds) {
      // Only methods the API could answer become label values: a stream of invented methods must
      // not create a series each.
      const labels = { method: KNOWN_METHODS.has(method) ? method : 'OTHER', route, status: String(status) };
      requests.inc(labels);
      duration.observe(labels, seconds);
    },
    connectionError(kind) {
      connectionErrors.inc({ kind });
    },
    refused(operation, reason) {
      refusals.inc({ operation, reason });
    },
    async exposition() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
