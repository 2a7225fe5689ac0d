import type pg from 'pg';
import type { Logger } from 'pino';
import { Unavailable } from '../errors.ts';
import { outsideRequestScope } from '../ground/requestScope.ts';

/**
 * Per-user connection pools for on-behalf-of access: each signed-in user logs in to Postgres as
 * themselves, so grants and row-level security apply. Connections are the scarce resource, so the
 * pools are bounded together: at most `maxConnections / connectionsPerUser` pools exist, each
 * opening at most `connectionsPerUser` connections. A user without a pool takes the place of the
 * least recently used idle one (closed first, so the ceiling holds at every instant); when every
 * pool is busy, the request waits up to `waitTimeoutMs` and then gets 503.
 */
export interface UserPoolsOptions<P extends UserPool> {
  /** Connections one user's pool opens at most. */
  connectionsPerUser: number;
  /** Connections all pools together hold at most. */
  maxConnections: number;
  /** How long a request may wait for a pool slot (DB_POOL_TIMEOUT). */
  waitTimeoutMs: number;
  /** A pool nobody used for this long is closed. */
  idleCloseMs: number;
  /** Opens a pool for `user` of at most `max` connections. */
  open(user: string, max: number): P;
  logger: Logger;
}

/** What a per-user pool must offer: its pg pool (closed through it) and anything else the caller needs. */
export interface UserPool {
  pool: pg.Pool;
}

interface Entry<P> {
  user: string;
  value: P;
  /** Requests currently holding this pool. */
  active: number;
  lastUsed: number;
}

export interface UserPoolStats {
  pools: number;
  /** Connections open (or being opened) across all user pools. */
  connections: number;
  /** The most connections the pools may hold together. */
  ceiling: number;
  created: number;
  closed: number;
  /** Requests that had to wait for a pool slot, and those that gave up (503). */
  waited: number;
  rejected: number;
}

export class UserPools<P extends UserPool> {
  private readonly entries = new Map<string, Entry<P>>();
  private readonly waiters: Array<() => void> = [];
  private readonly idleTimer: NodeJS.Timeout;
  private readonly maxPools: number;
  private closed = false;
  /** Pools being closed still hold connections: they count against the bound until they are gone. */
  private closing = 0;
  private readonly counters = { created: 0, closed: 0, waited: 0, rejected: 0 };

  constructor(private readonly options: UserPoolsOptions<P>) {
    this.maxPools = Math.max(1, Math.floor(options.maxConnections / options.connectionsPerUser));
    this.idleTimer = setInterval(() => this.closeIdle(), Math.max(250, Math.min(options.idleCloseMs / 2, 30_000)));
    this.idleTimer.unref();
  }

  /** Runs `work` with the user's pool, holding it so it is not closed meanwhile. */
  async with<T>(user: string, work: (pool: P) => Promise<T>): Promise<T> {
    const entry = await this.acquire(user);
    try {
      return await work(entry.value);
    } finally {
      entry.active--;
      entry.lastUsed = Date.now();
      if (entry.active === 0) this.wakeOne();
    }
  }

  private async acquire(user: string): Promise<Entry<P>> {
    const deadline = Date.now() + this.options.waitTimeoutMs;
    for (;;) {
      if (this.closed) throw new Unavailable('The service is shutting down');
      const existing = this.entries.get(user);
      if (existing) {
        existing.active++;
        // Map order is recency order: move it to the back.
        this.entries.delete(user);
        this.entries.set(user, existing);
        return existing;
      }
      if (this.entries.size + this.closing < this.maxPools) return this.create(user);
      const eviction = this.evictLeastRecentlyUsedIdle();
      if (eviction) {
        await eviction; // its connections are gone: the slot is free
        continue;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        this.counters.rejected++;
        throw new Unavailable('Every per-user connection pool is busy (DB_USER_CONNECTIONS_MAX reached); retry shortly');
      }
      this.counters.waited++;
      await this.waitForSlot(remaining);
    }
  }

  private create(user: string): Entry<P> {
    const value = this.options.open(user, this.options.connectionsPerUser);
    value.pool.on(
      'error',
      outsideRequestScope((err: Error) => {
        if (!this.closed)
          this.options.logger.warn({ user, err: { message: err.message, code: (err as { code?: string }).code } }, 'Idle per-user database connection lost');
      }),
    );
    const entry: Entry<P> = { user, value, active: 1, lastUsed: Date.now() };
    this.entries.set(user, entry);
    this.counters.created++;
    return entry;
  }

  private waitForSlot(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        const index = this.waiters.indexOf(wake);
        if (index >= 0) this.waiters.splice(index, 1);
        resolve();
      }, timeoutMs);
      this.waiters.push(wake);
    });
  }

  private wakeOne(): void {
    this.waiters.shift()?.();
  }

  /** Starts closing the least recently used idle pool; resolves once its connections are closed. */
  private evictLeastRecentlyUsedIdle(): Promise<void> | undefined {
    for (const entry of this.entries.values()) {
      if (entry.active === 0) return this.close(entry);
    }
    return undefined;
  }

  private async close(entry: Entry<P>): Promise<void> {
    this.entries.delete(entry.user);
    this.counters.closed++;
    this.closing++;
    try {
      await entry.value.pool.end();
    } catch {
      // already broken: nothing left to close
    } finally {
      this.closing--;
      this.wakeOne();
    }
  }

  private closeIdle(): void {
    const cutoff = Date.now() - this.options.idleCloseMs;
    for (const entry of [...this.entries.values()]) if (entry.active === 0 && entry.lastUsed <= cutoff) void this.close(entry);
  }

  /** Connections the user's pool holds now (0 without a pool). */
  connectionsOf(user: string): number {
    return this.entries.get(user)?.value.pool.totalCount ?? 0;
  }

  stats(): UserPoolStats {
    let connections = 0;
    for (const { value } of this.entries.values()) connections += value.pool.totalCount;
    return { pools: this.entries.size, connections, ceiling: this.maxPools * this.options.connectionsPerUser, ...this.counters };
  }

  async closeAll(): Promise<void> {
    this.closed = true;
    clearInterval(this.idleTimer);
    for (const wake of this.waiters.splice(0)) wake();
    await Promise.all([...this.entries.values()].map((entry) => entry.value.pool.end().catch(() => undefined)));
    this.entries.clear();
  }
}
