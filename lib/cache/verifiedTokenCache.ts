import { hash } from 'node:crypto';
import { LRUCache } from 'lru-cache';

interface Verified<T> {
  value: T;
  /** Trust the answer no longer than this (a JWT's remaining lifetime); the cache's TTL caps it. */
  ttlMs?: number;
}

export interface VerifiedTokenCacheOptions<T> {
  max: number;
  ttlMs: number;
  /** The expensive check (a workspace call, a signature): throws when the token is not accepted. */
  verify: (token: string) => Promise<Verified<T>>;
}

/**
 * What a token was verified to be, kept by the token's SHA-256 (never the token itself), bounded in
 * entries and time. lru-cache's fetch shares one verification among concurrent requests with the
 * same token; a failed verification is not kept, so the next request checks again.
 */
export class VerifiedTokenCache<T extends object> {
  private readonly cache: LRUCache<string, T, string>;

  constructor(options: VerifiedTokenCacheOptions<T>) {
    this.cache = new LRUCache<string, T, string>({
      max: options.max,
      ttl: options.ttlMs,
      fetchMethod: async (_key, _stale, { context: token, options: entry }) => {
        const { value, ttlMs } = await options.verify(token);
        // ttl 0 would mean "forever" to lru-cache: an answer about to lapse is kept one millisecond.
        if (ttlMs !== undefined) entry.ttl = Math.max(1, Math.min(options.ttlMs, ttlMs));
        return value;
      },
    });
  }

  async get(token: string): Promise<T> {
    const key = hash('sha256', token, 'base64url'); // one-shot: no Hash object on the hot path
    // A fresh entry straight from the map (the hot path); a miss, or a verification under way, through fetch.
    const fresh = this.cache.get(key);
    if (fresh !== undefined) return fresh;
    const verified = await this.cache.fetch(key, { context: token });
    // fetchMethod returns a value or throws; lru-cache answers undefined only for a fetch aborted by a signal, never given here.
    if (verified === undefined) throw new Error('The token verification ended without an answer');
    return verified;
  }
}
