import type { Context } from '../serviceContext.ts';
import { invalidationPrefixes } from '../../cache/resultsCache.ts';
import type { CompiledOperation } from './compiledOperation.ts';

/**
 * After a successful write: the cached reads it made stale (`x-cache-invalidates`) are fenced
 * from lagging replicas, dropped from this instance's cache and broadcast to the others.
 */
export function createWriteInvalidation(ctx: Context) {
  return async function invalidate(operation: CompiledOperation, params: Record<string, unknown>): Promise<void> {
    const prefixes = invalidationPrefixes(operation.invalidates, params);
    // Read-your-writes: before the caller hears of the write, the reads it made stale stop going to
    // a replica that has not replayed it.
    await ctx.readRouting?.fenceWrite(prefixes);
    ctx.cache?.invalidate(prefixes);
    if (ctx.publishInvalidation) {
      // The write has succeeded; a failed broadcast only delays other instances until their TTL.
      await ctx.publishInvalidation(prefixes).catch((err: unknown) => ctx.logger.warn({ err }, 'Could not broadcast a cache invalidation'));
    }
  };
}
