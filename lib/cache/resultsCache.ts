import { hash } from 'node:crypto';
import { LRUCache } from 'lru-cache';

/** A response as stored: serialised once, served as bytes on every hit. */
export interface CachedResponse {
  status: number;
  body: Buffer;
  /** Headers that belong to the answer (a PostgREST read's Content-Range, media type, Preference-Applied). */
  headers?: Readonly<Record<string, string>>;
  /** Strong validator derived from the bytes. */
  etag: string;
  ttlSeconds: number;
}

export interface CacheStats {
  hits: number;
  misses: number;
  coalesced: number;
  evictions: number;
  invalidations: number;
  entries: number;
  bytes: number;
}

export type CacheOutcome = 'HIT' | 'MISS' | 'COALESCED' | 'BYPASS';

export interface ResultsCacheOptions {
  maxEntries: number;
  maxBytes: number;
  /** A clock for TTLs; tests drive a fake one instead of sleeping. */
  now?: () => number;
}

/**
 * What an entry holds besides its body's bytes, measured (test/cache/cacheMemory.test.ts): the
 * Buffer and ArrayBuffer objects around the body, the stored response, the LRU's slots, about
 * 500-560 bytes of V8 heap. Counting only the body, the old 64 bytes, undercounted a point lookup's
 * entry (a 380-byte body) by half.
 */
export const ENTRY_OVERHEAD_BYTES = 560;

/** What an entry really takes against `maxBytes`: body, key (as UTF-16: an upper bound), ETag, overhead. */
export const entrySize = (value: CachedResponse, key: string) =>
  value.body.length + key.length * 2 + value.etag.length + ENTRY_OVERHEAD_BYTES + (value.headers ? JSON.stringify(value.headers).length * 2 : 0);

export function etagOf(body: Buffer): string {
  // The one-shot hash: no Hash object per response.
  return `"${hash('sha1', body, 'base64url')}"`;
}

/**
 * Normalised key: the operation plus its validated input with keys sorted, so the order of query
 * parameters (and defaults given explicitly or not) never splits one result into two entries.
 * Every member ends in `&`, so the prefix `getTrip?trip_id=42&` never matches trip 420; an
 * optional scope (a user) comes last, so invalidation by prefix reaches every scope.
 */
export function cacheKey(operationId: string, input: { params: object; query: object }, scope = ''): string {
  let key = `${operationId}?`;
  for (const source of [input.params, input.query] as Array<Record<string, unknown>>) {
    for (const name of Object.keys(source).sort()) key += `${name}=${JSON.stringify(source[name])}&`;
  }
  return scope ? `${key}@${scope}` : key;
}

/**
 * Turns a write's declared invalidations (`getTrip?trip_id={trip_id}&`, `listTripPages?`) into
 * key prefixes, filling in the write's own validated parameters.
 */
export function invalidationPrefixes(templates: readonly string[], params: Record<string, unknown>): string[] {
  return templates.map((template) => template.replace(/\{([A-Za-z0-9_]+)\}/g, (_m, name: string) => JSON.stringify(params[name])));
}

/**
 * LRU results cache bounded by entries and bytes, with per-entry TTL, request coalescing and
 * invalidation by key prefix. A load that started before an invalidation never stores its
 * (possibly stale) result, and later requests do not join it.
 */
export class ResultsCache {
  private readonly lru: LRUCache<string, CachedResponse>;
  /** Loads under way; `stale` is set when a write invalidates the key while its load runs. */
  private readonly inflight = new Map<string, { promise: Promise<CachedResponse>; stale: boolean }>();
  private counters = { hits: 0, misses: 0, coalesced: 0, evictions: 0, invalidations: 0 };

  constructor(options: ResultsCacheOptions) {
    this.lru = new LRUCache<string, CachedResponse>({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      sizeCalculation: entrySize,
      ttlAutopurge: false,
      ...(options.now ? { perf: { now: options.now }, ttlResolution: 0 } : {}),
      dispose: (_value, _key, reason) => {
        if (reason === 'evict') this.counters.evictions++;
      },
    });
  }

  /**
   * The stored response for `key`, or the result of `load` (run once however many callers miss
   * at the same time). Failures are not stored, and each waiter gets the failure only for its
   * own request. `refresh` skips the stored entry and replaces it (Cache-Control: no-cache).
   */
  async getOrLoad(
    key: string,
    ttlSeconds: number,
    load: () => Promise<{ status: number; body: Buffer; headers?: Readonly<Record<string, string>> }>,
    refresh = false,
  ): Promise<{ response: CachedResponse; outcome: CacheOutcome }> {
    if (!refresh) {
      const stored = this.lru.get(key);
      if (stored) {
        this.counters.hits++;
        return { response: stored, outcome: 'HIT' };
      }
      const pending = this.inflight.get(key);
      if (pending) {
        this.counters.coalesced++;
        return { response: await pending.promise, outcome: 'COALESCED' };
      }
    }
    this.counters.misses++;
    const flight = { promise: undefined as unknown as Promise<CachedResponse>, stale: false };
    const promise = (async () => {
      const { status, body, headers } = await load();
      const response: CachedResponse = { status, body, etag: etagOf(body), ttlSeconds, ...(headers ? { headers } : {}) };
      // Only successes (a whole answer, or a counted page of one) are kept, and only if no write invalidated this key meanwhile.
      if ((status === 200 || status === 206) && !flight.stale) this.lru.set(key, response, { ttl: ttlSeconds * 1000 });
      return response;
    })();
    flight.promise = promise;
    this.inflight.set(key, flight);
    try {
      return { response: await promise, outcome: refresh ? 'BYPASS' : 'MISS' };
    } finally {
      if (this.inflight.get(key)?.promise === promise) this.inflight.delete(key);
    }
  }

  /** Evicts every entry whose key starts with one of `prefixes`; returns how many went. */
  invalidate(prefixes: readonly string[]): number {
    this.counters.invalidations++;
    for (const [key, flight] of [...this.inflight]) {
      if (prefixes.some((p) => key.startsWith(p))) {
        flight.stale = true;
        this.inflight.delete(key); // later readers start a fresh load instead of joining this one
      }
    }
    let removed = 0;
    for (const key of [...this.lru.keys()]) {
      if (prefixes.some((p) => key.startsWith(p))) {
        this.lru.delete(key);
        removed++;
      }
    }
    return removed;
  }

  clear(): void {
    for (const flight of this.inflight.values()) flight.stale = true;
    this.inflight.clear();
    this.lru.clear();
  }

  stats(): CacheStats {
    return { ...this.counters, entries: this.lru.size, bytes: this.lru.calculatedSize };
  }
}
