import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestService, type TestService } from '../support/testService.ts';
import { apiService } from '../../functions/index.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// Known values for every credential a request may carry: none may reach a log line.
const ACCESS_TOKEN = 'forwarded-access-token-value-3f9a1c';
const BEARER = 'authorization-bearer-value-77e2b0';
const COOKIE = 'session-cookie-value-c41d';
const SECRET_HEADERS = {
  'x-forwarded-access-token': ACCESS_TOKEN,
  authorization: `Bearer ${BEARER}`,
  cookie: `session=${COOKIE}`,
};

let service: TestService;

before(async () => {
  service = await startTestService({ rows: 200 });
});
after(async () => {
  await service?.close();
});

function linesFor(reqId: string) {
  return service.logs.records().filter((r) => r.reqId === reqId);
}

describe('request ids', () => {
  test('a valid incoming X-Request-Id is returned and logged', async () => {
    const id = 'client-trace_01.a:b';
    const res = await service.api.get('/trips/5', { headers: { 'x-request-id': id } });
    assert.equal(res.headers['x-request-id'], id);
    assert.equal(linesFor(id).length, 1);
  });

  test('without one, a UUID is generated, returned and logged', async () => {
    const res = await service.api.get('/health');
    const id = res.headers['x-request-id']!;
    assert.match(id, UUID);
    assert.equal(linesFor(id).length, 1);
  });

  for (const [why, bad] of [
    ['too long', 'a'.repeat(129)],
    ['spaces', 'abc def'],
    ['markup', '<script>alert(1)</script>'],
    ['non-ASCII', 'id-é'],
    ['empty', ''],
  ] as const) {
    test(`a malicious id (${why}) is replaced by a fresh one`, async () => {
      const before = service.logs.lines.length;
      const res = await service.api.get('/health', { headers: { 'x-request-id': bad } });
      const id = res.headers['x-request-id']!;
      assert.match(id, UUID);
      assert.notEqual(id, bad);
      const logged = service.logs.lines.slice(before);
      assert.equal(linesFor(id).length, 1, 'the fresh id is in the log');
      if (bad !== '') for (const line of logged) assert.ok(!line.includes(bad), `the rejected id is not logged: ${line}`);
    });
  }

  test('CRLF in the id (possible through the fetch or Lambda adapters) cannot split headers or log lines', async () => {
    const injected = 'abc\r\nSet-Cookie: stolen=1';
    const res = await service.router.handle({ method: 'GET', url: '/health', headers: { 'x-request-id': injected } });
    const id = res.headers['x-request-id']!;
    assert.match(id, UUID);
    assert.equal(res.headers['set-cookie'], undefined);
    for (const line of service.logs.lines) assert.ok(!line.includes('stolen=1'), line);
  });

  test('5xx problem bodies carry the request id', async () => {
    const id = 'quote-me-123';
    const res = await service.router.handle({ method: 'GET', url: '/health', headers: { 'x-request-id': id } });
    assert.equal(res.status, 200);
    // A broken handler: the generic 500 names the request id, the error line in the log shares it.
    const { createRouter } = await import('../../lib/http/router.ts');
    const { handlers } = await import('../../functions/index.ts');
    const broken = createRouter(apiService, service.ctx, {
      handlers: {
        ...handlers,
        getHealth: async () => {
          throw new Error('boom: internal detail');
        },
      },
    });
    const failed = await broken.handle({ method: 'GET', url: '/health', headers: { 'x-request-id': id } });
    assert.equal(failed.status, 500);
    const body = JSON.parse(String(failed.body));
    assert.equal(body.request_id, id);
    assert.doesNotMatch(String(failed.body), /boom/);
    const lines = linesFor(id);
    const errorLine = lines.find((r) => r.level === 50);
    assert.ok(errorLine, 'the failure is logged with the request id');
    assert.equal(lines.filter((r) => typeof r.ms === 'number' && r.status === 500).length, 1, 'one request line for the failed request');
  });
});

describe('one structured line per request', () => {
  test('fields, route template, caller identity and no secrets', async () => {
    const identity = { 'x-forwarded-email': 'ada@example.com', 'x-forwarded-user': '4211@1234567890' };
    const cases = [
      { id: 'log-trip', method: 'GET', url: '/trips/42', route: '/trips/{trip_id}', status: 200, cache: 'MISS' },
      { id: 'log-trip-again', method: 'GET', url: '/trips/42', route: '/trips/{trip_id}', status: 200, cache: 'HIT' },
      { id: 'log-bad-id', method: 'GET', url: '/trips/forty-two', route: '/trips/{trip_id}', status: 400 },
      { id: 'log-missing', method: 'GET', url: '/trips/999999', route: '/trips/{trip_id}', status: 404 },
      { id: 'log-unmatched', method: 'GET', url: '/nothing/here', route: 'unmatched', status: 404 },
      { id: 'log-write', method: 'POST', url: '/trips/42/vendor', route: '/trips/{trip_id}/vendor', status: 200, body: { vendor_id: '2' } },
      { id: 'log-ready', method: 'GET', url: '/health/ready', route: '/health/ready', status: 200 },
    ];
    for (const c of cases) {
      const res = await service.api.send(c.method, c.url, { headers: { ...SECRET_HEADERS, ...identity, 'x-request-id': c.id }, body: c.body });
      assert.equal(res.status, c.status, c.url);
    }

    for (const c of cases) {
      const lines = service.logs.lines.filter((l) => l.includes(`"reqId":"${c.id}"`));
      assert.equal(lines.length, 1, `exactly one line for ${c.id}`);
      const record = JSON.parse(lines[0]!) as Record<string, unknown>;
      assert.equal(record.level, 30);
      assert.equal(typeof record.time, 'string');
      assert.equal(record.method, c.method);
      assert.equal(record.route, c.route, 'the route template, not the raw path');
      assert.equal(record.status, c.status);
      assert.equal(typeof record.ms, 'number');
      assert.equal(record.cache, c.cache, `cache outcome of ${c.id}`);
      assert.deepEqual(record.caller, { email: 'ada@example.com', user: '4211@1234567890' });
      assert.equal(record.headers, undefined, 'request headers are never logged');
    }

    const anonymous = await service.api.get('/health', { headers: { 'x-request-id': 'log-anonymous' } });
    assert.equal(anonymous.status, 200);
    assert.equal(linesFor('log-anonymous')[0]!.caller, undefined, 'no caller field without the proxy headers');

    // Every line captured in this whole suite, not only the request lines.
    assert.ok(service.logs.lines.length > cases.length);
    for (const line of service.logs.lines) {
      for (const secret of [ACCESS_TOKEN, BEARER, COOKIE, service.database.server.password]) {
        assert.ok(!line.includes(secret), `a log line contains a secret: ${line}`);
      }
      assert.doesNotThrow(() => JSON.parse(line), 'every line is JSON');
    }
  });

  test('a forged, huge identity header is bounded in the log line', async () => {
    await service.api.get('/health', { headers: { 'x-request-id': 'log-huge-identity', 'x-forwarded-email': `${'x'.repeat(5000)}@example.com` } });
    const record = linesFor('log-huge-identity')[0]!;
    assert.ok(JSON.stringify(record).length < 1000);
  });
});
