import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { tableHandlers } from '../../functions/tableHandlers.ts';
import { startTestService, type TestService } from '../support/testService.ts';

const ROWS = 2000;
let service: TestService;

before(async () => {
  // Rows are changed behind the API and read back with no-cache: every forced refresh must load
  // (the refresh interval that spares repeated ones is tested in test/cache/forcedRefresh.test.ts).
  service = await startTestService({ rows: ROWS, env: { CACHE_REFRESH_INTERVAL: '0' } });
});
after(async () => {
  await service?.close();
});

describe('GET /trips/count', () => {
  test('counts every row as a JSON integer', async () => {
    const res = await service.api.get('/trips/count');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { total_trips: ROWS });
    assert.match(res.text, /^\{"total_trips":2000\}$/);
  });
});

describe('GET /trips/{trip_id}', () => {
  test('returns every column with wire types from the spec', async () => {
    const res = await service.api.get('/trips/123');
    assert.equal(res.status, 200);
    assert.equal(res.body.id, 123);
    assert.equal(typeof res.body.id, 'number');
    assert.match(res.body.pickup_datetime, /^2016-0[1-6]-\d{2}T\d{2}:\d{2}:\d{2}$/);
    assert.ok(['1', '2'].includes(res.body.vendor_id));
    assert.equal(Object.keys(res.body).length, 11);
  });

  test('timestamps are the stored values, never shifted by a time zone', async () => {
    const { rows } = await service.database.admin.query<{ pickup: string; dropoff: string }>(
      `SELECT to_char(pickup_datetime, 'YYYY-MM-DD"T"HH24:MI:SS') AS pickup, to_char(dropoff_datetime, 'YYYY-MM-DD"T"HH24:MI:SS') AS dropoff
       FROM nyc_train_synced WHERE id = 77`,
    );
    const res = await service.api.get('/trips/77');
    assert.equal(res.body.pickup_datetime, rows[0]!.pickup);
    assert.equal(res.body.dropoff_datetime, rows[0]!.dropoff);
  });

  test('absent trip is a 404 problem', async () => {
    const res = await service.api.get(`/trips/${ROWS + 10}`);
    assert.equal(res.status, 404);
    assert.match(res.headers['content-type']!, /^application\/problem\+json/);
    assert.equal(res.body.status, 404);
    assert.match(res.body.detail, /2010 not found/);
  });

  for (const [bad, why] of [
    ['abc', /must be an integer/],
    ['1.5', /must be an integer/],
    ['0', /must be >= 1/],
    ['-4', /must be >= 1/],
    ['1e3', /must be an integer/],
    ['99999999999999999999', /between 1 and/],
    ['%20', /must be an integer/],
    ['%E0%A4%A', /percent-encoding/],
  ] as const) {
    test(`rejects trip_id "${bad}" with a 400 naming the field`, async () => {
      const res = await service.api.get(`/trips/${bad}`);
      assert.equal(res.status, 400);
      assert.equal(res.body.field, 'trip_id');
      assert.match(res.body.detail, why);
    });
  }

  test('static paths win over /trips/{trip_id}', async () => {
    for (const path of ['/trips/pages', '/trips/stream', '/trips/count', '/trips/sample', '/trips/analytics']) {
      const res = await service.api.get(path);
      assert.equal(res.status, 200, path);
      assert.equal(res.body.field, undefined, path);
    }
  });
});

describe('GET /trips/sample', () => {
  test('five distinct ids that exist, and different on the next call', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const res = await service.api.get('/trips/sample');
      assert.equal(res.status, 200);
      const ids: number[] = res.body.sample_trip_ids;
      assert.equal(ids.length, 5);
      assert.equal(new Set(ids).size, 5);
      for (const id of ids) assert.ok(Number.isInteger(id) && id >= 1 && id <= ROWS);
      seen.add(ids.join(','));
    }
    assert.ok(seen.size >= 4, 'samples should vary from call to call');
    assert.ok(![...seen].includes('1,2,3,4,5'));
  });

  test('small tables still give every id they have', async () => {
    const { admin } = service.database;
    await admin.query('CREATE TABLE tiny AS SELECT * FROM nyc_train_synced WHERE id IN (3, 900, 1500)');
    const small = await startTestService({ database: service.database, env: { DEFAULT_POSTGRES_TABLE: 'tiny' } });
    try {
      const res = await small.api.get('/trips/sample');
      assert.deepEqual(
        [...res.body.sample_trip_ids].sort((a: number, b: number) => a - b),
        [3, 900, 1500],
      );
    } finally {
      await small.close();
      await admin.query('DROP TABLE tiny');
    }
  });
});

describe('GET /trips/analytics', () => {
  test('aggregates agree with SQL computed independently', async () => {
    const res = await service.api.get('/trips/analytics');
    assert.equal(res.status, 200);
    const { admin } = service.database;
    const avg = await admin.query('SELECT round(avg(trip_duration) / 60.0, 2)::float8 AS m FROM nyc_train_synced');
    const peak = await admin.query(
      'SELECT extract(hour FROM pickup_datetime)::int AS h, count(*)::int AS c FROM nyc_train_synced GROUP BY 1 ORDER BY c DESC, h LIMIT 1',
    );
    const vendors = await admin.query('SELECT vendor_id, count(*)::int AS c FROM nyc_train_synced GROUP BY 1');
    assert.equal(res.body.total_trips, ROWS);
    assert.equal(res.body.avg_trip_duration_minutes, avg.rows[0].m);
    assert.equal(res.body.peak_hour, peak.rows[0].h);
    assert.equal(res.body.peak_hour_trip_count, peak.rows[0].c);
    assert.deepEqual(res.body.vendor_distribution, Object.fromEntries(vendors.rows.map((r) => [r.vendor_id, r.c])));
  });
});

describe('GET /trips/pages', () => {
  test('defaults: page 1 of 100 with totals that agree with /trips/count', async () => {
    const count = (await service.api.get('/trips/count')).body.total_trips;
    const res = await service.api.get('/trips/pages');
    assert.equal(res.status, 200);
    assert.equal(res.body.trips.length, 100);
    assert.deepEqual(res.body.pagination, {
      page: 1,
      page_size: 100,
      total_pages: Math.ceil(count / 100),
      total_count: count,
      has_next: true,
      has_previous: false,
    });
    assert.deepEqual(
      res.body.trips.map((t: { id: number }) => t.id),
      Array.from({ length: 100 }, (_, i) => i + 1),
    );
  });

  test('middle and last pages', async () => {
    const mid = await service.api.get('/trips/pages?page=3&page_size=7');
    assert.deepEqual(
      mid.body.trips.map((t: { id: number }) => t.id),
      [15, 16, 17, 18, 19, 20, 21],
    );
    assert.equal(mid.body.pagination.has_previous, true);
    const last = await service.api.get('/trips/pages?page=20&page_size=100');
    assert.equal(last.body.trips.length, 100);
    assert.equal(last.body.pagination.has_next, false);
    const beyond = await service.api.get('/trips/pages?page=21&page_size=100');
    assert.equal(beyond.body.trips.length, 0);
    assert.equal(beyond.body.pagination.has_next, false);
  });

  test('include_count=false says so with null totals', async () => {
    const res = await service.api.get('/trips/pages?page=2&page_size=10&include_count=false');
    assert.equal(res.status, 200);
    assert.equal(res.body.pagination.total_count, null);
    assert.equal(res.body.pagination.total_pages, null);
    assert.equal(res.body.pagination.has_next, true);
    assert.equal(res.body.trips[0].id, 11);
  });

  for (const [query, field] of [
    ['page=0', 'page'],
    ['page=-1', 'page'],
    ['page=x', 'page'],
    ['page_size=0', 'page_size'],
    ['page_size=1001', 'page_size'],
    ['include_count=yes', 'include_count'],
    ['pagesize=10', 'pagesize'],
    ['page=1&page=2', 'page'],
    ['page=', 'page'],
  ] as const) {
    test(`rejects ${query} naming ${field}`, async () => {
      const res = await service.api.get(`/trips/pages?${query}`);
      assert.equal(res.status, 400);
      assert.equal(res.body.field, field);
    });
  }
});

describe('GET /trips/stream', () => {
  test('following next_cursor from 0 visits every id exactly once', async () => {
    const ids: number[] = [];
    let cursor = 0;
    let pages = 0;
    for (;;) {
      const res = await service.api.get(`/trips/stream?cursor=${cursor}&page_size=333`);
      assert.equal(res.status, 200);
      assert.equal(res.body.pagination.has_previous, cursor > 0);
      ids.push(...res.body.trips.map((t: { id: number }) => t.id));
      pages++;
      if (!res.body.pagination.has_next) {
        assert.equal(res.body.pagination.next_cursor, null);
        break;
      }
      cursor = res.body.pagination.next_cursor;
      assert.ok(pages < 100, 'stream must end');
    }
    assert.equal(ids.length, ROWS);
    assert.equal(new Set(ids).size, ROWS);
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
    );
    assert.equal(pages, Math.ceil(ROWS / 333));
  });

  test('JSON built by Postgres is what JSON.stringify writes, and pages carry each trip as GET /trips/{id} does', async () => {
    const headers = { 'cache-control': 'no-cache' };
    const stream = await service.api.get('/trips/stream?cursor=1985&page_size=10', { headers });
    const pages = await service.api.get('/trips/pages?page=199&page_size=10&include_count=false', { headers });
    // The whole body is what JSON.stringify would have written, separators included.
    assert.equal(stream.text, JSON.stringify(stream.body));
    assert.equal(pages.text, JSON.stringify(pages.body));
    for (let id = 1981; id <= 1995; id++) {
      const single = await service.api.get(`/trips/${id}`, { headers });
      assert.equal(single.text, JSON.stringify(single.body));
      if (id > 1985) assert.ok(stream.text.includes(single.text), `stream page lacks trip ${id} as ${single.text}`);
      if (id <= 1990) assert.ok(pages.text.includes(single.text), `page lacks trip ${id} as ${single.text}`);
    }
  });

  test('awkward values survive JSON built by Postgres: escapes, non-ASCII, NULLs, fractions of seconds, tiny floats', async () => {
    const columns = 'vendor_id, store_and_fwd_flag, pickup_longitude::text, dropoff_latitude::text, pickup_datetime::text';
    const original = (await service.database.admin.query(`SELECT ${columns} FROM nyc_train_synced WHERE id = 1990`)).rows[0];
    await service.database.admin.query(
      `UPDATE nyc_train_synced SET vendor_id = $1, store_and_fwd_flag = NULL, pickup_longitude = 1e-7, dropoff_latitude = -0.5,
         pickup_datetime = '2016-02-29 23:59:59.25' WHERE id = 1990`,
      ['q"\\é\n\u2028\t'],
    );
    try {
      const headers = { 'cache-control': 'no-cache' };
      const single = await service.api.get('/trips/1990', { headers });
      const stream = await service.api.get('/trips/stream?cursor=1989&page_size=1', { headers });
      const pages = await service.api.get('/trips/pages?page=1990&page_size=1&include_count=false', { headers });
      // Same values; only the spelling of numbers outside 1e-4..1e15 differs (Postgres writes 1e-07).
      assert.deepEqual(stream.body.trips[0], single.body);
      assert.deepEqual(pages.body.trips[0], single.body);
      assert.equal(single.body.vendor_id, 'q"\\é\n\u2028\t');
      assert.equal(single.body.pickup_datetime, '2016-02-29T23:59:59.25');
      assert.equal(stream.body.trips[0].store_and_fwd_flag, null);
      assert.equal(stream.body.trips[0].pickup_longitude, 1e-7);
    } finally {
      await service.database.admin.query(
        `UPDATE nyc_train_synced SET vendor_id = $2, store_and_fwd_flag = $3, pickup_longitude = $4::float8, dropoff_latitude = $5::float8,
           pickup_datetime = $6::timestamp WHERE id = $1`,
        [1990, original.vendor_id, original.store_and_fwd_flag, original.pickup_longitude, original.dropoff_latitude, original.pickup_datetime],
      );
    }
  });

  test('a cursor past the end is an empty last page', async () => {
    const res = await service.api.get(`/trips/stream?cursor=${ROWS}`);
    assert.deepEqual(res.body, { trips: [], pagination: { page_size: 100, has_next: false, next_cursor: null, has_previous: true } });
  });

  for (const [query, field] of [
    ['cursor=-1', 'cursor'],
    ['cursor=abc', 'cursor'],
    ['page_size=5000', 'page_size'],
    ['after=3', 'after'],
  ] as const) {
    test(`rejects ${query}`, async () => {
      const res = await service.api.get(`/trips/stream?${query}`);
      assert.equal(res.status, 400);
      assert.equal(res.body.field, field);
    });
  }
});

describe('POST /trips/{trip_id}/vendor', () => {
  test('updates the vendor and the next read sees it', async () => {
    const before = await service.api.get('/trips/42');
    const next = before.body.vendor_id === '1' ? '2' : '1';
    const res = await service.api.post('/trips/42/vendor', { vendor_id: next });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { ...before.body, vendor_id: next });
    const after = await service.api.get('/trips/42');
    assert.equal(after.body.vendor_id, next);
    const stored = await service.database.admin.query('SELECT vendor_id FROM nyc_train_synced WHERE id = 42');
    assert.equal(stored.rows[0].vendor_id, next);
  });

  test('404 for an absent trip, and nothing is written', async () => {
    const res = await service.api.post(`/trips/${ROWS + 1}/vendor`, { vendor_id: '1' });
    assert.equal(res.status, 404);
    const { rows } = await service.database.admin.query('SELECT count(*)::int AS n FROM nyc_train_synced');
    assert.equal(rows[0].n, ROWS);
  });

  const badBodies: Array<[string, unknown, string | undefined, number, string]> = [
    ['missing vendor_id', {}, undefined, 400, 'vendor_id'],
    ['number vendor_id', { vendor_id: 1 }, undefined, 400, 'vendor_id'],
    ['empty vendor_id', { vendor_id: '' }, undefined, 400, 'vendor_id'],
    ['SQL in vendor_id', { vendor_id: "1'; DROP TABLE nyc_train_synced; --" }, undefined, 400, 'vendor_id'],
    ['extra member', { vendor_id: '1', id: 5 }, undefined, 400, 'id'],
    ['array body', [], undefined, 400, 'body'],
    ['malformed JSON', '{"vendor_id": ', undefined, 400, 'body'],
    ['no body', undefined, undefined, 400, 'body'],
    ['form content type', 'vendor_id=1', 'application/x-www-form-urlencoded', 415, 'content-type'],
  ];
  for (const [name, body, contentType, status, field] of badBodies) {
    test(`rejects ${name}`, async () => {
      const before = await service.database.admin.query('SELECT vendor_id FROM nyc_train_synced WHERE id = 7');
      const res = await service.api.send('POST', '/trips/7/vendor', { body, contentType });
      assert.equal(res.status, status);
      assert.equal(res.body.field, field);
      const after = await service.database.admin.query('SELECT vendor_id FROM nyc_train_synced WHERE id = 7');
      assert.deepEqual(after.rows, before.rows);
    });
  }

  test('rejects a bad trip_id before reading the body', async () => {
    const res = await service.api.post('/trips/abc/vendor', { vendor_id: '1' });
    assert.equal(res.status, 400);
    assert.equal(res.body.field, 'trip_id');
  });

  test('an oversized body is a 413', async () => {
    const res = await service.api.post('/trips/7/vendor', { vendor_id: 'x'.repeat(20_000) });
    assert.equal(res.status, 413);
  });
});

describe('service routes', () => {
  test('GET / links the docs', async () => {
    const res = await service.api.get('/');
    assert.equal(res.status, 200);
    assert.equal(res.body.docs, '/docs');
    assert.equal(res.body.openapi, '/openapi.json');
  });

  test('GET /health is up', async () => {
    const res = await service.api.get('/health');
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'healthy');
  });

  test('GET /health/ready is ready over a running database', async () => {
    const res = await service.api.get('/health/ready');
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'ready');
  });

  test('/openapi.json is the document the router was built from', async () => {
    const res = await service.api.get('/openapi.json');
    assert.equal(res.status, 200);
    assert.equal(res.body.openapi, '3.1.0');
    assert.deepEqual(res.body, JSON.parse(JSON.stringify(service.router.document)));
  });

  test('/docs serves Swagger UI from local assets under a strict CSP', async () => {
    const redirect = await service.api.get('/docs');
    assert.equal(redirect.status, 308);
    const page = await service.api.get('/docs/');
    assert.equal(page.status, 200);
    assert.match(page.text, /swagger-ui-bundle\.js/);
    assert.doesNotMatch(page.text, /https?:\/\//, 'no external asset');
    assert.match(page.headers['content-security-policy']!, /script-src 'self'/);
    for (const asset of ['swagger-ui.css', 'swagger-ui-bundle.js', 'swagger-ui-standalone-preset.js', 'init.js']) {
      const res = await service.api.get(`/docs/${asset}`);
      assert.equal(res.status, 200, asset);
      assert.ok(res.text.length > 10, asset);
    }
  });

  test('unknown path is a 404 problem, wrong method a 405 with Allow', async () => {
    const missing = await service.api.get('/nope');
    assert.equal(missing.status, 404);
    const wrong = await service.api.send('DELETE', '/trips/1');
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.allow, 'GET');
  });

  test('every response has X-Process-Time, a request id and nosniff; no X-Powered-By', async () => {
    const res = await service.api.get('/trips/1', { headers: { 'x-request-id': 'abc-123' } });
    assert.match(res.headers['x-process-time']!, /^\d+\.\d{2}$/);
    assert.equal(res.headers['x-request-id'], 'abc-123');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['x-powered-by'], undefined);
  });

  test('one log line per request with method, path, status and duration', async () => {
    const before = service.logs.lines.length;
    await service.api.get('/trips/5', { headers: { 'x-request-id': 'log-check-1' } });
    const lines = service.logs
      .records()
      .slice(before)
      .filter((r) => r.reqId === 'log-check-1');
    assert.equal(lines.length, 1);
    assert.match(String(lines[0]!.msg), /^GET \/trips\/5 200 \d+\.\dms$/);
    assert.equal(lines[0]!.route, '/trips/{trip_id}');
    // The request line is logged without key-based redaction (for speed): it may only ever carry
    // these fields, none of which can hold a credential.
    const allowed = new Set(['level', 'time', 'service', 'reqId', 'method', 'route', 'status', 'ms', 'cache', 'caller', 'user', 'msg']);
    for (const key of Object.keys(lines[0]!)) assert.ok(allowed.has(key), `unexpected "${key}" in the request log line`);
  });

  test('a failed request logs the route it matched, so errors can be counted per route', async () => {
    const before = service.logs.lines.length;
    await service.api.get('/trips/abc', { headers: { 'x-request-id': 'log-check-2' } });
    const line = service.logs
      .records()
      .slice(before)
      .find((r) => r.reqId === 'log-check-2');
    assert.equal(line?.status, 400);
    assert.equal(line?.route, '/trips/{trip_id}');
  });
});

describe('contract coverage', () => {
  test('every operation in the spec was exercised by this suite', () => {
    // Tables served by `npm run add-table` are exercised by their own generated suites (test/functions/<path>.test.ts).
    const generated = new Set(Object.keys(tableHandlers));
    const operations = service.router.operations.map((op) => op.operationId).filter((id) => !generated.has(id));
    for (const id of operations) assert.ok(service.contract.seen.has(id), `${id} was never called`);
  });
});
