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
  /** When the load that produced it finished (the cache's clock, ms): its age is measured from here. */
  storedAt: number;
  /** How long that load took (ms): forced refreshes of an expensive key are spaced further apart. */
  loadMs: number;
}

/**
 * The interval between forced refreshes' loads is also at least this many times the last load's
 * duration: one key's refreshes then keep one connection busy at most half the time, however slow
 * the query, and a refresh waits no longer than a load takes. (Four, measured: a refresh of the
 * million-row analytics waited longer than the benchmark's rounds, so the flooder got nothing.)
 */
const REFRESH_LOAD_FACTOR = 1;

/**
 * How a request that asks for a fresh answer (`Cache-Control: no-cache` or `max-age=N`) is served;
 * see docs/api.md ("Forced refreshes") for which RFC 9111 directive each rule follows.
 */
export interface RefreshPolicy {
  /** The oldest stored answer the request accepts (RFC 9111 §5.2.1.1 `max-age`; 0 for `no-cache`). */
  maxAgeMs: number;
  /**
   * Forced refreshes within this long of the last load wait for the next load, due when it has passed
   * (CACHE_REFRESH_INTERVAL): whoever sends them, refreshes of one key cost the database at most one
   * load per interval. 0 = off.
   */
  minIntervalMs: number;
}

export interface CacheStats {
  hits: number;
  misses: number;
  coalesced: number;
  /** Forced refreshes answered without a load of their own (joined a load under way, or within the refresh interval). */
  refreshesSpared: number;
  evictions: number;
  invalidations: number;
  entries: number;
  bytes: number;
}

/**
 * HIT: stored and fresh; MISS: loaded; COALESCED: shared a load under way (or, for a forced refresh
 * within the refresh interval, the next one); BYPASS: a forced refresh that loaded.
 */
export type CacheOutcome = 'HIT' | 'MISS' | 'COALESCED' | 'BYPASS';

export interface ResultsCacheOptions {
  maxEntries: number;
  maxBytes: number;
  /** A clock for TTLs; tests drive a fake one instead of sleeping. */
  now?: () => number;
}

/**
 * What an entry holds besides its body's bytes, measured (test/cache/cacheMemory.test.ts): the
 * Buffer and ArrayBuffer objects around the body, the stored response (with its answer headers and
 * its load's timing), the LRU's slots, about 680-700 bytes of V8 heap (560 before the timing and the
 * headers joined it). Counting only the body, the old 64 bytes, undercounted a point lookup's entry
 * (a 380-byte body) by half.
 */
const ENTRY_OVERHEAD_BYTES = 700;

/** What an entry really takes against `maxBytes`: body, key (as UTF-16: an upper bound), ETag, overhead. */
const entrySize = (value: CachedResponse, key: string) =>
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
  /** Forced refreshes' next loads, due when the interval since the last load has passed (scheduleLoad). */
  private readonly scheduled = new Map<string, Promise<CachedResponse>>();
  private counters = { hits: 0, misses: 0, coalesced: 0, refreshesSpared: 0, evictions: 0, invalidations: 0 };
  private readonly now: () => number;

  constructor(options: ResultsCacheOptions) {
    this.now = options.now ?? (() => performance.now());
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
   * own request. `refresh` (Cache-Control: no-cache, or a policy) skips a stored entry older than the
   * request accepts and replaces it; a load already under way is shared even then (it started no
   * earlier than the stored entry, and its answer is as fresh as one this request would start).
   */
  async getOrLoad(
    key: string,
    ttlSeconds: number,
    load: () => Promise<{ status: number; body: Buffer; headers?: Readonly<Record<string, string>> }>,
    refresh: boolean | RefreshPolicy = false,
  ): Promise<{ response: CachedResponse; outcome: CacheOutcome }> {
    // `true` is the plain rule (ADMISSION_ENABLED=false): every forced refresh loads on its own.
    if (refresh && refresh !== true) {
      const spared = this.refreshPlan(key, refresh);
      if (spared) {
        this.counters.refreshesSpared++;
        if (spared.plan === 'hit') return { response: spared.response, outcome: 'HIT' };
        const shared = spared.plan === 'join' ? spared.promise : this.scheduleLoad(key, spared.dueInMs, ttlSeconds, load);
        return { response: await shared, outcome: 'COALESCED' };
      }
    } else if (!refresh) {
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
      const started = this.now();
      const { status, body, headers } = await load();
      const storedAt = this.now();
      // One literal (no spread): every entry then shares one hidden class with its fields in-object.
      const response: CachedResponse = { status, body, headers, etag: etagOf(body), ttlSeconds, storedAt, loadMs: storedAt - started };
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

  /**
   * Whether a load for `key` would start now (no fresh entry, no load under way): the router admits
   * the caller's database work only then, so a hit or a shared load never counts against a limit.
   */
  wouldLoad(key: string, refresh: false | RefreshPolicy): boolean {
    if (refresh) return this.refreshPlan(key, refresh) === undefined;
    return !this.inflight.has(key) && !this.lru.has(key);
  }

  /** A load of `key` is under way (a request for it would share it). */
  loading(key: string): boolean {
    return this.inflight.has(key) || this.scheduled.has(key);
  }

  /** Age of a stored answer in whole seconds (RFC 9111 §5.1 `Age`). */
  ageSeconds(response: CachedResponse): number {
    return Math.max(0, Math.floor((this.now() - response.storedAt) / 1000));
  }

  /**
   * How a forced refresh of `key` is served without a load of its own: `join` a load under way (or
   * the one scheduled), a `hit` young enough for the request's max-age, or `wait` for the next load,
   * due once the interval since the last one has passed; undefined: it loads now.
   */
  private refreshPlan(
    key: string,
    policy: RefreshPolicy,
  ): { plan: 'join'; promise: Promise<CachedResponse> } | { plan: 'hit'; response: CachedResponse } | { plan: 'wait'; dueInMs: number } | undefined {
    const pending = this.inflight.get(key)?.promise ?? this.scheduled.get(key);
    if (pending) return { plan: 'join', promise: pending };
    const stored = this.lru.get(key);
    if (!stored) return undefined;
    const age = this.now() - stored.storedAt;
    if (age <= policy.maxAgeMs) return { plan: 'hit', response: stored };
    // An interval of 0 turns the spacing off altogether (every forced refresh loads).
    const interval = policy.minIntervalMs > 0 ? Math.max(policy.minIntervalMs, REFRESH_LOAD_FACTOR * stored.loadMs) : 0;
    return age < interval ? { plan: 'wait', dueInMs: interval - age } : undefined;
  }

  /**
   * The next load of `key`, started `dueInMs` from now and shared by every forced refresh that
   * arrives meanwhile: they get a fresh answer, and the database one load per interval. Waiting
   * holds a closed-loop client's connection, which is what slows a refresh flood down.
   */
  private scheduleLoad(key: string, dueInMs: number, ttlSeconds: number, load: () => Promise<{ status: number; body: Buffer }>): Promise<CachedResponse> {
    const next = new Promise<void>((resolve) => setTimeout(resolve, dueInMs)).then(async () => {
      // In the same tick as the load registers as under way: no refresh arriving between sees neither.
      this.scheduled.delete(key);
      return (await this.getOrLoad(key, ttlSeconds, load, { maxAgeMs: 0, minIntervalMs: 0 })).response;
    });
    this.scheduled.set(key, next);
    return next;
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
