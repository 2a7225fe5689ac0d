import { AsyncResource } from 'node:async_hooks';
import { ApiError, ClientClosedRequest, Timeout, Unavailable } from '../errors.ts';
import { QUERY_TIMEOUT_GRACE_MS } from './createPool.ts';

/**
 * Gathers concurrent single-key lookups into one statement (`WHERE key = ANY($1)`). A lookup goes
 * out at once while fewer than `maxInFlight` statements are running, so a lone request never waits;
 * only lookups that arrive while the statements are busy queue, and they leave together, up to
 * `maxBatch` at a time, as soon as a statement finishes. Per-statement work in Node (pool checkout,
 * protocol, parsing) is then paid once per batch instead of once per request.
 *
 * Every caller gets exactly its own answer: the row for its key, or undefined when there is none.
 * A failure of the shared statement is each caller's own when it is about the database (outage,
 * timeout, refusal): alone, each would have had the same. Any other failure might come from one
 * key's row, so each key is then run alone and gets the outcome it would have had by itself.
 * A caller that goes away is answered at once (499) without disturbing the statement its neighbours
 * wait for; the statement is cancelled only when every caller in it has gone.
 */
export interface KeyBatcherOptions<K, R> {
  /**
   * Runs one statement for `keys` (distinct, at most `maxBatch`) and returns the rows found, each
   * with its key. Keys without a row are simply absent. `signal`, when given, aborts when nobody
   * waits for the answer any more: pass it on to the query so the server can stop.
   */
  load(keys: readonly K[], signal: AbortSignal | undefined): Promise<Iterable<readonly [K, R]>>;
  /** Most keys in one statement. */
  maxBatch: number;
  /** Statements running at once (e.g. the pool's warm connections); lookups beyond it are gathered. */
  maxInFlight: number;
  /**
   * Longest a queued lookup waits for its answer, queue and statement together (see
   * `serviceBatcherBounds`): alone it would have waited for the pool (bounded) and then run its statement
   * (bounded); queued, it must not pay both in a row. Past it: 503 while still queued, 504 once its
   * statement went out (which carries on for its other callers). Unbounded when absent.
   */
  maxWaitMs?: number;
}

interface Waiter<K, R> {
  key: K;
  resolve(row: R | undefined): void;
  reject(err: unknown): void;
  signal?: AbortSignal;
  onAbort?: () => void;
  settled: boolean;
  /** Fires when a queued lookup has waited `maxWaitMs` for its answer. */
  waitTimer?: NodeJS.Timeout;
  /** The caller's async context, kept only when it had to wait in the queue. */
  scope?: AsyncResource;
}

/** Failures that are about the database, not about one key's row: shared as they are. */
function isSharedFailure(err: unknown): boolean {
  return err instanceof ApiError && err.status !== 500;
}

export interface KeyBatcherStats {
  /** Statements sent (batches, plus keys run alone after a batch failed on something else). */
  statements: number;
  lookups: number;
  largestBatch: number;
}

/**
 * The bounds the service gives a batcher on `pool`. Statements at once: the connections it keeps warm
 * (DB_POOL_SIZE), within the pool's own bound (a per-user pool opens only a few), so the overflow stays
 * free for other work. A queued lookup's deadline: what it could take alone, waiting for a connection
 * (DB_POOL_TIMEOUT) or running its statement (the command timeout plus the client's grace).
 */
export function serviceBatcherBounds(
  settings: { size: number; timeoutSeconds: number; commandTimeoutSeconds: number },
  pool: { options: { max?: number } },
): Pick<KeyBatcherOptions<unknown, unknown>, 'maxInFlight' | 'maxWaitMs'> {
  return {
    maxInFlight: Math.max(1, Math.min(settings.size, pool.options.max ?? Infinity)),
    maxWaitMs: Math.max(settings.timeoutSeconds * 1000, settings.commandTimeoutSeconds * 1000 + QUERY_TIMEOUT_GRACE_MS),
  };
}

export class KeyBatcher<K, R> {
  private readonly queue: Array<Waiter<K, R>> = [];
  private inFlight = 0;
  private readonly counters: KeyBatcherStats = { statements: 0, lookups: 0, largestBatch: 0 };

  constructor(private readonly options: KeyBatcherOptions<K, R>) {
    if (!(options.maxBatch >= 1) || !(options.maxInFlight >= 1)) throw new RangeError('maxBatch and maxInFlight must be at least 1');
  }

  /** The row for `key`, or undefined. Rejects with ClientClosedRequest when `signal` aborts first. */
  get(key: K, signal?: AbortSignal): Promise<R | undefined> {
    if (signal?.aborted) return Promise.reject(new ClientClosedRequest());
    this.counters.lookups++;
    // Nothing waiting and a slot free, and a caller that cannot leave: its statement goes out now,
    // without the bookkeeping a shared statement needs (the lone request's path: no added work).
    if (!signal && this.queue.length === 0 && this.inFlight < this.options.maxInFlight) return this.sendAlone(key);
    return new Promise<R | undefined>((resolve, reject) => {
      const waiter: Waiter<K, R> = { key, resolve, reject, signal, settled: false };
      if (signal) {
        waiter.onAbort = () => this.leave(waiter);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.queue.push(waiter);
      this.pump();
      // Still queued: its batch will be started later, from another request's context. Keep this
      // caller's (request-scoped log fields, the trace) for it; a lookup sent at once needs none.
      if (this.queue[this.queue.length - 1] === waiter) {
        waiter.scope = new AsyncResource('lakebase-api.keyBatcher');
        if (this.options.maxWaitMs !== undefined) waiter.waitTimer = setTimeout(() => this.expire(waiter), this.options.maxWaitMs).unref();
      }
    });
  }

  stats(): KeyBatcherStats {
    return { ...this.counters };
  }

  private pump(): void {
    while (this.inFlight < this.options.maxInFlight && this.queue.length > 0) {
      const batch: Array<Waiter<K, R>> = [];
      const keys = new Set<K>();
      for (let next = this.queue[0]; next !== undefined; next = this.queue[0]) {
        if (!keys.has(next.key) && keys.size >= this.options.maxBatch) break;
        keys.add(next.key);
        batch.push(next);
        this.queue.shift();
      }
      this.inFlight++;
      // In the context of the batch's first caller, not of whatever finished before and pumped it:
      // its statement is that request's child in a trace, and its log lines carry that request's id.
      const scope = batch[0]?.scope;
      const ran = scope ? scope.runInAsyncScope(() => this.run(batch, [...keys])) : this.run(batch, [...keys]);
      void ran.finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  /** One key in a statement of its own, for a caller without a signal: the row, or the statement's error. */
  private sendAlone(key: K): Promise<R | undefined> {
    this.inFlight++;
    this.counters.statements++;
    if (this.counters.largestBatch === 0) this.counters.largestBatch = 1;
    const answer = this.options.load([key], undefined).then((rows) => {
      for (const [found, row] of rows) if (found === key) return row;
      return undefined;
    });
    const done = () => {
      this.inFlight--;
      this.pump();
    };
    answer.then(done, done);
    return answer;
  }

  private async run(batch: Array<Waiter<K, R>>, keys: K[]): Promise<void> {
    this.counters.largestBatch = Math.max(this.counters.largestBatch, keys.length);
    // The statement may stop early only if every caller can go away; one without a signal always waits.
    const everyoneCanLeave = batch.every((w) => w.signal);
    const controller = everyoneCanLeave ? new AbortController() : undefined;
    const members = new Set(batch);
    const onLeave = () => {
      for (const w of members) if (!w.settled) return;
      controller?.abort();
    };
    for (const w of batch) if (w.signal) w.signal.addEventListener('abort', onLeave, { once: true });
    try {
      let rows: Map<K, R>;
      try {
        rows = await this.load(keys, controller?.signal);
      } catch (err) {
        if (keys.length === 1 || isSharedFailure(err)) {
          for (const w of batch) this.settle(w, () => w.reject(err));
          return;
        }
        await Promise.all(
          keys.map((key) =>
            this.runAlone(
              key,
              batch.filter((w) => w.key === key),
            ),
          ),
        );
        return;
      }
      for (const w of batch) this.settle(w, () => w.resolve(rows.get(w.key)));
    } finally {
      for (const w of batch) w.signal?.removeEventListener('abort', onLeave);
    }
  }

  private async runAlone(key: K, waiters: Array<Waiter<K, R>>): Promise<void> {
    try {
      const rows = await this.load([key], undefined);
      for (const w of waiters) this.settle(w, () => w.resolve(rows.get(key)));
    } catch (err) {
      for (const w of waiters) this.settle(w, () => w.reject(err));
    }
  }

  private async load(keys: readonly K[], signal: AbortSignal | undefined): Promise<Map<K, R>> {
    this.counters.statements++;
    return new Map(await this.options.load(keys, signal));
  }

  /** A caller went away: answered now; out of the queue if its statement has not gone out yet. */
  private leave(waiter: Waiter<K, R>): void {
    this.dequeue(waiter);
    this.settle(waiter, () => waiter.reject(new ClientClosedRequest()));
  }

  /** Waited `maxWaitMs` (the database is slow or away): a 503 if its statement never went out, else a 504. */
  private expire(waiter: Waiter<K, R>): void {
    const error = this.dequeue(waiter)
      ? new Unavailable('No database connection became free in time; retry shortly')
      : new Timeout('The database did not answer within the command timeout');
    this.settle(waiter, () => waiter.reject(error));
  }

  private dequeue(waiter: Waiter<K, R>): boolean {
    const queued = this.queue.indexOf(waiter);
    if (queued >= 0) this.queue.splice(queued, 1);
    return queued >= 0;
  }

  private settle(waiter: Waiter<K, R>, answer: () => void): void {
    if (waiter.settled) return;
    waiter.settled = true;
    clearTimeout(waiter.waitTimer);
    if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
    answer();
  }
}
