import { Overloaded } from '../errors.ts';

export interface FairQueueOptions {
  /** Requests served at once before the others wait their turn (ADMISSION_MAX_ACTIVE). */
  maxActive: number;
  /** The longest a request waits for its turn before 503 (ADMISSION_QUEUE_WAIT_MS). */
  waitMs: number;
}

export interface FairQueueStats {
  active: number;
  waiting: number;
  shed: number;
}

interface Waiter {
  caller: string;
  grant(): void;
  timer: NodeJS.Timeout;
}

interface CallerState {
  active: number;
  waiters: Waiter[];
}

/**
 * Fair turns at the whole service, cache hits included: up to `maxActive` requests run at once,
 * whoever sends them (a lone caller can use it all). Past that, requests wait, and each freed place
 * goes to the waiting caller with the fewest requests running (max-min fairness), so a caller
 * holding 32 connections open cannot crowd out one holding 4. Waiting costs no CPU, which is what
 * keeps a flood of cheap answers (a cache hit per request) from taking the event loop: a
 * closed-loop client sends its next request only when the last is answered. A request gives its
 * turn back as soon as it waits on the database (the router's Requester.waiting), so turns meter
 * the service's CPU and never limit how many statements run. A request that waits longer than
 * `waitMs` for its turn is shed with 503 and Retry-After.
 */
export class FairQueue {
  private active = 0;
  private waiting = 0;
  private shed = 0;
  private readonly callers = new Map<string, CallerState>();

  constructor(private readonly options: FairQueueOptions) {}

  /** Resolves with the function that ends the request once it may run; rejects with Overloaded. */
  enter(caller: string): Promise<() => void> | (() => void) {
    const state = this.state(caller);
    if (this.active < this.options.maxActive && this.waiting === 0) return this.admit(state, caller);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        caller,
        grant: () => {
          clearTimeout(waiter.timer);
          resolve(this.admit(state, caller));
        },
        timer: setTimeout(() => {
          state.waiters.splice(state.waiters.indexOf(waiter), 1);
          this.waiting--;
          this.shed++;
          this.forget(caller, state);
          reject(new Overloaded(`The service is busy: this request waited ${this.options.waitMs} ms for its turn; retry shortly`, 'queue-wait'));
        }, this.options.waitMs),
      };
      state.waiters.push(waiter);
      this.waiting++;
    });
  }

  stats(): FairQueueStats {
    return { active: this.active, waiting: this.waiting, shed: this.shed };
  }

  private state(caller: string): CallerState {
    let state = this.callers.get(caller);
    if (!state) {
      state = { active: 0, waiters: [] };
      this.callers.set(caller, state);
    }
    return state;
  }

  private admit(state: CallerState, caller: string): () => void {
    this.active++;
    state.active++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.active--;
      state.active--;
      this.forget(caller, state);
      this.next();
    };
  }

  /** A caller with nothing running and nothing waiting leaves the map (bounded memory). */
  private forget(caller: string, state: CallerState): void {
    if (state.active === 0 && state.waiters.length === 0) this.callers.delete(caller);
  }

  /** The freed place goes to the first waiter of the caller running the fewest requests. */
  private next(): void {
    if (this.waiting === 0 || this.active >= this.options.maxActive) return;
    let chosen: CallerState | undefined;
    for (const state of this.callers.values()) {
      if (state.waiters.length > 0 && (!chosen || state.active < chosen.active)) chosen = state;
    }
    if (!chosen) return;
    const waiter = chosen.waiters.shift() as Waiter;
    this.waiting--;
    // Rotate: among equals, the caller served now goes behind the others next time.
    this.callers.delete(waiter.caller);
    this.callers.set(waiter.caller, chosen);
    waiter.grant();
  }
}
