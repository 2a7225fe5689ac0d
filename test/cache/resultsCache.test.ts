import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cacheKey, invalidationPrefixes, ResultsCache } from '../../lib/cache/resultsCache.ts';

const json = (value: unknown) => ({ status: 200, body: Buffer.from(JSON.stringify(value)) });

function clock() {
  let now = 1_000_000;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

test('hit after miss, expiry after the TTL on a controllable clock', async () => {
  const time = clock();
  const cache = new ResultsCache({ maxEntries: 10, maxBytes: 1_000_000, now: time.now });
  let loads = 0;
  const load = async () => json({ n: ++loads });
  assert.equal((await cache.getOrLoad('k', 30, load)).outcome, 'MISS');
  const hit = await cache.getOrLoad('k', 30, load);
  assert.equal(hit.outcome, 'HIT');
  assert.equal(hit.response.body.toString(), '{"n":1}');
  time.advance(29_999);
  assert.equal((await cache.getOrLoad('k', 30, load)).outcome, 'HIT');
  time.advance(2);
  const expired = await cache.getOrLoad('k', 30, load);
  assert.equal(expired.outcome, 'MISS');
  assert.equal(expired.response.body.toString(), '{"n":2}');
  assert.deepEqual({ hits: cache.stats().hits, misses: cache.stats().misses }, { hits: 2, misses: 2 });
});

test('keys are normalised: parameter order and explicit defaults do not split entries', () => {
  const a = cacheKey('listTripPages', { params: {}, query: { page: 1, page_size: 10, include_count: true } });
  const b = cacheKey('listTripPages', { params: {}, query: { include_count: true, page_size: 10, page: 1 } });
  assert.equal(a, b);
  assert.notEqual(cacheKey('getTrip', { params: { trip_id: 42 }, query: {} }), cacheKey('getTrip', { params: { trip_id: 420 }, query: {} }));
  const [one] = invalidationPrefixes(['getTrip?trip_id={trip_id}&'], { trip_id: 42 });
  assert.ok(cacheKey('getTrip', { params: { trip_id: 42 }, query: {} }).startsWith(one!));
  assert.ok(!cacheKey('getTrip', { params: { trip_id: 420 }, query: {} }).startsWith(one!));
  assert.ok(cacheKey('getTrip', { params: { trip_id: 42 }, query: {} }, 'alice@example.com').startsWith(one!), 'scoped keys are invalidated too');
});

test('concurrent misses run one load and share it', async () => {
  const cache = new ResultsCache({ maxEntries: 10, maxBytes: 1_000_000 });
  let loads = 0;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const load = async () => {
    loads++;
    await gate;
    return json({ ok: true });
  };
  const waiters = Array.from({ length: 20 }, () => cache.getOrLoad('k', 10, load));
  release();
  const results = await Promise.all(waiters);
  assert.equal(loads, 1);
  assert.equal(results.filter((r) => r.outcome === 'MISS').length, 1);
  assert.equal(results.filter((r) => r.outcome === 'COALESCED').length, 19);
  assert.equal(cache.stats().coalesced, 19);
});

test('a failed load is not cached; its waiters fail with it, the next request retries', async () => {
  const cache = new ResultsCache({ maxEntries: 10, maxBytes: 1_000_000 });
  let calls = 0;
  const failing = async () => {
    calls++;
    await new Promise((r) => setImmediate(r));
    throw new Error('database down');
  };
  const results = await Promise.allSettled([cache.getOrLoad('k', 10, failing), cache.getOrLoad('k', 10, failing)]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['rejected', 'rejected'],
  );
  assert.equal(calls, 1);
  assert.equal(cache.stats().entries, 0);
  const recovered = await cache.getOrLoad('k', 10, async () => json({ back: true }));
  assert.equal(recovered.outcome, 'MISS');
  assert.equal(recovered.response.body.toString(), '{"back":true}');
});

test('an invalidation during a load keeps that load from storing its stale result', async () => {
  const cache = new ResultsCache({ maxEntries: 10, maxBytes: 1_000_000 });
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const slow = cache.getOrLoad('getTrip?trip_id=1&', 10, async () => {
    await gate;
    return json({ vendor: 'old' });
  });
  cache.invalidate(['getTrip?trip_id=1&']);
  const fresh = cache.getOrLoad('getTrip?trip_id=1&', 10, async () => json({ vendor: 'new' }));
  release();
  assert.equal((await slow).response.body.toString(), '{"vendor":"old"}');
  assert.equal((await fresh).outcome, 'MISS', 'a read after the write does not join the stale load');
  const after = await cache.getOrLoad('getTrip?trip_id=1&', 10, async () => json({ vendor: 'unexpected' }));
  assert.equal(after.outcome, 'HIT');
  assert.equal(after.response.body.toString(), '{"vendor":"new"}');
});

test('the byte bound is respected, evicting least recently used entries', async () => {
  const cache = new ResultsCache({ maxEntries: 1000, maxBytes: 10_000 });
  const body = 'x'.repeat(1000);
  for (let i = 0; i < 50; i++) await cache.getOrLoad(`k${i}`, 60, async () => json(body));
  const stats = cache.stats();
  assert.ok(stats.bytes <= 10_000, `bytes ${stats.bytes}`);
  assert.ok(stats.entries < 50 && stats.entries >= 5, `entries ${stats.entries}`);
  assert.ok(stats.evictions > 0);
  assert.equal((await cache.getOrLoad('k49', 60, async () => json('reloaded'))).outcome, 'HIT', 'the newest entry stays');
  assert.equal((await cache.getOrLoad('k0', 60, async () => json('reloaded'))).outcome, 'MISS', 'the oldest went first');
});

test('the entry bound is respected', async () => {
  const cache = new ResultsCache({ maxEntries: 3, maxBytes: 1_000_000 });
  for (let i = 0; i < 10; i++) await cache.getOrLoad(`k${i}`, 60, async () => json(i));
  assert.equal(cache.stats().entries, 3);
});
