import { AsyncLocalStorage } from 'node:async_hooks';
import type { Channel } from 'node:diagnostics_channel';

/**
 * The request a piece of work belongs to, carried through every await without threading it
 * through handler signatures: the logger's mixin adds `reqId` to every line logged while serving
 * a request (a handler's warning, a token refresh a 28P01 triggered), not just the request line.
 *
 * With telemetry on, the same store also carries the active OpenTelemetry context
 * (lib/telemetry/requestScopeContextManager.ts): one AsyncLocalStorage, not two, because every
 * async resource the process creates (each promise, each socket callback) pays for each one.
 */
interface Scope {
  readonly reqId?: string;
  /** The OpenTelemetry context (opaque here). */
  readonly telemetry?: unknown;
}

const scope = new AsyncLocalStorage<Scope | undefined>();

export function inRequestScope<T>(reqId: string, work: () => T): T {
  const telemetry = scope.getStore()?.telemetry;
  return scope.run(telemetry === undefined ? { reqId } : { reqId, telemetry }, work);
}

/**
 * Fields for the logger's mixin: `{ reqId }` inside a request, nothing outside. A new object each
 * time: pino merges the line's own fields into what the mixin returns.
 */
export function requestLogFields(): { reqId?: string } {
  const reqId = scope.getStore()?.reqId;
  return reqId === undefined ? {} : { reqId };
}

/** The telemetry context of the work running now, if any. */
export function scopedTelemetry(): unknown {
  return scope.getStore()?.telemetry;
}

/** Runs `work` with `telemetry` as its telemetry context, keeping the request it belongs to. */
export function withScopedTelemetry<T>(telemetry: unknown, work: () => T): T {
  return scope.run({ reqId: scope.getStore()?.reqId, telemetry }, work);
}

/**
 * For listeners on long-lived resources (a pooled connection's socket remembers the request that
 * opened it): run them outside any request, so their lines are not attributed to a stale one.
 */
export function outsideRequestScope<A extends unknown[]>(listener: (...args: A) => void): (...args: A) => void {
  return (...args: A) => scope.exit(() => listener(...args));
}

/**
 * Makes the work a diagnostics channel publishes (a `tracingChannel`'s start, as lib/db/ and
 * lib/lakebase/ publish) run with the telemetry context `contextFor` returns, in the same request:
 * how telemetry makes a statement's span the parent of what the statement does meanwhile, without
 * the publishing layer knowing telemetry. `contextFor` returning undefined leaves the scope as it is.
 */
export function bindScopedTelemetry<M extends object>(channel: Channel<unknown, M>, contextFor: (message: M, current: unknown) => unknown): void {
  channel.bindStore(scope as AsyncLocalStorage<unknown>, (message) => {
    const current = scope.getStore();
    const telemetry = contextFor(message, current?.telemetry);
    return telemetry === undefined ? current : { reqId: current?.reqId, telemetry };
  });
}

export function unbindScopedTelemetry(channel: Channel<unknown, object>): void {
  channel.unbindStore(scope as AsyncLocalStorage<unknown>);
}
