import { Overloaded } from '../errors.ts';

export interface ScanShareOptions {
  /** Scanning reads that may hold a connection at once (DB_SCAN_SHARE of the pool, at least 1). */
  slots: number;
  /** Longest a scanning read waits for a slot before it is shed with 503 (DB_SCAN_WAIT_MS). */
  waitMs: number;
  /**
   * DB_SCAN_CHEAP_MS: an operation whose scanning reads have lately all finished within this many
   * milliseconds is cheap, and its reads run beside the share (0: never).
   */
  cheapMs?: number;
  /** Cheap scanning reads that may run beside the share at once (at least 0). */
  cheapSlots?: number;
  /** Milliseconds since some fixed point (tests); default performance.now. */
  now?: () => number;
}

/** Successful runs, each within cheapMs and in a row, before an operation counts as cheap. */
export const CHEAP_PROOF_RUNS = 20;
/** After one slow run an operation is not cheap for this long, however fast its next runs are. */
export const CHEAP_HOLD_MS = 30_000;

/** What the share has seen of one operation's runs. */
interface OperationRecord {
  fastRuns: number;
  slowAt: number;
  /** When each of its reads running beside the share started (at most cheapSlots). */
  besideSince: number[];
}

export interface ScanShareStats {
  slots: number;
  inUse: number;
  waiting: number;
  /** Scanning reads shed because no slot came free within the wait. */
  shed: number;
  /** Cheap scanning reads running beside the share now. */
  cheapInUse: number;
}

interface Waiter {
  grant(): void;
  timer: NodeJS.Timeout;
}

/**
 * The share of the pool scanning reads may hold: a semaphore of `slots`, so point lookups and writes
 * always find connections left. Waiting is bounded (`waitMs`, then 503 with Retry-After at once,
 * rather than DB_POOL_TIMEOUT in the pool's queue), and a freed slot goes to the waiting callers in
 * turn, one request each, so one caller's queue of scans cannot keep another's waiting behind it.
 *
 * Only expensive reads need the share: a keyset page or the sample (a few index probes) costs about
 * a millisecond, and serialising them on one connection cost a lone caller a third of its
 * throughput. So each operation earns its way out: after CHEAP_PROOF_RUNS successful runs in a row
 * within `cheapMs` (and none slower for CHEAP_HOLD_MS), its reads run beside the share, at most
 * `cheapSlots` at once. A run beside the share still running past `cheapMs` marks its operation
 * slow for the next request, so a burst of expensive requests behind cheap ones is bounded by `cheapSlots` and
 * then waits CHEAP_HOLD_MS. Every operation starts expensive.
 */
export class ScanShare {
  private inUse = 0;
  private waitingCount = 0;
  private shed = 0;
  /** Waiters by caller; a Map keeps insertion order, so moving a caller to the end makes a rotation. */
  private readonly queues = new Map<string, Waiter[]>();
  private cheapInUse = 0;
  /** By operation (a bounded set: the document's operations). */
  private readonly operations = new Map<string, OperationRecord>();
  private readonly now: () => number;

  constructor(private readonly options: ScanShareOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  /**
   * Runs `work` holding one slot, or beside the share when `operation` has proven cheap; throws
   * Overloaded when no slot comes free within the wait. `onWait` is told when the request has to wait.
   */
  async run<T>(caller: string, work: () => Promise<T>, onWait?: () => void, operation = ''): Promise<T> {
    const record = this.record(operation);
    if (this.isCheap(record) && this.cheapInUse < (this.options.cheapSlots ?? 0)) return this.runBeside(record, work);
    if (this.inUse < this.options.slots && this.waitingCount === 0) this.inUse++;
    else {
      onWait?.();
      await this.wait(caller);
    }
    try {
      return await this.timed(record, work);
    } finally {
      this.release();
    }
  }

  private async runBeside<T>(record: OperationRecord, work: () => Promise<T>): Promise<T> {
    this.cheapInUse++;
    const started = this.now();
    record.besideSince.push(started);
    try {
      return await this.timed(record, work);
    } finally {
      record.besideSince.splice(record.besideSince.indexOf(started), 1);
      this.cheapInUse--;
    }
  }

  /** Runs `work`, noting how long it took. A refusal (a bad filter, a 4xx) proves nothing cheap. */
  private async timed<T>(record: OperationRecord, work: () => Promise<T>): Promise<T> {
    if (!this.options.cheapMs) return work();
    const started = this.now();
    let succeeded = false;
    try {
      const result = await work();
      succeeded = true;
      return result;
    } finally {
      if (this.now() - started > this.options.cheapMs) this.markSlow(record);
      else if (succeeded) record.fastRuns++;
    }
  }

  private record(operation: string): OperationRecord {
    let record = this.operations.get(operation);
    if (!record) {
      record = { fastRuns: 0, slowAt: Number.NEGATIVE_INFINITY, besideSince: [] };
      this.operations.set(operation, record);
    }
    return record;
  }

  private isCheap(record: OperationRecord): boolean {
    const { cheapMs } = this.options;
    if (!cheapMs) return false;
    const now = this.now();
    // One of its reads beside the share is slow already, still running: later ones take the share at once.
    if (record.besideSince.some((started) => now - started > cheapMs)) this.markSlow(record);
    return record.fastRuns >= CHEAP_PROOF_RUNS && now - record.slowAt >= CHEAP_HOLD_MS;
  }

  private markSlow(record: OperationRecord): void {
    record.fastRuns = 0;
    record.slowAt = this.now();
  }

  stats(): ScanShareStats {
    return { slots: this.options.slots, inUse: this.inUse, waiting: this.waitingCount, shed: this.shed, cheapInUse: this.cheapInUse };
  }

  private wait(caller: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(waiter.timer);
          resolve();
        },
        timer: setTimeout(() => {
          this.remove(caller, waiter);
          this.shed++;
          reject(
            new Overloaded(
              `The database is busy with scanning reads: none of the ${this.options.slots} connections they may hold came free within ${this.options.waitMs} ms; retry shortly`,
              'scan-share',
            ),
          );
        }, this.options.waitMs),
      };
      let queue = this.queues.get(caller);
      if (!queue) {
        queue = [];
        this.queues.set(caller, queue);
      }
      queue.push(waiter);
      this.waitingCount++;
    });
  }

  private remove(caller: string, waiter: Waiter): void {
    const queue = this.queues.get(caller);
    const at = queue?.indexOf(waiter) ?? -1;
    if (!queue || at === -1) return;
    queue.splice(at, 1);
    this.waitingCount--;
    if (queue.length === 0) this.queues.delete(caller);
  }

  /** Hands the slot to the next caller in turn (it keeps counting as in use), or frees it. */
  private release(): void {
    const next = this.queues.entries().next();
    if (next.done) {
      this.inUse--;
      return;
    }
    const [caller, queue] = next.value;
    const waiter = queue.shift() as Waiter;
    this.waitingCount--;
    this.queues.delete(caller);
    if (queue.length > 0) this.queues.set(caller, queue); // to the back of the rotation
    waiter.grant();
  }
}
