/**
 * CACHE_MAX_BYTES bounds what the cache's entries really take, not only their bodies: filled with
 * entries as the router stores them (a body in memory of its own, its ETag, a key), the V8 heap and
 * external memory they hold, measured after full collections, match what the cache counts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { cacheKey, ResultsCache } from '../../lib/cache/resultsCache.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** As the router stores a body: an ArrayBuffer of its own, not a slice of a shared slab. */
function ownBytes(text: string): Buffer {
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text));
  bytes.write(text);
  return bytes;
}

/** Stop when two readings agree within this (a few entries' worth), or after SETTLE_ROUNDS. */
const SETTLED_BYTES = 64 * 1024;
const SETTLE_ROUNDS = 20;

/**
 * The heap and external memory held once collections have settled. Read right after the previous
 * test, a synchronous gc() cannot free that test's cache yet: lru-cache's clock keeps a 1 ms timer
 * whose closure holds the cache (ttlResolution), so its entries (5 MB of point lookups) were
 * counted in `before` and freed during this test's fill, and 28 KB entries looked 18 KB (the
 * five-run series of issue 25). So collect, let timers and frees land, and read until two agree.
 */
async function held(): Promise<number> {
  let last = Number.POSITIVE_INFINITY;
  for (let round = 0; round < SETTLE_ROUNDS; round++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
    const { heapUsed, external } = process.memoryUsage();
    const now = heapUsed + external;
    if (Math.abs(now - last) < SETTLED_BYTES) return now;
    last = now;
  }
  return last;
}

for (const [what, bodyBytes, entries] of [
  ['a point lookup (380-byte bodies)', 380, 5000],
  ['a stream page (28 KB bodies)', 28_000, 500],
] as const) {
  test(`counted bytes match the memory really held, for ${what}`, async () => {
    const cache = new ResultsCache({ maxEntries: 5000, maxBytes: 1024 * 1024 * 1024 });
    const text = 'x'.repeat(bodyBytes);
    const before = await held();
    for (let i = 0; i < entries; i++) {
      const key = cacheKey('getTrip', { params: { trip_id: 100_000 + i }, query: {} });
      await cache.getOrLoad(key, 300, async () => ({ status: 200, body: ownBytes(text) }));
    }
    const real = ((await held()) - before) / entries;
    const counted = cache.stats().bytes / entries;
    assert.equal(cache.stats().entries, entries);
    // Counted may be a little above (keys count as UTF-16), never far below what is really held.
    assert.ok(counted >= real * 0.9 && counted <= real * 1.5, `counted ${counted.toFixed(0)} B per entry, really held ${real.toFixed(0)} B`);
  });
}
