import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestDatabase, startTestService, type TestDatabase, type TestService } from '../support/testService.ts';

let database: TestDatabase;
let service: TestService;

before(async () => {
  database = await startTestDatabase(2000);
  // A view that bumps a sequence for every row it reads: a query counter on the database side.
  await database.admin.query(`
    CREATE SEQUENCE trip_reads;
    CREATE VIEW counted_trips AS SELECT * FROM nyc_train_synced WHERE nextval('trip_reads') > 0;
  `);
  // Every no-cache here must load: the refresh interval that spares repeated forced refreshes has its own suite (forcedRefresh.test.ts).
  service = await startTestService({ database, env: { CACHE_REFRESH_INTERVAL: '0' } });
});
after(async () => {
  await service?.close();
  await database?.stop();
});

async function databaseReads(): Promise<number> {
  const { rows } = await database.admin.query<{ value: string }>('SELECT CASE WHEN is_called THEN last_value ELSE 0 END::text AS value FROM trip_reads');
  return Number(rows[0]!.value);
}

describe('cacheable reads', () => {
  test('a cached body owns its memory: it does not pin a shared Buffer pool slab', async () => {
    await service.api.get('/trips/31');
    const hit = await service.router.handle({ method: 'GET', url: '/trips/31', headers: {} });
    assert.equal(hit.headers['x-cache'], 'HIT');
    const body = hit.body as Buffer;
    // A pooled Buffer.from() of a few hundred bytes is a slice of an 8 KB slab the cache would keep alive.
    assert.equal(body.buffer.byteLength, body.length, 'the stored bytes are the whole ArrayBuffer');
  });

  test('MISS then HIT with the same bytes, ETag and Cache-Control from the spec TTL', async () => {
    const first = await service.api.get('/trips/analytics');
    const second = await service.api.get('/trips/analytics');
    assert.equal(first.headers['x-cache'], 'MISS');
    assert.equal(second.headers['x-cache'], 'HIT');
    assert.equal(second.text, first.text);
    assert.match(first.headers.etag!, /^"[A-Za-z0-9_-]{27}"$/);
    assert.equal(second.headers.etag, first.headers.etag);
    assert.equal(first.headers['cache-control'], 'private, max-age=60');
  });

  test('If-None-Match with the current ETag gives 304 without a body', async () => {
    const first = await service.api.get('/trips/count');
    const revalidated = await service.api.get('/trips/count', { headers: { 'if-none-match': first.headers.etag! } });
    assert.equal(revalidated.status, 304);
    assert.equal(revalidated.text, '');
    assert.equal(revalidated.headers.etag, first.headers.etag);
    const other = await service.api.get('/trips/count', { headers: { 'if-none-match': '"something-else"' } });
    assert.equal(other.status, 200);
  });

  test('parameter order does not matter: the second spelling is a HIT', async () => {
    const a = await service.api.get('/trips/pages?page=3&page_size=10');
    const b = await service.api.get('/trips/pages?page_size=10&page=3');
    const c = await service.api.get('/trips/pages?page_size=10&page=3&include_count=true');
    assert.equal(a.headers['x-cache'], 'MISS');
    assert.equal(b.headers['x-cache'], 'HIT');
    assert.equal(c.headers['x-cache'], 'HIT', 'an explicit default is the same entry');
  });

  test('Cache-Control: no-cache from the client bypasses and refreshes the entry', async () => {
    await service.api.get('/trips/stream?cursor=5');
    await database.admin.query("UPDATE nyc_train_synced SET vendor_id = 'Z' WHERE id = 6");
    const stale = await service.api.get('/trips/stream?cursor=5');
    assert.equal(stale.headers['x-cache'], 'HIT');
    assert.notEqual(stale.body.trips[0].vendor_id, 'Z', 'a write behind the API is served stale until the TTL (documented)');
    const bypass = await service.api.get('/trips/stream?cursor=5', { headers: { 'cache-control': 'no-cache' } });
    assert.equal(bypass.headers['x-cache'], 'MISS');
    assert.equal(bypass.body.trips[0].vendor_id, 'Z');
    const refreshed = await service.api.get('/trips/stream?cursor=5');
    assert.equal(refreshed.headers['x-cache'], 'HIT');
    assert.equal(refreshed.body.trips[0].vendor_id, 'Z');
  });

  test('the sample is never cached', async () => {
    const res = await service.api.get('/trips/sample');
    assert.equal(res.headers['x-cache'], undefined);
    assert.equal(res.headers['cache-control'], 'no-store');
  });
});

describe('invalidation', () => {
  test('a vendor update is read back at once from the trip, pages, stream and analytics', async () => {
    const trip = await service.api.get('/trips/15');
    await service.api.get('/trips/pages?page=2&page_size=10');
    await service.api.get('/trips/stream?cursor=10&page_size=10');
    const analytics = await service.api.get('/trips/analytics', { headers: { 'cache-control': 'no-cache' } });
    const next = trip.body.vendor_id === '1' ? '2' : '1';
    assert.equal((await service.api.post('/trips/15/vendor', { vendor_id: next })).status, 200);

    const tripAfter = await service.api.get('/trips/15');
    assert.equal(tripAfter.headers['x-cache'], 'MISS');
    assert.equal(tripAfter.body.vendor_id, next);
    const page = await service.api.get('/trips/pages?page=2&page_size=10');
    assert.equal(page.body.trips.find((t: { id: number }) => t.id === 15).vendor_id, next);
    const stream = await service.api.get('/trips/stream?cursor=10&page_size=10');
    assert.equal(stream.body.trips.find((t: { id: number }) => t.id === 15).vendor_id, next);
    const analyticsAfter = await service.api.get('/trips/analytics');
    assert.equal(analyticsAfter.headers['x-cache'], 'MISS');
    const before = analytics.body.vendor_distribution;
    const now = analyticsAfter.body.vendor_distribution;
    assert.equal(now[next], before[next] + 1);
    assert.equal(now[trip.body.vendor_id], before[trip.body.vendor_id] - 1);
  });

  test('a failed write evicts nothing and errors are never cached', async () => {
    await service.api.get('/trips/16');
    const failed = await service.api.post('/trips/16/vendor', { vendor_id: '' });
    assert.equal(failed.status, 400);
    assert.equal((await service.api.get('/trips/16')).headers['x-cache'], 'HIT');
    assert.equal((await service.api.get('/trips/99999')).status, 404);
    const again = await service.api.get('/trips/99999');
    assert.equal(again.status, 404);
    assert.equal(again.headers['x-cache'], undefined);
  });
});

describe('coalescing', () => {
  test('N concurrent misses cost exactly one database query', async () => {
    const counted = await startTestService({ database, env: { DEFAULT_POSTGRES_TABLE: 'counted_trips', DB_POOL_SIZE: '4' } });
    try {
      const before = await databaseReads();
      const responses = await Promise.all(Array.from({ length: 25 }, () => counted.api.get('/trips/count')));
      const rowsRead = (await databaseReads()) - before;
      assert.ok(responses.every((r) => r.status === 200 && r.body.total_trips === 2000));
      assert.equal(rowsRead, 2000, `one scan of 2000 rows expected, the database read ${rowsRead} rows`);
      assert.equal(counted.ctx.cache!.stats().misses, 1);
      assert.equal(counted.ctx.cache!.stats().coalesced + counted.ctx.cache!.stats().hits, 24);
    } finally {
      await counted.close();
    }
  });

  test('control: without the cache the same burst costs one query per request', async () => {
    const uncached = await startTestService({ database, env: { DEFAULT_POSTGRES_TABLE: 'counted_trips', CACHE_ENABLED: 'false' } });
    try {
      const before = await databaseReads();
      const responses = await Promise.all(Array.from({ length: 5 }, () => uncached.api.get('/trips/count')));
      assert.equal((await databaseReads()) - before, 5 * 2000);
      assert.equal(responses[0]!.headers['x-cache'], undefined);
      assert.ok(responses[0]!.headers.etag, 'ETags still work without the cache');
      assert.equal(responses[0]!.headers['cache-control'], 'no-cache');
    } finally {
      await uncached.close();
    }
  });
});

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await check()) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('cross-instance invalidation with CACHE_INVALIDATION=notify', () => {
  test('a write through instance A is visible on instance B, and B keeps listening after its connection is killed', async () => {
    const env = { CACHE_INVALIDATION: 'notify' };
    const a = await startTestService({ database, env });
    const b = await startTestService({ database, env });
    try {
      await a.ctx.invalidationChannel!.ready();
      await b.ctx.invalidationChannel!.ready();
      const original = (await b.api.get('/trips/21')).body.vendor_id;
      assert.equal((await b.api.get('/trips/21')).headers['x-cache'], 'HIT');
      const next = original === '1' ? '2' : '1';
      await a.api.post('/trips/21/vendor', { vendor_id: next });
      const ms = await eventually(async () => (await b.api.get('/trips/21')).body.vendor_id === next, 'B to see the write');
      assert.ok(ms < 1000, `B saw the write after ${ms} ms`);

      // Kill B's listener connection: it must come back and keep evicting.
      await database.admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'lakebase-api-cache-listener'");
      await eventually(async () => b.ctx.invalidationChannel!.stats().reconnects > 0 && b.ctx.invalidationChannel!.stats().connected, 'B to reconnect');
      await a.ctx.invalidationChannel!.ready();
      await b.api.get('/trips/21');
      assert.equal((await b.api.get('/trips/21')).headers['x-cache'], 'HIT');
      await a.api.post('/trips/21/vendor', { vendor_id: original });
      await eventually(async () => (await b.api.get('/trips/21')).body.vendor_id === original, 'B to see the second write after reconnecting');
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('control: without notify, B serves its stale entry until the TTL', async () => {
    const a = await startTestService({ database });
    const b = await startTestService({ database });
    try {
      const original = (await b.api.get('/trips/22')).body.vendor_id;
      const next = original === '1' ? '2' : '1';
      await a.api.post('/trips/22/vendor', { vendor_id: next });
      const stale = await b.api.get('/trips/22');
      assert.equal(stale.headers['x-cache'], 'HIT');
      assert.equal(stale.body.vendor_id, original);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
