import { LRUCache } from 'lru-cache';
import { TooManyRequests } from '../errors.ts';

export interface CallerLimitSettings {
  /** Requests of one caller that may use the database at once (CALLER_MAX_IN_FLIGHT); 0 = no bound. */
  maxInFlight: number;
  /** Token-bucket refill, requests per second (CALLER_RATE_PER_SECOND); 0 = no rate limit. */
  ratePerSecond: number;
  /** Token-bucket size: the burst a rested caller may send at once (CALLER_BURST). */
  burst: number;
  /** Callers whose state is kept; the least recently seen is forgotten first (bounded memory). */
  maxCallers?: number;
}

interface CallerState {
  tokens: number;
  /** performance.now() of the last refill. */
  at: number;
  inFlight: number;
}

/** Which per-caller limit refused a request: the problem's `limit` and the metric's `reason`. */
export type CallerLimit = 'caller-in-flight' | 'caller-rate';

const DEFAULT_MAX_CALLERS = 10_000;

/**
 * Per-caller admission: a bound on requests in flight and a token bucket (rate, burst). A caller
 * past either gets 429 at once, with `Retry-After` and the IETF RateLimit headers
 * (draft-ietf-httpapi-ratelimit-headers): `RateLimit-Policy` names both policies, `RateLimit` the one
 * that refused. State is per process (docs/operations.md says how processes compose).
 */
export class CallerLimits {
  private readonly callers: LRUCache<string, CallerState>;
  private readonly policyHeader: string;

  constructor(
    private readonly settings: CallerLimitSettings,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.callers = new LRUCache({ max: settings.maxCallers ?? DEFAULT_MAX_CALLERS });
    const policies: string[] = [];
    if (settings.ratePerSecond > 0) policies.push(`"rate";q=${settings.burst};w=${Math.max(1, Math.ceil(settings.burst / settings.ratePerSecond))}`);
    if (settings.maxInFlight > 0) policies.push(`"in-flight";q=${settings.maxInFlight};qu="concurrent-requests"`);
    this.policyHeader = policies.join(', ');
  }

  /**
   * Admits one request of `caller` that will use the database, or throws TooManyRequests. `rated`:
   * it also takes a token (scanning reads). The returned function ends it.
   */
  enter(caller: string, rated: boolean): () => void {
    const { maxInFlight, ratePerSecond, burst } = this.settings;
    const now = this.now();
    let state = this.callers.get(caller);
    if (!state) {
      state = { tokens: burst, at: now, inFlight: 0 };
      this.callers.set(caller, state);
    } else if (ratePerSecond > 0) {
      state.tokens = Math.min(burst, state.tokens + ((now - state.at) / 1000) * ratePerSecond);
      state.at = now;
    }
    if (maxInFlight > 0 && state.inFlight >= maxInFlight) {
      throw this.refusal('caller-in-flight', `More than ${maxInFlight} of this caller's requests are using the database at once`, 1, {
        ratelimit: `"in-flight";r=0;t=1`,
      });
    }
    if (rated && ratePerSecond > 0) {
      if (state.tokens < 1) {
        const wait = Math.max(1, Math.ceil((1 - state.tokens) / ratePerSecond));
        throw this.refusal('caller-rate', `This caller sent more than ${ratePerSecond} database requests a second (bursts of ${burst})`, wait, {
          ratelimit: `"rate";r=0;t=${wait}`,
        });
      }
      state.tokens -= 1;
    }
    state.inFlight++;
    // The state object itself, not a lookup: a caller forgotten meanwhile still gets its count back.
    const held = state;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      held.inFlight--;
    };
  }

  private refusal(limit: CallerLimit, detail: string, retryAfterSeconds: number, headers: Record<string, string>): TooManyRequests {
    return new TooManyRequests(`${detail}; retry after ${retryAfterSeconds} s`, limit, {
      retryAfterSeconds,
      headers: { 'ratelimit-policy': this.policyHeader, ...headers },
    });
  }
}
