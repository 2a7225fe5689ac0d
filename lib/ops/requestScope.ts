import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The request a piece of work belongs to, carried through every await without threading it
 * through handler signatures: the logger's mixin adds `reqId` to every line logged while serving
 * a request (a handler's warning, a token refresh a 28P01 triggered), not just the request line.
 */
const scope = new AsyncLocalStorage<{ reqId: string }>();

export function inRequestScope<T>(reqId: string, work: () => T): T {
  return scope.run({ reqId }, work);
}

/** Fields for the logger's mixin: `{ reqId }` inside a request, nothing outside. */
export function requestLogFields(): { reqId?: string } {
  return scope.getStore() ?? {};
}

/**
 * For listeners on long-lived resources (a pooled connection's socket remembers the request that
 * opened it): run them outside any request, so their lines are not attributed to a stale one.
 */
export function outsideRequestScope<A extends unknown[]>(listener: (...args: A) => void): (...args: A) => void {
  return (...args: A) => scope.exit(() => listener(...args));
}
