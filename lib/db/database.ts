import type pg from 'pg';
import { ClientClosedRequest, Overloaded } from '../errors.ts';
import { statementChannel, statementSummary, transactionChannel } from './databaseChannels.ts';
import { withTokenRetry } from './connectWithTokenRetry.ts';
import { sendCancelRequest } from './cancelRequest.ts';
import type { PasswordSource } from './connectionTarget.ts';
import { mapDatabaseError } from './databaseErrors.ts';
import type { KeyBatcher } from './keyBatcher.ts';
import type { ScanShare } from './scanShare.ts';
import { explainStatement, type PlanEstimate, planEstimate } from './statementCosts.ts';

export interface QueryOptions {
  /** Aborted when the caller went away: the statement is cancelled on the server. */
  signal?: AbortSignal;
  /** Waits for a connection as long as the pool lets it, past DB_POOL_WAIT_MS (the readiness probe: never shed). */
  neverShed?: boolean;
}

/** A scanning read's handle: whose it is, and the share its heavy statements take (see forScan). */
interface ScanScope {
  share: ScanShare;
  caller: string;
}

/** A connection held across awaits, until `release`. */
interface Lease {
  client: pg.PoolClient;
  /** Returns the connection to the pool, or drops it when it failed or was lost meanwhile. */
  release(err?: Error): void;
}

/**
 * The handlers' door to Postgres: every failure leaves here as a typed API error. A login refused
 * with 28P01 (token expired or revoked) refreshes the token once and retries: the statement never
 * ran, so the retry is safe even for writes.
 */
export class Database {
  private batchers = new Map<string, KeyBatcher<unknown, unknown>>();
  private scan: ScanScope | undefined;

  constructor(
    readonly pool: pg.Pool,
    private readonly passwordSource?: PasswordSource,
    /**
     * DB_POOL_WAIT_MS: when every connection is busy, the longest a statement waits for one before
     * it is shed with 503 (Overloaded), rather than queueing for the pool's DB_POOL_TIMEOUT. 0 = the pool's.
     */
    private readonly waitBudgetMs = 0,
  ) {}

  /**
   * This handle as a scanning read by `caller` sees it: each statement (each transaction) the
   * planner estimates heavy first takes one of the connections `share` lets heavy scans hold, in
   * turn with other callers, or is shed; light ones run as they are. Same pool, same batchers.
   */
  forScan(share: ScanShare, caller: string): Database {
    const view = new Database(this.pool, this.passwordSource, this.waitBudgetMs);
    view.batchers = this.batchers;
    view.scan = { share, caller };
    return view;
  }

  query<R extends pg.QueryResultRow>(statement: pg.QueryConfig, options: QueryOptions = {}): Promise<pg.QueryResult<R>> {
    if (!statementChannel.hasSubscribers) return this.runShared<R>(statement, options);
    // The statement's name or operation, never its text's values (see statementSummary).
    return statementChannel.tracePromise(() => this.runShared<R>(statement, options), statementSummary(statement));
  }

  private runShared<R extends pg.QueryResultRow>(statement: pg.QueryConfig, options: QueryOptions): Promise<pg.QueryResult<R>> {
    return this.inShare([statement], () => this.run<R>(statement, options));
  }

  /** `work` as it is, or, on a scanning read's handle (forScan), in the share `statements` call for. */
  private inShare<T>(statements: pg.QueryConfig[], work: () => Promise<T>): Promise<T> {
    const { scan } = this;
    return scan ? scan.share.runStatement(scan.caller, statements, this.explainCost, work) : work();
  }

  /**
   * What the planner expects of `statement`, planned but not run (`EXPLAIN`): never waits for a
   * scanning read's share, since planning reads no table.
   */
  async plan(statement: pg.QueryConfig): Promise<PlanEstimate> {
    return planEstimate((await this.run<Record<string, unknown>>(explainStatement(statement), {})).rows);
  }

  /** The planner's total estimate for `statement` (see StatementCosts). */
  private readonly explainCost = async (statement: pg.QueryConfig): Promise<number> => (await this.plan(statement)).totalCost;

  private async run<R extends pg.QueryResultRow>(statement: pg.QueryConfig, options: QueryOptions): Promise<pg.QueryResult<R>> {
    if (options.signal) return this.cancellableQuery<R>(statement, options.signal);
    if (!options.neverShed && this.saturated()) return this.leasedQuery<R>(statement);
    try {
      return await withTokenRetry(this.passwordSource, () => this.pool.query<R>(statement));
    } catch (err) {
      throw mapDatabaseError(err);
    }
  }

  /**
   * The batcher for lookups named `name` on this handle, made by `create` on first use. Each handle
   * (the service's, or one per signed-in user) has its own, so a batch never mixes users.
   */
  batcher<K, R>(name: string, create: () => KeyBatcher<K, R>): KeyBatcher<K, R> {
    let batcher = this.batchers.get(name) as KeyBatcher<K, R> | undefined;
    if (!batcher) {
      batcher = create();
      this.batchers.set(name, batcher as KeyBatcher<unknown, unknown>);
    }
    return batcher;
  }

  /**
   * A statement whose caller may go away. When it does, the server is asked to cancel the
   * statement, and the connection is dropped rather than reused, so a cancel that lands late can
   * never hit another request's statement. The pool slot is held until the statement has really
   * ended: disconnects cannot pile up work on the server beyond the pool's size.
   */
  private async cancellableQuery<R extends pg.QueryResultRow>(statement: pg.QueryConfig, signal: AbortSignal): Promise<pg.QueryResult<R>> {
    if (signal.aborted) throw new ClientClosedRequest();
    const lease = await this.acquire();
    if (signal.aborted) {
      lease.release();
      throw new ClientClosedRequest();
    }
    let cancelled = false;
    const cancel = () => {
      cancelled = true;
      void sendCancelRequest(lease.client);
    };
    signal.addEventListener('abort', cancel, { once: true });
    try {
      const result = await lease.client.query<R>(statement);
      lease.release(cancelled ? new Error('cancel requested') : undefined);
      return result;
    } catch (err) {
      // As pg's own pool.query does: a connection whose statement failed is not reused.
      lease.release(err instanceof Error ? err : new Error(String(err)));
      throw cancelled ? new ClientClosedRequest() : mapDatabaseError(err);
    } finally {
      signal.removeEventListener('abort', cancel);
    }
  }

  /** A statement on a connection checked out within the wait budget (the pool is busy: see connect). */
  private async leasedQuery<R extends pg.QueryResultRow>(statement: pg.QueryConfig): Promise<pg.QueryResult<R>> {
    const lease = await this.acquire();
    try {
      const result = await lease.client.query<R>(statement);
      lease.release();
      return result;
    } catch (err) {
      lease.release(err instanceof Error ? err : new Error(String(err)));
      throw mapDatabaseError(err);
    }
  }

  /** Every connection is busy (or others already wait): a checkout now would queue. */
  private saturated(): boolean {
    if (this.waitBudgetMs <= 0) return false;
    const { pool } = this;
    const max = (pool as unknown as { options: { max: number } }).options.max;
    return pool.waitingCount > 0 || (pool.idleCount === 0 && pool.totalCount >= max);
  }

  /**
   * Runs `work` in one transaction on one connection; rolls back on any error. On a scanning read's
   * handle (forScan) the whole transaction takes the share unless the planner estimates every one of
   * `scans` light: name the statements that do the reading.
   */
  transaction<T>(work: (client: pg.PoolClient) => Promise<T>, scans: pg.QueryConfig[] = []): Promise<T> {
    const run = () => this.inShare(scans, () => this.runTransaction(work));
    if (!transactionChannel.hasSubscribers) return run();
    return transactionChannel.tracePromise(run, {});
  }

  private async runTransaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const { client, release } = await this.acquire();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackErr) {
        broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr)); // never hand it out again
      }
      throw mapDatabaseError(err);
    } finally {
      release(broken);
    }
  }

  /**
   * Checks a connection out for several statements. While it is out, the pool no longer listens
   * for its errors, and a server-side error arriving between statements (a restart's 57P01 in the
   * same packet as the last result) would be an 'error' event nobody hears: an uncaught exception
   * that ends the process. Listen for the whole lease, and drop a connection lost meanwhile.
   */
  private async acquire(): Promise<Lease> {
    const client = await this.connect();
    let lost: Error | undefined;
    const onError = (err: Error) => {
      lost ??= err;
    };
    client.on('error', onError);
    return {
      client,
      release(err) {
        client.off('error', onError);
        client.release(err ?? lost);
      },
    };
  }

  private async connect(): Promise<pg.PoolClient> {
    const connecting = withTokenRetry(this.passwordSource, () => this.pool.connect());
    try {
      return await (this.saturated() ? this.within(connecting) : connecting);
    } catch (err) {
      throw mapDatabaseError(err);
    }
  }

  /**
   * The checkout, or Overloaded once the wait budget has passed. pg-pool cannot withdraw a queued
   * checkout, so a connection that arrives after the budget goes straight back to the pool.
   */
  private within(connecting: Promise<pg.PoolClient>): Promise<pg.PoolClient> {
    const budget = this.waitBudgetMs;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        connecting.then(
          (client) => client.release(),
          () => undefined,
        );
        reject(new Overloaded(`Every database connection stayed busy for ${budget} ms; retry shortly`, 'pool-wait'));
      }, budget);
      connecting.then(
        (client) => {
          clearTimeout(timer);
          resolve(client);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }
}
