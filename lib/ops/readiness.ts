import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { TokenState } from '../db/connectionTarget.ts';
import type { Database } from '../db/database.ts';
import type { Config } from '../ground/config.ts';
import type { ReadRouting } from '../replicas/readRouting.ts';
import { ApiError } from '../errors.ts';

type ComponentStatus = 'up' | 'down';

interface ServerCheck {
  status: ComponentStatus;
  detail?: string;
}

interface DatabaseCheck {
  status: ComponentStatus;
  latency_ms: number;
  /** Why it is down: a safe summary (no host, no credentials); the full error is in the log. */
  error?: string;
}

interface TokenCheck {
  status: ComponentStatus;
  valid: boolean;
  expires_at: string | null;
  minutes_to_expiry: number | null;
  last_refresh_at: string | null;
  last_error: string | null;
  refreshes: number;
  refresh_failures: number;
}

interface ReplicaCheck {
  /** up while the replica serves reads; down sends its reads to the primary, and never makes the instance unready. */
  status: ComponentStatus;
  state: 'starting' | 'up' | 'lagging' | 'down';
  lag_seconds: number | null;
  max_lag_seconds: number;
  last_check_at: string | null;
  last_error: string | null;
}

export interface Readiness {
  status: 'ready' | 'not_ready';
  /** The components that are down, e.g. `["database"]`; empty when ready. */
  failing: string[];
  checks: { server: ServerCheck; database: DatabaseCheck; token?: TokenCheck; replica?: ReplicaCheck };
}

const MAX_ERROR_LENGTH = 300;

class NoAnswer extends Error {}

function codeOf(err: unknown): string | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code !== '' ? code : undefined;
}

/** The mapped message plus the SQLSTATE or errno (`ECONNREFUSED`, `57P01`): enough to act on, nothing secret. */
function summarise(err: unknown, timeoutMs: number): string {
  if (err instanceof NoAnswer) return `no answer within ${timeoutMs} ms`;
  if (err instanceof ApiError) {
    const code = codeOf(err.cause);
    return code ? `${err.message} (${code})` : err.message;
  }
  return 'unexpected error; see the service log';
}

/** What readiness looks at (the service's context satisfies it): the database door, replica routing, the token, draining. */
export interface ReadinessSubject {
  db: Database;
  logger: Logger;
  readRouting: ReadRouting | null;
  shuttingDown: boolean;
  tokenState(): TokenState | null;
  config: { operations: Pick<Config['operations'], 'readinessTimeoutSeconds'>; readReplica: Pick<Config['readReplica'], 'maxLagSeconds'> };
}

/**
 * A real round trip through the pool (waiting for a connection included), bounded by its own
 * timeout: a pool that cannot hand out a connection within it is not ready either. The query
 * itself may finish later; it then just returns its connection.
 */
async function checkDatabase(ctx: ReadinessSubject, timeoutMs: number): Promise<DatabaseCheck> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const query = ctx.db.query({ text: 'SELECT 1' }, { neverShed: true });
  const noAnswer = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new NoAnswer()), timeoutMs);
  });
  try {
    await Promise.race([query, noAnswer]);
    return { status: 'up', latency_ms: Math.round((performance.now() - started) * 100) / 100 };
  } catch (err) {
    ctx.logger.warn({ err: err instanceof ApiError ? (err.cause ?? err) : err, timeoutMs }, 'Readiness: the database check failed');
    return { status: 'down', latency_ms: Math.round((performance.now() - started) * 100) / 100, error: summarise(err, timeoutMs) };
  } finally {
    clearTimeout(timer);
    query.catch(() => undefined); // a late failure after the timeout has already been reported
  }
}

function checkToken(state: TokenState): TokenCheck {
  const lastError = state.lastError === null ? null : state.lastError.slice(0, MAX_ERROR_LENGTH);
  return {
    status: state.valid ? 'up' : 'down',
    valid: state.valid,
    expires_at: state.expiresAt?.toISOString() ?? null,
    minutes_to_expiry: state.secondsToExpiry === null ? null : Math.round(state.secondsToExpiry / 6) / 10,
    last_refresh_at: state.lastRefreshAt?.toISOString() ?? null,
    last_error: lastError,
    refreshes: state.refreshCount,
    refresh_failures: state.refreshFailures,
  };
}

/** The replica as its monitor last saw it: no query of its own, so a hung replica never slows the probe. */
function checkReplica(ctx: ReadinessSubject): ReplicaCheck | undefined {
  if (!ctx.readRouting) return undefined;
  const status = ctx.readRouting.monitor.status();
  return {
    status: status.state === 'up' ? 'up' : 'down',
    state: status.state,
    lag_seconds: status.lagSeconds === null ? null : Math.round(status.lagSeconds * 1000) / 1000,
    max_lag_seconds: ctx.config.readReplica.maxLagSeconds,
    last_check_at: status.lastCheckAt?.toISOString() ?? null,
    last_error: status.lastError === null ? null : status.lastError.slice(0, MAX_ERROR_LENGTH),
  };
}

/**
 * Can this instance serve traffic now? The server is not shutting down, the database answers
 * through the pool, and (in OAuth modes) a valid token is held, so new connections can log in.
 * A failed refresh while the token is still valid is reported (`last_error`) but not failing.
 */
export async function checkReadiness(ctx: ReadinessSubject): Promise<Readiness> {
  const timeoutMs = Math.round(ctx.config.operations.readinessTimeoutSeconds * 1000);
  const server: ServerCheck = ctx.shuttingDown ? { status: 'down', detail: 'shutting down: finishing in-flight requests' } : { status: 'up' };
  const database = await checkDatabase(ctx, timeoutMs);
  const tokenState = ctx.tokenState();
  const checks: Readiness['checks'] = { server, database, ...(tokenState ? { token: checkToken(tokenState) } : {}) };
  const failing = Object.entries(checks)
    .filter(([, check]) => check.status === 'down')
    .map(([name]) => name);
  // Reported, never failing: the primary answers the replica's reads while it is down.
  const replica = checkReplica(ctx);
  if (replica) checks.replica = replica;
  return { status: failing.length === 0 ? 'ready' : 'not_ready', failing, checks };
}
