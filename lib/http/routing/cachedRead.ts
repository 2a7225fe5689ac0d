import { cacheKey, etagOf, type CacheOutcome } from '../../cache/resultsCache.ts';
import type { Context } from '../serviceContext.ts';
import { tracing } from '../../telemetry/tracing.ts';
import type { VerifiedUser } from '../../userAccess/userAccess.ts';
import { headerValue, type NeutralRequest, type NeutralResponse } from '../../ground/neutralRequest.ts';
import type { Admission, Requester } from './admission.ts';
import { cacheStatus } from './cacheStatus.ts';
import type { CompiledOperation } from './compiledOperation.ts';
import type { ValidatedInput } from './inputValidator.ts';
import { JSON_TYPE, serializeBody } from './responses.ts';
import type { RunOperation } from './runOperation.ts';

export interface CachedReadOptions {
  run: RunOperation;
  /** The cache scope of a user's results (see RouterOptions.cacheScope). */
  cacheScope: (user: VerifiedUser) => string;
  /** The header that tells users apart (AUTH_MODE's), for `Vary` on per-user answers. */
  identityHeader: string | undefined;
  admission: Admission;
}

export type CachedRead = (
  request: NeutralRequest,
  operation: CompiledOperation,
  input: ValidatedInput,
  user: VerifiedUser | undefined,
  who: Requester,
) => Promise<{ response: NeutralResponse; cache?: CacheOutcome }>;

/** RFC 9110: If-None-Match is a list of entity tags, or `*`; weak comparison. */
function ifNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

/**
 * A body the cache will keep, in memory of its own. A small Buffer.from() is a slice of a shared
 * 8 KB pool slab, and one slice kept in the cache keeps its whole slab alive: 5,000 cached trips
 * (1.9 MB counted against CACHE_MAX_BYTES) pinned 6.4 MB of slabs.
 */
function ownBytes(text: string): Buffer {
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text));
  bytes.write(text);
  return bytes;
}

/**
 * Cacheable reads: served from the results cache as stored bytes, with a strong ETag, 304 for a
 * matching If-None-Match, and `Cache-Control: no-cache` from the client forcing a fresh query.
 * With the cache off, the same read still gets its ETag and 304.
 */
export function createCachedRead(ctx: Context, { run, cacheScope, identityHeader, admission }: CachedReadOptions): CachedRead {
  return async function cachedRead(request, operation, input, user, who) {
    const runAndStore = async (): Promise<{ status: number; body: Buffer; headers?: Record<string, string> }> => {
      const result = await run(operation, input, user, who);
      const stored = { status: result.status ?? 200, body: ownBytes(serializeBody(result.body)) };
      return result.headers ? { ...stored, headers: result.headers } : stored;
    };
    // With telemetry on, filling the cache is a span of its own (a hit is only the server span's cache outcome).
    const spans = tracing();
    const load = spans.enabled ? () => spans.inSpan('cache.load', { 'cache.operation': operation.operationId }, runAndStore) : runAndStore;
    let status: number;
    let body: Buffer;
    let etag: string;
    let answerHeaders: Readonly<Record<string, string>> | undefined;
    let cache: CacheOutcome | undefined;
    const headers: Record<string, string> = { 'content-type': JSON_TYPE };
    if (ctx.cache) {
      const refresh = admission.refreshPolicy(request);
      const key = cacheKey(operation.operationId, input, user ? cacheScope(user) : '');
      // Only a request that will load counts against its caller's limits: a hit, or a share of a load under way, is free.
      const loads = refresh === true || ctx.cache.wouldLoad(key, refresh);
      const end = loads ? admission.enter(operation, who.key) : undefined;
      // Sharing another request's load is waiting, not work: the turn goes to others meanwhile.
      if (!loads && ctx.cache.loading(key)) who.waiting();
      let loaded: Awaited<ReturnType<typeof ctx.cache.getOrLoad>>;
      try {
        loaded = await ctx.cache.getOrLoad(key, operation.cacheTtlSeconds, load, refresh);
      } finally {
        end?.();
      }
      const { response, outcome } = loaded;
      ({ status, body, etag, headers: answerHeaders } = response);
      cache = outcome;
      const age = outcome === 'HIT' ? ctx.cache.ageSeconds(response) : 0;
      headers['cache-control'] = `private, max-age=${operation.cacheTtlSeconds}`;
      headers['x-cache'] = outcome === 'HIT' || outcome === 'COALESCED' ? 'HIT' : 'MISS';
      headers.age = String(age);
      headers['cache-status'] = cacheStatus(outcome, Boolean(refresh), operation.cacheTtlSeconds - age);
    } else {
      const end = admission.enter(operation, who.key);
      try {
        ({ status, body, headers: answerHeaders } = await load());
      } finally {
        end?.();
      }
      etag = etagOf(body);
      headers['cache-control'] = 'no-cache';
    }
    // The handler's own headers (a PostgREST read's Content-Range and media type) travel with the stored body.
    if (answerHeaders) Object.assign(headers, answerHeaders);
    headers.etag = etag;
    // Per-user answers: a browser cache must not hand one user's answer to the next on the same machine.
    if (user && identityHeader) headers.vary = headers.vary ? `${headers.vary}, ${identityHeader}` : identityHeader;
    if (ifNoneMatch(headerValue(request.headers, 'if-none-match'), etag)) return { cache, response: { status: 304, headers, body: undefined } };
    return { cache, response: { status, headers, body } };
  };
}
