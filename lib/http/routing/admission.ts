import { CallerLimits } from '../../admission/callerLimits.ts';
import { clientAddress, trustedProxies } from '../../admission/clientAddress.ts';
import { FairQueue } from '../../admission/fairQueue.ts';
import type { Caller } from '../../auth/caller.ts';
import type { RefreshPolicy } from '../../cache/resultsCache.ts';
import type { Context } from '../serviceContext.ts';
import { headerValue, type NeutralRequest } from '../../ground/neutralRequest.ts';
import type { CompiledOperation } from './compiledOperation.ts';

/** Probes and the service's own description: never limited, never shed (they use no scan share either). */
const NEVER_LIMITED = new Set(['getHealth', 'getReadiness', 'getServiceInfo']);

/** `max-age=N` in a request's Cache-Control (RFC 9111 §5.2.1.1), `no-cache` (§5.2.1.4) as 0. */
const MAX_AGE = /(?:^|,)\s*max-age\s*=\s*"?(\d+)"?\s*(?:,|$)/i;
const NO_CACHE = /(?:^|,)\s*no-cache\s*(?:,|$)/i;

/** Who a request is for the limits, and how it gives up its turn when it starts waiting on others' work. */
export interface Requester {
  /** The caller's key (Admission.callerKey). */
  key: string;
  /**
   * The request is about to wait (on the database, or on a load another request started): it gives
   * its turn back, so waiting never keeps another caller's requests from running. Turns meter the
   * service's own CPU (parsing, checks, cached answers), not the database's, which the scanning
   * share, the pool's wait budget and the per-caller limits meter.
   */
  waiting(): void;
}

/**
 * The router's side of fair shares (lib/admission/ holds the limits themselves): who the caller is,
 * whether a request's database work is admitted, and how a forced refresh is served.
 */
export interface Admission {
  /** The key limits are kept under: `user:<verified identity>`, else `addr:<client address>`. */
  callerKey(request: NeutralRequest, caller: Caller | undefined): string;
  /**
   * Admits the database work of one request (throws TooManyRequests), or undefined when the
   * operation is never limited or protection is off. Call the returned function when it ends.
   */
  enter(operation: CompiledOperation, callerKey: string): (() => void) | undefined;
  /**
   * Waits for the request's fair turn at the service (lib/admission/fairQueue.ts), or undefined when
   * it needs none. Call the returned function when the request ends.
   */
  turn(operation: CompiledOperation, callerKey: string): Promise<() => void> | (() => void) | undefined;
  /** What a request's Cache-Control asks of the results cache: false (nothing), or how fresh. */
  refreshPolicy(request: NeutralRequest): false | true | RefreshPolicy;
}

export function createAdmission(ctx: Context): Admission {
  const settings = ctx.config.admission;
  const proxies = trustedProxies(settings.trustedProxies);
  const limits = settings.enabled
    ? new CallerLimits({ maxInFlight: settings.callerMaxInFlight, ratePerSecond: settings.callerRatePerSecond, burst: settings.callerBurst })
    : undefined;
  const minIntervalMs = settings.refreshIntervalSeconds * 1000;
  const turns = settings.enabled ? new FairQueue({ maxActive: settings.maxActive, waitMs: settings.queueWaitMs }) : undefined;
  return {
    callerKey(request, caller) {
      if (caller) return `user:${caller.email.toLowerCase()}`;
      const address = clientAddress(request.remoteAddress, headerValue(request.headers, 'x-forwarded-for'), proxies);
      return `addr:${address ?? 'unknown'}`;
    },
    enter(operation, callerKey) {
      if (!limits || NEVER_LIMITED.has(operation.operationId)) return undefined;
      return limits.enter(callerKey, operation.readFrom === 'replica');
    },
    turn(operation, callerKey) {
      if (!turns || NEVER_LIMITED.has(operation.operationId)) return undefined;
      return turns.enter(callerKey);
    },
    refreshPolicy(request) {
      const header = headerValue(request.headers, 'cache-control');
      if (!header) return false;
      const noCache = NO_CACHE.test(header);
      const maxAge = noCache ? 0 : Number(MAX_AGE.exec(header)?.[1] ?? Number.NaN);
      if (Number.isNaN(maxAge)) return false;
      // Protection off: the old rule, every no-cache request loads on its own.
      if (!settings.enabled) return noCache;
      return { maxAgeMs: maxAge * 1000, minIntervalMs };
    },
  };
}

/** Probes and the service's own description: never limited, and never make a caller count as active. */
export function isProbe(operation: CompiledOperation): boolean {
  return NEVER_LIMITED.has(operation.operationId);
}

/** Scanning reads (declared `x-read-from: replica`) hold a share of the pool; see lib/db/scanShare.ts. */
export function isScan(operation: CompiledOperation): boolean {
  return operation.readFrom === 'replica' && !NEVER_LIMITED.has(operation.operationId);
}
