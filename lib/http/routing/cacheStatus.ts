import type { CacheOutcome } from '../../cache/resultsCache.ts';

/** The cache's name in `Cache-Status` (RFC 9211 §2: an identifier for the cache). */
const CACHE_NAME = 'lakebase-api';

/**
 * RFC 9211 `Cache-Status` for a read the results cache took part in:
 * - `hit` (stored answer, fresh for the request; `ttl` = seconds of freshness left);
 * - `fwd=uri-miss` (nothing stored: loaded) or `fwd=request` (the request forced a load: no-cache,
 *   max-age), with `stored` when the answer was kept;
 * - `collapsed` when it shared a load another request had started, or (a forced refresh within
 *   CACHE_REFRESH_INTERVAL) the next one (RFC 9211 §2.5).
 */
export function cacheStatus(outcome: CacheOutcome, forced: boolean, ttlSeconds: number): string {
  switch (outcome) {
    case 'HIT':
      return `${CACHE_NAME}; hit; ttl=${ttlSeconds}`;
    case 'COALESCED':
      return `${CACHE_NAME}; fwd=${forced ? 'request' : 'uri-miss'}; collapsed`;
    case 'BYPASS':
      return `${CACHE_NAME}; fwd=request; stored`;
    default:
      return `${CACHE_NAME}; fwd=uri-miss; stored`;
  }
}
