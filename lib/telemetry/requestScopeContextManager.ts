import { ROOT_CONTEXT, type Context, type ContextManager } from '@opentelemetry/api';
import { scopedTelemetry, withScopedTelemetry } from '../ground/requestScope.ts';

/**
 * OpenTelemetry's active context, kept in the request scope's AsyncLocalStorage
 * (lib/ground/requestScope.ts) instead of a second one of its own (the SDK's
 * AsyncLocalStorageContextManager): each AsyncLocalStorage makes every promise and socket
 * callback of the process copy one more store, which more than doubled the cost of a traced
 * database read.
 */
export class RequestScopeContextManager implements ContextManager {
  active(): Context {
    return (scopedTelemetry() as Context | undefined) ?? ROOT_CONTEXT;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(context: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return withScopedTelemetry(context, () => fn.call(thisArg, ...args));
  }

  bind<T>(context: Context, target: T): T {
    if (typeof target !== 'function') return target;
    const manager = this;
    return function (this: unknown, ...args: unknown[]) {
      return manager.with(context, () => (target as (...a: unknown[]) => unknown).apply(this, args));
    } as T;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    return this;
  }
}
