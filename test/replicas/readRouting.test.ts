import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadConfig } from '../../lib/ground/config.ts';
import { ConfigError } from '../../lib/ground/settingsReaders.ts';
import { cacheKey, invalidationPrefixes } from '../../lib/cache/resultsCache.ts';
import { formatLsn, parseLsn } from '../../lib/replicas/walPosition.ts';
import { WriteFences } from '../../lib/replicas/writeFences.ts';
import { createRouter } from '../../lib/http/router.ts';
import { READ_FROM_EXTENSION } from '../../lib/http/routing/operationExtensions.ts';
import { buildOpenApiDocument } from '../../openapi/document.ts';
import { startTestService } from '../support/testService.ts';
import { apiService } from '../../functions/index.ts';

describe('WAL positions', () => {
  test('parse as 64-bit byte positions that compare correctly', () => {
    assert.equal(parseLsn('0/0'), 0n);
    assert.equal(parseLsn('1/0'), 1n << 32n);
    assert.ok(parseLsn('1/0') > parseLsn('0/FFFFFFFF'));
    assert.ok(parseLsn('16/B374D848') < parseLsn('16/B374D849'));
    assert.equal(formatLsn(parseLsn('16/B374D848')), '16/B374D848');
    assert.throws(() => parseLsn('16-B374D848'), /not a WAL position/);
  });
});

describe('write fences (read-your-writes)', () => {
  const write = ['getTrip?trip_id={trip_id}&', 'getTripAnalytics?', 'listTripPages?', 'streamTrips?'];
  const key = (operationId: string, query: object, params: object = {}) => cacheKey(operationId, { params, query });

  test('hold exactly the reads the write made stale, until the replica has replayed the write', () => {
    const fences = new WriteFences();
    fences.add(invalidationPrefixes(write, { trip_id: 42 }), { lsn: 1000n, until: 0 });
    const page = key('listTripPages', { page: 1, page_size: 100, include_count: true });
    assert.ok(fences.holding(page, 999n), 'a replica short of the write is held');
    assert.ok(fences.holding(key('getTrip', {}, { trip_id: 42 }), 999n));
    assert.equal(fences.holding(key('getTrip', {}, { trip_id: 420 }), 999n), undefined, 'another trip is not');
    assert.equal(fences.holding(key('getTripCount', {}), 999n), undefined, 'the count is not made stale by a vendor update');
    assert.equal(fences.holding(page, null), fences.holding(page, null), 'a replica position not known yet holds it');
    assert.equal(fences.holding(page, 1000n), undefined, 'a replica at the write is not held');
    assert.equal(fences.size, 3, 'the passed fence was dropped');
    fences.prune(1000n);
    assert.equal(fences.size, 0);
  });

  test('keep the latest write per prefix', () => {
    const fences = new WriteFences();
    fences.add(['streamTrips?'], { lsn: 2000n, until: 0 });
    fences.add(['streamTrips?'], { lsn: 1500n, until: 0 });
    assert.ok(fences.holding(key('streamTrips', { cursor: 0, page_size: 10 }), 1800n));
    assert.equal(fences.size, 1);
  });

  test('a write whose position could not be read holds its reads for the lag bound', () => {
    const fences = new WriteFences();
    const now = 1_000_000;
    fences.add(['streamTrips?'], { lsn: null, until: now + 5000 });
    const read = key('streamTrips', { cursor: 0, page_size: 10 });
    assert.ok(fences.holding(read, 10n ** 12n, now + 4999), 'whatever the replica reports');
    assert.equal(fences.holding(read, 10n ** 12n, now + 5000), undefined);
  });

  test('past 10,000 fences they fold into one holding every read, and memory stays bounded', () => {
    const fences = new WriteFences();
    for (let id = 1; id <= 10_001; id++) fences.add([`getTrip?trip_id=${id}&`], { lsn: BigInt(id), until: 0 });
    assert.equal(fences.size, 1);
    assert.ok(fences.holding(key('getTripCount', {}), 10_000n), 'every read until the newest write is replayed');
    assert.equal(fences.holding(key('getTripCount', {}), 10_001n), undefined);
    assert.equal(fences.size, 0);
  });
});

describe('x-read-from in the OpenAPI document', () => {
  test('the scanning reads declare the replica (the generated list and count too); point lookups and writes the primary', () => {
    const document = buildOpenApiDocument('test');
    const readFrom = Object.fromEntries(
      Object.values(document.paths ?? {}).flatMap((item) =>
        Object.values(item).map((op: Record<string, unknown>) => [op.operationId as string, op[READ_FROM_EXTENSION] ?? 'primary']),
      ),
    );
    assert.deepEqual(
      Object.entries(readFrom)
        .filter(([, from]) => from === 'replica')
        .map(([id]) => id)
        .sort(),
      ['countRides', 'getTripAnalytics', 'getTripCount', 'getTripSample', 'listRides', 'listTripPages', 'streamTrips'],
    );
    assert.equal(readFrom.getTrip, 'primary');
    assert.equal(readFrom.getRide, 'primary');
    assert.equal(readFrom.updateTripVendor, 'primary');
  });

  test('without a read endpoint nothing changes; a write declaring the replica is refused when the router is built', async () => {
    const service = await startTestService({ rows: 10 });
    try {
      assert.equal(service.ctx.readRouting, null);
      assert.equal(service.ctx.target.replica, undefined);
      const ready = await service.api.get('/health/ready');
      assert.equal(ready.body.checks.replica, undefined);
      assert.equal((await service.api.get('/trips/count')).status, 200);

      const document = buildOpenApiDocument('test');
      const post = (document.paths!['/trips/{trip_id}/vendor'] as Record<string, Record<string, unknown>>).post!;
      post[READ_FROM_EXTENSION] = 'replica';
      assert.throws(
        () => createRouter(apiService, service.ctx, { document }),
        /POST \/trips\/\{trip_id\}\/vendor: only a GET may declare x-read-from: replica/,
      );
    } finally {
      await service.close();
    }
  });
});

describe('read replica settings', () => {
  test("default to the primary pool's size, a short connection wait and a 10 s lag bound", () => {
    const config = loadConfig({ DB_POOL_SIZE: '3', DB_MAX_OVERFLOW: '7' });
    assert.deepEqual(config.readReplica, { poolSize: 3, maxOverflow: 7, timeoutSeconds: 2, maxLagSeconds: 10, checkIntervalSeconds: 1 });
  });

  test('a bad value names its variable', () => {
    assert.throws(
      () => loadConfig({ DB_READ_MAX_LAG_SECONDS: 'soon' }),
      (err: unknown) => err instanceof ConfigError && err.variable === 'DB_READ_MAX_LAG_SECONDS',
    );
    assert.throws(
      () => loadConfig({ DB_READ_POOL_SIZE: '0' }),
      (err: unknown) => err instanceof ConfigError && err.variable === 'DB_READ_POOL_SIZE',
    );
  });
});
