import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { handlers } from '../../functions/index.ts';
import type { Handler } from '../../lib/http/handler.ts';
import type { ApiResponse } from '../support/api.ts';
import { pollUntil } from '../support/pollUntil.ts';
import { startTestDatabase, startTestService, type TestDatabase, type TestService } from '../support/testService.ts';

/**
 * Fair shares of the database (issue 26): per-caller limits (429), the scanning reads' share of the
 * pool and the pool's wait budget (503, shed), each refusal named, counted and logged.
 */

let database: TestDatabase;
before(async () => {
  database = await startTestDatabase(2000);
});
after(async () => {
  await database?.stop();
});

/**
 * The sample (a scanning read, never cached) made slow and heavy: it holds its connection for
 * `seconds`, and the planner estimates it heavy (DB_SCAN_COST) for a count of 100M rows it never
 * runs: an OR stops at its first true operand, and a subquery's InitPlan runs only when reached.
 * (random(), not a parameter, is that operand: the planner would fold `0.5 >= 0 OR …` to true.)
 */
const SLOW_HEAVY = 'SELECT pg_sleep($1::float8) WHERE random() >= 0 OR (SELECT count(*) FROM generate_series(1, 100000000)) > 0';
function slowSample(seconds: number): Handler {
  return async (_input, ctx) => {
    await ctx.db.query({ text: SLOW_HEAVY, values: [seconds] });
    return { body: { sample_trip_ids: [1, 2, 3, 4, 5] } };
  };
}

/** supertest connects from loopback: declared trusted, X-Forwarded-For names the caller. */
const TRUSTED = { TRUSTED_PROXIES: '127.0.0.1,::1' };
const as = (address: string, extra: Record<string, string> = {}) => ({ headers: { 'x-forwarded-for': address, ...extra } });
const NO_CACHE = { 'cache-control': 'no-cache' };

function assertRefused(response: ApiResponse, status: 429 | 503, limit: string): void {
  assert.equal(response.status, status, JSON.stringify(response.body));
  assert.equal(response.body.limit, limit);
  assert.match(response.headers['retry-after']!, /^\d+$/);
  assert.ok(Number(response.headers['retry-after']) >= 1);
  if (status === 429) {
    assert.ok(response.headers['ratelimit-policy'], 'RateLimit-Policy');
    assert.match(response.headers.ratelimit!, /^"(rate|in-flight)";r=0;t=\d+$/);
  }
}

async function refusedMetric(service: TestService, operation: string, reason: string): Promise<number> {
  const text = (await service.router.handle({ method: 'GET', url: '/metrics', headers: {} })).body as string;
  const line = new RegExp(`^lakebase_api_requests_refused_total\\{operation="${operation}",reason="${reason}"\\} (\\d+)`, 'm').exec(text);
  return Number(line?.[1] ?? 0);
}

describe('per-caller limits', () => {
  let service: TestService;
  before(async () => {
    service = await startTestService({ database, env: { ...TRUSTED, CALLER_RATE_PER_SECOND: '0.5', CALLER_BURST: '2' } });
  });
  after(() => service?.close());

  test('past its token bucket a caller gets 429 naming the limit, while another caller is served', async () => {
    const flooder = '203.0.113.7';
    const first = await service.api.get('/trips/stream?cursor=1', as(flooder, NO_CACHE));
    const second = await service.api.get('/trips/stream?cursor=2', as(flooder, NO_CACHE));
    assert.equal(first.status, 200);
    assert.equal(second.status, 200);
    const third = await service.api.get('/trips/stream?cursor=3', as(flooder, NO_CACHE));
    assertRefused(third, 429, 'caller-rate');
    assert.equal(third.headers['ratelimit-policy'], '"rate";q=2;w=4, "in-flight";q=128;qu="concurrent-requests"');
    assert.equal(third.headers['content-type'], 'application/problem+json; charset=utf-8');
    assert.equal((await service.api.get('/trips/stream?cursor=3', as('203.0.113.8', NO_CACHE))).status, 200, 'another caller');
    // A generated table's scans take from the same bucket (they are declared x-read-from: replica too).
    assertRefused(await service.api.get('/rides/count', as(flooder, NO_CACHE)), 429, 'caller-rate');
    // Cache hits and point lookups never take a token.
    assert.equal((await service.api.get('/trips/stream?cursor=1', as(flooder))).headers['x-cache'], 'HIT');
    assert.equal((await service.api.get('/trips/42', as(flooder, NO_CACHE))).status, 200);
    assert.equal((await service.api.get('/health/ready', as(flooder))).status, 200);
    assert.ok((await refusedMetric(service, 'streamTrips', 'caller-rate')) >= 1);
    const line = service.logs.records().find((l) => l.status === 429);
    assert.equal(line?.refused, 'caller-rate', 'the request log says why');
    const metrics = (await service.router.handle({ method: 'GET', url: '/metrics', headers: {} })).body as string;
    assert.ok(!metrics.includes(flooder), 'no caller identity in any metric label');
  });

  test('an untrusted peer cannot pick its identity with X-Forwarded-For', async () => {
    const untrusted = await startTestService({ database, env: { CALLER_RATE_PER_SECOND: '0.5', CALLER_BURST: '1' } });
    try {
      assert.equal((await untrusted.api.get('/trips/stream?cursor=11', as('198.51.100.1', NO_CACHE))).status, 200);
      assertRefused(await untrusted.api.get('/trips/stream?cursor=12', as('198.51.100.2', NO_CACHE)), 429, 'caller-rate');
    } finally {
      await untrusted.close();
    }
  });
});

describe('bounded requests in flight per caller', () => {
  let service: TestService;
  before(async () => {
    service = await startTestService({
      database,
      handlers: { ...handlers, getTripSample: slowSample(0.4) },
      env: { ...TRUSTED, CALLER_MAX_IN_FLIGHT: '2', DB_SCAN_SHARE: '1' },
    });
  });
  after(() => service?.close());

  test('a caller past CALLER_MAX_IN_FLIGHT gets 429 at once; another caller is served', async () => {
    const flood = Array.from({ length: 4 }, () => service.api.get('/trips/sample', as('203.0.113.9')));
    const other = await service.api.get('/trips/sample', as('203.0.113.10'));
    const answers = await Promise.all(flood);
    assert.equal(other.status, 200);
    assert.equal(answers.filter((a) => a.status === 200).length, 2);
    for (const refused of answers.filter((a) => a.status !== 200)) assertRefused(refused, 429, 'caller-in-flight');
  });
});

describe('shed in order: scans past their share, then a busy pool', () => {
  let service: TestService;
  before(async () => {
    // Pool of 6: one connection for scanning reads (0.2 × 6), a 50 ms wait for it.
    service = await startTestService({
      database,
      handlers: { ...handlers, getTripSample: slowSample(0.5) },
      env: { ...TRUSTED, DB_SCAN_SHARE: '0.2', DB_SCAN_WAIT_MS: '50' },
    });
  });
  after(() => service?.close());

  test('scans past their share are shed with 503 while point lookups, writes and probes are served', async () => {
    const started = performance.now();
    const scans = Array.from({ length: 3 }, (_, i) => service.api.get('/trips/sample', as(`203.0.113.${20 + i}`)));
    const point = await service.api.get('/trips/7', { headers: NO_CACHE });
    const ready = await service.api.get('/health/ready');
    const answers = await Promise.all(scans);
    assert.equal(point.status, 200);
    assert.equal(ready.status, 200);
    assert.equal(answers.filter((a) => a.status === 200).length, 1);
    const shed = answers.filter((a) => a.status !== 200);
    assert.equal(shed.length, 2);
    for (const refused of shed) assertRefused(refused, 503, 'scan-share');
    assert.ok(performance.now() - started < 5000, 'shed at once, not after DB_POOL_TIMEOUT');
    assert.equal(await refusedMetric(service, 'getTripSample', 'scan-share'), 2);
  });

  test('light scans (keyset pages, the planner says) run beside a heavy one holding the share, in a share of their own', async () => {
    const heavy = service.api.get('/trips/sample', as('203.0.113.40'));
    await pollUntil('the heavy scan to hold the share', 5000, () => (service.ctx.scanShare?.stats().inUse === 1 ? true : undefined));
    const before = service.ctx.scanShare?.stats().light ?? 0;
    const page = await service.api.get('/trips/stream?cursor=10&page_size=5', as('203.0.113.41', NO_CACHE));
    assert.equal(page.status, 200, 'not shed: it never waited for the heavy share');
    assert.equal(service.ctx.scanShare?.stats().inUse, 1, 'the heavy scan still holds its share');
    assert.ok((service.ctx.scanShare?.stats().light ?? 0) > before);
    assert.equal((await heavy).status, 200);
    const metrics = (await service.router.handle({ method: 'GET', url: '/metrics', headers: {} })).body as string;
    assert.match(metrics, /^lakebase_api_db_scan_light_statements_total [1-9]/m);
    assert.match(metrics, /^lakebase_api_db_scan_heavy_statements_total [1-9]/m);
  });

  test('with every connection busy, a statement is shed after DB_POOL_WAIT_MS, and readiness still waits its own timeout', async () => {
    const tight = await startTestService({
      database,
      handlers: { ...handlers, getTripSample: slowSample(0.6) },
      env: { DB_POOL_SIZE: '1', DB_MAX_OVERFLOW: '0', DB_SCAN_SHARE: '1', DB_POOL_WAIT_MS: '50', READINESS_TIMEOUT: '5' },
    });
    try {
      const scan = tight.api.get('/trips/sample');
      await pollUntil('the scan to hold the one connection', 5000, () =>
        tight.ctx.pool.idleCount === 0 && tight.ctx.pool.totalCount === 1 ? true : undefined,
      );
      const point = tight.api.get('/trips/8', { headers: NO_CACHE });
      const ready = tight.api.get('/health/ready');
      const [scanned, pointed, readiness] = await Promise.all([scan, point, ready]);
      assert.equal(scanned.status, 200);
      assertRefused(pointed, 503, 'pool-wait');
      assert.equal(readiness.status, 200, 'readiness is never shed');
    } finally {
      await tight.close();
    }
  });
});

describe('one process per query', () => {
  const parallelWorkers = async (service: TestService) => {
    // A new connection, so the setting seen is what every connection of the pool starts with.
    const client = await service.ctx.pool.connect();
    try {
      return (await client.query<{ max_parallel_workers_per_gather: string }>('SHOW max_parallel_workers_per_gather')).rows[0]?.max_parallel_workers_per_gather;
    } finally {
      client.release(true);
    }
  };

  test("protection on: the service's connections plan no parallel workers (DB_PARALLEL_WORKERS, default 0); off or -1: the server's setting", async () => {
    for (const [env, expected] of [
      [{}, '0'],
      [{ DB_PARALLEL_WORKERS: '1' }, '1'],
      [{ DB_PARALLEL_WORKERS: '-1' }, '2'],
      [{ ADMISSION_ENABLED: 'false' }, '2'],
    ] as const) {
      const service = await startTestService({ database, env });
      try {
        assert.equal(await parallelWorkers(service), expected, JSON.stringify(env));
      } finally {
        await service.close();
      }
    }
  });
});

describe('protection off', () => {
  test('ADMISSION_ENABLED=false: no limits, no shedding', async () => {
    const open = await startTestService({
      database,
      handlers: { ...handlers, getTripSample: slowSample(0.2) },
      env: { ...TRUSTED, ADMISSION_ENABLED: 'false', CALLER_MAX_IN_FLIGHT: '1', DB_SCAN_SHARE: '0.1', DB_SCAN_WAIT_MS: '1' },
    });
    try {
      const answers = await Promise.all(Array.from({ length: 4 }, () => open.api.get('/trips/sample', as('203.0.113.30'))));
      assert.deepEqual(
        answers.map((a) => a.status),
        [200, 200, 200, 200],
      );
    } finally {
      await open.close();
    }
  });
});
