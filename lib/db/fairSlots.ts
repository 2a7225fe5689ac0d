import { Overloaded } from '../errors.ts';

interface Waiter {
  grant(): void;
  timer: NodeJS.Timeout;
}

/** The most slots `caller` may hold at once now (asked again whenever a slot could go to them). */
export type CallerCap = (caller: string) => number;

/**
 * A semaphore of `slots` whose waiters take turns by caller: a freed slot goes to the next waiting
 * caller in rotation, one request each, so one caller's queue cannot keep another's waiting behind
 * it, and a caller may be held to fewer slots than there are (`capOf`). Waiting is bounded: past `waitMs` the request is shed with Overloaded (503, Retry-After) at
 * once, rather than queueing for the pool's DB_POOL_TIMEOUT.
 */
export class FairSlots {
  private inUse = 0;
  private waitingCount = 0;
  private shed = 0;
  /** Waiters by caller; a Map keeps insertion order, so moving a caller to the end makes a rotation. */
  private readonly queues = new Map<string, Waiter[]>();
  /** Slots held by each caller holding any. */
  private readonly held = new Map<string, number>();

  constructor(
    readonly slots: number,
    private readonly waitMs: number,
    /** What the slots are for, in the refusal's message ("heavy scanning reads"). */
    private readonly holders: string,
    private readonly capOf: CallerCap = () => Number.POSITIVE_INFINITY,
  ) {}

  /**
   * Runs `work` holding one slot, within its caller's cap; throws Overloaded when none comes free
   * within the wait. `onWait` is told when it has to wait.
   */
  async run<T>(caller: string, work: () => Promise<T>, onWait?: () => void): Promise<T> {
    // A free slot with callers still waiting means each of them is at its cap (slots are handed on at once).
    if (this.inUse < this.slots && this.heldBy(caller) < this.capOf(caller)) this.take(caller);
    else {
      onWait?.();
      await this.wait(caller);
    }
    try {
      return await work();
    } finally {
      this.release(caller);
    }
  }

  /** Slots `caller` holds now. */
  heldBy(caller: string): number {
    return this.held.get(caller) ?? 0;
  }

  private take(caller: string): void {
    this.inUse++;
    this.held.set(caller, this.heldBy(caller) + 1);
  }

  stats(): { slots: number; inUse: number; waiting: number; shed: number } {
    return { slots: this.slots, inUse: this.inUse, waiting: this.waitingCount, shed: this.shed };
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
              `The database is busy with ${this.holders}: none of the ${this.slots} connections they may hold came free within ${this.waitMs} ms; retry shortly`,
              'scan-share',
            ),
          );
        }, this.waitMs),
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

  /** `caller`'s slot is freed, and handed on (see grant). */
  private release(caller: string): void {
    const left = this.heldBy(caller) - 1;
    if (left > 0) this.held.set(caller, left);
    else this.held.delete(caller);
    this.inUse--;
    this.grant();
  }

  /**
   * Free slots go to the waiting callers in turn, each below its cap. Call it when a cap may have
   * risen outside (a caller's slot of another kind came free).
   */
  grant(): void {
    while (this.inUse < this.slots && this.grantNext());
  }

  private grantNext(): boolean {
    for (const [next, queue] of this.queues) {
      if (this.heldBy(next) >= this.capOf(next)) continue;
      const waiter = queue.shift() as Waiter;
      this.waitingCount--;
      this.queues.delete(next);
      if (queue.length > 0) this.queues.set(next, queue); // to the back of the rotation
      this.take(next);
      waiter.grant();
      return true;
    }
    return false;
  }
}
