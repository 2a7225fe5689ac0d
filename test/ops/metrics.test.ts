import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { parsePrometheusText, sampleValue, samples, type MetricFamily } from '../support/prometheusText.ts';
import { startTestService, type TestService } from '../support/testService.ts';

type Families = Map<string, MetricFamily>;

async function scrape(service: TestService): Promise<Families> {
  const res = await request(service.app).get('/metrics');
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type']!, /^text\/plain; version=0\.0\.4/);
  assert.equal(res.headers['cache-control'], 'no-store');
  return parsePrometheusText(res.text);
}

const tripRoute = { method: 'GET', route: '/trips/{trip_id}' };

describe('GET /metrics', () => {
  let service: TestService;
  let other: TestService;

  before(async () => {
    service = await startTestService({ rows: 300 });
    // A second context in the same process, on the same database: its own registry.
    other = await startTestService({ database: service.database });
  });
  after(async () => {
    await other?.close();
    await service?.close();
  });

  test('request count and latency move with requests, by route template and status', async () => {
    const before = await scrape(service);
    const statuses: number[] = [];
    for (const url of ['/trips/7', '/trips/7', '/trips/8', '/trips/abc', '/no/such/route']) statuses.push((await service.api.get(url)).status);
    assert.deepEqual(statuses, [200, 200, 200, 400, 404]);
    const now = await scrape(service);

    const delta = (name: string, labels: Record<string, string>) => sampleValue(now, name, labels) - sampleValue(before, name, labels);
    assert.equal(delta('lakebase_api_http_requests_total', { ...tripRoute, status: '200' }), 3);
    assert.equal(delta('lakebase_api_http_requests_total', { ...tripRoute, status: '400' }), 1);
    assert.equal(delta('lakebase_api_http_requests_total', { method: 'GET', route: 'unmatched', status: '404' }), 1);
    assert.equal(delta('lakebase_api_http_request_duration_seconds_count', { ...tripRoute, status: '200' }), 3);
    assert.ok(delta('lakebase_api_http_request_duration_seconds_sum', { ...tripRoute, status: '200' }) > 0);
    // The previous scrape is itself a request.
    assert.ok(sampleValue(now, 'lakebase_api_http_requests_total', { method: 'GET', route: '/metrics', status: '200' }) >= 1);

    // Buckets are cumulative and end at +Inf = count.
    const buckets = samples(now, 'lakebase_api_http_request_duration_seconds_bucket', { ...tripRoute, status: '200' });
    assert.ok(buckets.length > 5);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, 'buckets are cumulative');
    assert.equal(buckets.at(-1)!.labels.le, '+Inf');
    assert.equal(buckets.at(-1)!.value, sampleValue(now, 'lakebase_api_http_request_duration_seconds_count', { ...tripRoute, status: '200' }));
  });

  test('route labels are templates, never raw paths (bounded cardinality)', async () => {
    for (const id of [11, 12, 13]) await service.api.get(`/trips/${id}`);
    await request(service.app).get('/%E2%9C%93/random/path');
    await request(service.app).get('/docs/swagger-ui.css');
    const metrics = await scrape(service);
    const templates = new Set([...service.router.operations.map((op) => op.template), 'unmatched', '/metrics', '/openapi.json', '/docs']);
    const routes = new Set(samples(metrics, 'lakebase_api_http_requests_total').map((s) => s.labels.route!));
    for (const route of routes) assert.ok(templates.has(route), `unexpected route label ${route}`);
    assert.ok(routes.has('/trips/{trip_id}'));
  });

  test('cache counters are read from the results cache at scrape time', async () => {
    const before = await scrape(service);
    const outcomes: string[] = [];
    for (let i = 0; i < 3; i++) outcomes.push((await service.api.get('/trips/pages?page=3&page_size=5&include_count=false')).headers['x-cache']!);
    assert.deepEqual(outcomes, ['MISS', 'HIT', 'HIT']);
    await service.api.post('/trips/3/vendor', { vendor_id: '2' });
    const now = await scrape(service);
    const delta = (name: string) => sampleValue(now, name) - sampleValue(before, name);
    assert.equal(delta('lakebase_api_cache_hits_total'), 2);
    assert.equal(delta('lakebase_api_cache_misses_total'), 1);
    assert.ok(delta('lakebase_api_cache_invalidations_total') >= 1, 'the write invalidated the page');
    const stats = service.ctx.cache!.stats();
    assert.equal(sampleValue(now, 'lakebase_api_cache_entries'), stats.entries);
    assert.equal(sampleValue(now, 'lakebase_api_cache_bytes'), stats.bytes);
    assert.equal(sampleValue(now, 'lakebase_api_cache_coalesced_total'), stats.coalesced);
    assert.equal(sampleValue(now, 'lakebase_api_cache_evictions_total'), stats.evictions);
  });

  test('pool gauges, process metrics and the info metric', async () => {
    const metrics = await scrape(service);
    assert.equal(sampleValue(metrics, 'lakebase_api_db_pool_max_connections'), 6);
    const total = sampleValue(metrics, 'lakebase_api_db_pool_connections');
    assert.ok(total >= 1 && total <= 6, `pool total ${total}`);
    assert.ok(sampleValue(metrics, 'lakebase_api_db_pool_idle_connections') <= total);
    assert.equal(sampleValue(metrics, 'lakebase_api_db_pool_waiting_requests'), 0);
    assert.equal(sampleValue(metrics, 'lakebase_api_db_connection_errors_total', { kind: 'connect' }), 0);
    assert.equal(sampleValue(metrics, 'lakebase_api_info', { version: service.ctx.version, mode: 'embedded' }), 1);
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
      assert.ok(metrics.has(name), `process metric ${name}`);
    }
    assert.equal(metrics.get('lakebase_api_http_requests_total')!.type, 'counter');
    assert.equal(metrics.get('lakebase_api_http_request_duration_seconds')!.type, 'histogram');
    assert.equal(metrics.get('lakebase_api_db_pool_connections')!.type, 'gauge');
  });

  test('while a request holds every connection, the pool gauges show it', async () => {
    const held = await Promise.all(Array.from({ length: 6 }, () => service.ctx.pool.connect()));
    try {
      const waiting = service.api.get('/trips/sample'); // never cached: needs a connection
      const metrics = await scrape(service);
      assert.equal(sampleValue(metrics, 'lakebase_api_db_pool_connections'), 6);
      assert.equal(sampleValue(metrics, 'lakebase_api_db_pool_idle_connections'), 0);
      assert.equal(sampleValue(metrics, 'lakebase_api_db_pool_waiting_requests'), 1);
      held.pop()!.release();
      assert.equal((await waiting).status, 200);
    } finally {
      for (const client of held) client.release();
    }
  });

  test('each context has its own registry', async () => {
    const mine = await scrape(service);
    const theirs = await scrape(other);
    assert.ok(sampleValue(mine, 'lakebase_api_http_requests_total', { ...tripRoute, status: '200' }) >= 3);
    assert.equal(sampleValue(theirs, 'lakebase_api_http_requests_total', { ...tripRoute, status: '200' }), 0);
  });

  test('HEAD works; other methods are not routes; /metrics is not in the OpenAPI document', async () => {
    const head = await request(service.app).head('/metrics');
    assert.equal(head.status, 200);
    const post = await request(service.app).post('/metrics');
    assert.equal(post.status, 404);
    assert.equal(service.router.document.paths?.['/metrics'], undefined);
  });
});

describe('METRICS_ENABLED=false', () => {
  test('there is no /metrics and nothing is recorded', async () => {
    const service = await startTestService({ rows: 50, env: { METRICS_ENABLED: 'false' } });
    try {
      assert.equal(service.ctx.metrics, null);
      const res = await service.api.get('/metrics');
      assert.equal(res.status, 404);
      assert.equal((await service.api.get('/trips/1')).status, 200, 'the API itself is unaffected');
    } finally {
      await service.close();
    }
  });
});
