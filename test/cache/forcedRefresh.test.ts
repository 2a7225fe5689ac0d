import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pollUntil } from '../support/pollUntil.ts';
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
  service = await startTestService({ database, env: { DEFAULT_POSTGRES_TABLE: 'counted_trips', CACHE_REFRESH_INTERVAL: '1' } });
});
after(async () => {
  await service?.close();
  await database?.stop();
});

async function databaseReads(): Promise<number> {
  const { rows } = await database.admin.query<{ value: string }>('SELECT CASE WHEN is_called THEN last_value ELSE 0 END::text AS value FROM trip_reads');
  return Number(rows[0]!.value);
}

const NO_CACHE = { headers: { 'cache-control': 'no-cache' } };

describe('forced refreshes cannot multiply work', () => {
  test('forced refreshes within the interval wait for the next load and share it: always fresh, one load', async () => {
    const url = '/trips/stream?cursor=100&page_size=10';
    await service.api.get(url, NO_CACHE);
    const before = await databaseReads();
    const answers = await Promise.all(Array.from({ length: 20 }, () => service.api.get(url, NO_CACHE)));
    const read = (await databaseReads()) - before;
    assert.ok(read > 0 && read <= 11, `one load for all 20 (${read} rows read)`);
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.equal(answer.headers['cache-status'], 'lakebase-api; fwd=request; collapsed');
      assert.equal(answer.headers.age, '0', 'a fresh answer, loaded after they asked');
    }
  });

  test('past the interval, concurrent forced refreshes run one load and collapse onto it', async () => {
    const url = '/trips/stream?cursor=300&page_size=10';
    await service.api.get(url);
    await pollUntil('the refresh interval to pass', 5000, async () => {
      const r = await service.router.handle({ method: 'GET', url, headers: {} });
      return Number(r.headers.age) >= 1 ? true : undefined;
    });
    const before = await databaseReads();
    const answers = await Promise.all(Array.from({ length: 10 }, () => service.api.get(url, NO_CACHE)));
    const read = (await databaseReads()) - before;
    // One page reads its 10 rows (and a look past them): ten loads would read ten times that.
    assert.ok(read > 0 && read <= 11, `one load, shared by all (${read} rows read)`);
    const statuses = answers.map((a) => a.headers['cache-status']);
    assert.equal(statuses.filter((s) => s === 'lakebase-api; fwd=request; stored').length, 1);
    assert.equal(statuses.filter((s) => s === 'lakebase-api; fwd=request; collapsed').length, 9);
    for (const answer of answers) assert.equal(answer.headers.age, '0');
  });

  test('a write through the API is never hidden by the interval', async () => {
    const trip = await service.api.get('/trips/20');
    await service.api.get('/trips/20', NO_CACHE);
    const next = trip.body.vendor_id === '1' ? '2' : '1';
    assert.equal((await service.api.post('/trips/20/vendor', { vendor_id: next })).status, 200);
    const after = await service.api.get('/trips/20', NO_CACHE);
    assert.equal(after.body.vendor_id, next);
    assert.equal(after.headers['cache-status'], 'lakebase-api; fwd=request; stored');
  });

  test('max-age=N accepts a stored answer up to N seconds old (RFC 9111 §5.2.1.1)', async () => {
    await service.api.get('/trips/analytics');
    const before = await databaseReads();
    const fresh = await service.api.get('/trips/analytics', { headers: { 'cache-control': 'max-age=60' } });
    assert.equal(await databaseReads(), before);
    assert.match(fresh.headers['cache-status']!, /^lakebase-api; hit; ttl=\d+$/);
  });

  test('metrics count the refreshes that were spared a load', async () => {
    const text = (await service.router.handle({ method: 'GET', url: '/metrics', headers: {} })).body as string;
    const spared = Number(/^lakebase_api_cache_refreshes_spared_total (\d+)/m.exec(text)?.[1]);
    assert.ok(spared >= 29, `spared ${spared}`);
  });
});
