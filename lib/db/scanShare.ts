import { Overloaded } from '../errors.ts';

export interface ScanShareOptions {
  /** Scanning reads that may hold a connection at once (DB_SCAN_SHARE of the pool, at least 1). */
  slots: number;
  /** Longest a scanning read waits for a slot before it is shed with 503 (DB_SCAN_WAIT_MS). */
  waitMs: number;
}

export interface ScanShareStats {
  slots: number;
  inUse: number;
  waiting: number;
  /** Scanning reads shed because no slot came free within the wait. */
  shed: number;
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
 */
export class ScanShare {
  private inUse = 0;
  private waitingCount = 0;
  private shed = 0;
  /** Waiters by caller; a Map keeps insertion order, so moving a caller to the end makes a rotation. */
  private readonly queues = new Map<string, Waiter[]>();

  constructor(private readonly options: ScanShareOptions) {}

  /**
   * Runs `work` holding one slot; throws Overloaded when none comes free within the wait.
   * `onWait` is told when the request has to wait for one.
   */
  async run<T>(caller: string, work: () => Promise<T>, onWait?: () => void): Promise<T> {
    if (this.inUse < this.options.slots && this.waitingCount === 0) this.inUse++;
    else {
      onWait?.();
      await this.wait(caller);
    }
    try {
      return await work();
    } finally {
      this.release();
    }
  }

  stats(): ScanShareStats {
    return { slots: this.options.slots, inUse: this.inUse, waiting: this.waitingCount, shed: this.shed };
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
