/**
 * Telemetry reaches a real OTLP receiver (gRPC, the platform's protocol): spans with the right
 * names, attributes and parents for a cache miss, a cache hit, a write and failed requests; the
 * caller's traceparent honoured; the request log lines as log records in their trace; the /metrics
 * instruments as OTLP metrics; and no credential, forwarded header or SQL value anywhere.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTelemetryIfConfigured } from '../../lib/telemetry/startTelemetry.ts';
import type { Telemetry } from '../../lib/telemetry/telemetrySettings.ts';
import { APP_VERSION } from '../../lib/version.ts';
import { captureLogs } from '../support/logCapture.ts';
import { OtlpReceiver, SPAN_KIND, STATUS_ERROR, type ReceivedSpan } from '../support/otlpReceiver.ts';
import { pollUntil } from '../support/pollUntil.ts';
import { credentialsToSend } from '../support/secretScan.ts';
import { startTestService, type TestService } from '../support/testService.ts';

const { server: SERVER, client: CLIENT } = SPAN_KIND;
const ERROR = STATUS_ERROR;

let receiver: OtlpReceiver;
let telemetry: Telemetry;
let service: TestService;

before(async () => {
  receiver = await OtlpReceiver.grpc();
  // The resource comes from the standard variables, read by the SDK's environment detector.
  process.env.OTEL_SERVICE_NAME = 'lakebase-api-under-test';
  process.env.OTEL_RESOURCE_ATTRIBUTES = 'deployment.environment=test,app.owner=data%20team';
  const started = await startTelemetryIfConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url }, { version: APP_VERSION });
  assert.ok(started, 'OTEL_EXPORTER_OTLP_ENDPOINT set: telemetry starts');
  telemetry = started;
  assert.equal(telemetry.settings.traces.protocol, 'grpc', 'gRPC unless OTEL_EXPORTER_OTLP_PROTOCOL says otherwise');
  const logs = captureLogs('info', { through: (capture) => telemetry.logDestination(capture) });
  // ADMISSION_ENABLED=false: the pool-wait test below needs four scanning reads on the database at once,
  // which the scan share (one connection here) would queue in front of it; spans are what this file checks.
  service = await startTestService({ logs, env: { DB_COMMAND_TIMEOUT: '2', ADMISSION_ENABLED: 'false' } });
  await telemetry.exportMetrics(service.ctx.metrics!);
});

after(async () => {
  await service?.close();
  await telemetry?.shutdown();
  await receiver?.close();
});

/** Every span of the trace whose server span answered `requestId`, once exported. */
async function traceOf(requestId: string): Promise<{ server: ReceivedSpan; spans: ReceivedSpan[] }> {
  const server = await pollUntil(`the server span of request ${requestId}`, 10_000, async () => {
    await telemetry.flush();
    return receiver.spans.find((span) => span.kind === SERVER && span.attributes['request.id'] === requestId);
  });
  return { server, spans: receiver.spans.filter((span) => span.traceId === server.traceId) };
}

function childOf(spans: ReceivedSpan[], parent: ReceivedSpan, name: (name: string) => boolean): ReceivedSpan {
  const child = spans.find((span) => span.parentSpanId === parent.spanId && name(span.name));
  assert.ok(child, `a child span of "${parent.name}" (got ${spans.map((s) => `${s.name}<-${s.parentSpanId}`).join(', ')})`);
  return child;
}

test('a cache miss: server span, the cache load, and the statement by name, each the child of the one before', async () => {
  const res = await service.api.get('/trips/7');
  assert.equal(res.status, 200);
  const { server, spans } = await traceOf(res.headers['x-request-id']!);
  assert.equal(server.name, 'GET /trips/{trip_id}');
  assert.equal(server.parentSpanId, '', 'no traceparent: a new trace');
  assert.deepEqual(
    {
      method: server.attributes['http.request.method'],
      route: server.attributes['http.route'],
      status: server.attributes['http.response.status_code'],
      cache: server.attributes['cache.outcome'],
    },
    { method: 'GET', route: '/trips/{trip_id}', status: 200, cache: 'miss' },
  );
  assert.notEqual(server.statusCode, ERROR);
  const load = childOf(spans, server, (name) => name === 'cache.load');
  assert.equal(load.attributes['cache.operation'], 'getTrip');
  const statement = childOf(spans, load, (name) => name.startsWith('trips_by_ids_json'));
  assert.equal(statement.kind, CLIENT);
  assert.equal(statement.attributes['db.system.name'], 'postgresql');
  assert.equal(statement.attributes['db.operation.name'], 'SELECT');
  assert.match(String(statement.attributes['db.query.summary']), /^trips_by_ids_json:public\.nyc_train_synced$/);
  assert.equal(statement.attributes['db.query.text'], undefined, 'no statement text, let alone values');
  assert.ok(!spans.some((span) => span.name === 'db.pool.acquire'), 'an idle connection was there: no wait, no span');
  assert.equal(server.resource['service.name'], 'lakebase-api-under-test', 'OTEL_SERVICE_NAME');
  assert.equal(server.resource['deployment.environment'], 'test', 'OTEL_RESOURCE_ATTRIBUTES');
  assert.equal(server.resource['app.owner'], 'data team');
  assert.equal(server.resource['service.version'], APP_VERSION);
});

test('waiting for a connection: a db.pool.acquire span under the statement that waited', async () => {
  const locker = await service.database.admin.connect();
  try {
    // Every connection the pool holds busy on a locked table, so the next statements must wait for (or open) one.
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE nyc_train_synced IN ACCESS EXCLUSIVE MODE');
    // Stream pages, not point lookups: concurrent lookups share one batched statement.
    const reads = [40, 41, 42, 43].map((id) => service.api.get(`/trips/stream?cursor=${id}&page_size=5`, { headers: { 'cache-control': 'no-cache' } }));
    await pollUntil('the reads waiting on the lock', 1500, async () => {
      const { rows } = await service.database.admin.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%nyc_train_synced%'",
      );
      return rows[0].n >= 4 ? true : undefined;
    });
    await locker.query('ROLLBACK');
    const answers = await Promise.all(reads);
    const traces = await Promise.all(answers.map((res) => traceOf(res.headers['x-request-id']!)));
    const waits = traces.flatMap(({ spans }) => spans.filter((span) => span.name === 'db.pool.acquire').map((acquire) => ({ acquire, spans })));
    assert.ok(waits.length >= 2, `${waits.length} of 4 reads waited for a connection (2 were idle)`);
    for (const { acquire, spans } of waits) {
      const parent = spans.find((span) => span.spanId === acquire.parentSpanId);
      assert.match(parent?.name ?? '', /^trip_stream_json/);
    }
  } finally {
    await locker.query('ROLLBACK').catch(() => undefined);
    locker.release();
  }
});

test('a cache hit: the server span alone says hit; no load, no statement', async () => {
  await service.api.get('/trips/8');
  const res = await service.api.get('/trips/8');
  assert.equal(res.headers['x-cache'], 'HIT');
  const { server, spans } = await traceOf(res.headers['x-request-id']!);
  assert.equal(server.attributes['cache.outcome'], 'hit');
  assert.deepEqual(
    spans.map((span) => span.name),
    ['GET /trips/{trip_id}'],
  );
});

test('a coalesced read: it waits for the load another request started, says so, and has no load or statement of its own', async () => {
  const locker = await service.database.admin.connect();
  try {
    // Hold the first read's statement on a lock so the second certainly arrives while it runs.
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE nyc_train_synced IN ACCESS EXCLUSIVE MODE');
    const first = service.api.get('/trips/30');
    await pollUntil('the first read waiting on the lock', 1500, async () => {
      const { rows } = await service.database.admin.query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%nyc_train_synced%'");
      return rows.length > 0 ? true : undefined;
    });
    const coalescedBefore = service.ctx.cache!.stats().coalesced;
    const second = service.api.get('/trips/30');
    await pollUntil('the second read joining the first', 1500, () => (service.ctx.cache!.stats().coalesced > coalescedBefore ? true : undefined));
    await locker.query('ROLLBACK');
    const [, joined] = await Promise.all([first, second]);
    assert.equal(joined.status, 200);
    const { server, spans } = await traceOf(joined.headers['x-request-id']!);
    assert.equal(server.attributes['cache.outcome'], 'coalesced');
    assert.deepEqual(
      spans.map((span) => span.name),
      ['GET /trips/{trip_id}'],
      "the load and its statement are in the first request's trace",
    );
  } finally {
    await locker.query('ROLLBACK').catch(() => undefined);
    locker.release();
  }
});

test('a write: the UPDATE statement under the server span, no cache lookup, and the new value in no attribute', async () => {
  const vendor = 'vendor-7f3a9c';
  const res = await service.api.post('/trips/9/vendor', { vendor_id: vendor });
  assert.equal(res.status, 200);
  assert.equal(res.body.vendor_id, vendor);
  const { server, spans } = await traceOf(res.headers['x-request-id']!);
  assert.equal(server.name, 'POST /trips/{trip_id}/vendor');
  const statement = childOf(spans, server, (name) => name.startsWith('trip_update_vendor'));
  assert.equal(statement.attributes['db.operation.name'], 'UPDATE');
  assert.ok(!spans.some((span) => span.name === 'cache.load'));
  assert.ok(!JSON.stringify(spans).includes(vendor), 'the written value is in no span');
});

test('failed requests: a 400 and a 404 are answered spans, a statement timeout (504) marks the statement and the request failed, its error line a log record in the trace', async () => {
  const bad = await service.api.get('/trips/not-a-number');
  assert.equal(bad.status, 400);
  const badTrace = await traceOf(bad.headers['x-request-id']!);
  assert.equal(badTrace.server.name, 'GET /trips/{trip_id}');
  assert.equal(badTrace.server.attributes['http.response.status_code'], 400);
  assert.notEqual(badTrace.server.statusCode, ERROR, 'a 4xx is not a server error');

  const unknown = await service.api.get('/no/such/path');
  assert.equal(unknown.status, 404);
  const unknownTrace = await traceOf(unknown.headers['x-request-id']!);
  assert.equal(unknownTrace.server.name, 'GET', 'no route: the span is named by its method alone');
  assert.equal(unknownTrace.server.attributes['http.route'], undefined);

  // A real failure: the table locked by another session until the statement timeout (2 s) cancels the read.
  const locker = await service.database.admin.connect();
  try {
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE nyc_train_synced IN ACCESS EXCLUSIVE MODE');
    const timedOut = await service.api.get('/trips/10');
    assert.equal(timedOut.status, 504);
    const { server, spans } = await traceOf(timedOut.headers['x-request-id']!);
    assert.equal(server.statusCode, ERROR);
    assert.equal(server.attributes['error.type'], '504');
    const load = childOf(spans, server, (name) => name === 'cache.load');
    const statement = childOf(spans, load, (name) => name.startsWith('trips_by_ids_json'));
    assert.equal(statement.statusCode, ERROR);
    assert.equal(statement.attributes['error.type'], '504');
    // The error line logged while answering is a log record carrying the request's trace and span.
    const requestId = timedOut.headers['x-request-id']!;
    const record = await pollUntil('the error line as a log record', 10_000, async () => {
      await telemetry.flush();
      return receiver.logs.find((log) => log.attributes.reqId === requestId && log.severityText === 'ERROR');
    });
    assert.equal(record.traceId, server.traceId);
    assert.equal(record.spanId, server.spanId);
    assert.match(String(record.body), /^GET \/trips\/10 failed: /);
    assert.equal(record.resource['service.name'], 'lakebase-api-under-test');
  } finally {
    await locker.query('ROLLBACK');
    locker.release();
  }
});

test("an incoming traceparent: the request's span joins the caller's trace as the child of the caller's span", async () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const parentId = '00f067aa0ba902b7';
  const res = await service.api.get('/trips/count', { headers: { traceparent: `00-${traceId}-${parentId}-01` } });
  assert.equal(res.status, 200);
  const { server } = await traceOf(res.headers['x-request-id']!);
  assert.equal(server.traceId, traceId);
  assert.equal(server.parentSpanId, parentId);
});

test('log lines carry trace and span ids; the one line per request is not a log record (its server span says the same)', async () => {
  const res = await service.api.get('/trips/11');
  const requestId = res.headers['x-request-id']!;
  const { server } = await traceOf(requestId);
  const line = service.logs.records().find((r) => r.reqId === requestId && r.route);
  assert.equal(line?.trace_id, server.traceId);
  assert.equal(line?.span_id, server.spanId);
  await telemetry.flush();
  assert.ok(receiver.logs.length > 0, 'other lines are exported');
  assert.ok(!receiver.logs.some((log) => log.attributes.reqId === requestId), 'the request line is not');
});

test('what /metrics exposes arrives as OTLP metrics: requests, latency, pool, cache, and the dropped-telemetry count', async () => {
  await service.api.get('/trips/12');
  await telemetry.flush();
  const named = (name: string) => receiver.metrics.filter((metric) => metric.name === name).at(-1);
  const requests = await pollUntil('lakebase_api_http_requests_total', 10_000, () => named('lakebase_api_http_requests_total'));
  assert.equal(requests.kind, 'sum');
  const tripReads = requests.points.find((p) => p.attributes.route === '/trips/{trip_id}' && p.attributes.status === '200' && p.attributes.method === 'GET');
  assert.ok(tripReads && tripReads.value! >= 1);
  const latency = named('lakebase_api_http_request_duration_seconds');
  assert.equal(latency?.kind, 'histogram');
  const latencyPoint = latency.points.find((p) => p.attributes.route === '/trips/{trip_id}' && p.attributes.status === '200');
  assert.ok(latencyPoint && latencyPoint.count! >= 1);
  assert.equal(
    latencyPoint.bucketCounts!.reduce((a, b) => a + b, 0),
    latencyPoint.count,
    'per-bucket counts add up to the count',
  );
  assert.equal(named('lakebase_api_db_pool_connections')?.kind, 'gauge');
  assert.ok(named('lakebase_api_cache_hits_total')!.points[0]!.value! >= 1);
  assert.equal(named('lakebase_api_db_pool_max_connections')?.points[0]?.value, 6);
  const dropped = named('lakebase_api_telemetry_dropped_total');
  assert.deepEqual(dropped?.points.map((p) => p.attributes.signal).sort(), ['logs', 'metrics', 'traces']);
  assert.equal(requests.resource['service.name'], 'lakebase-api-under-test');
});

test('no credential, forwarded header, query value or SQL value in any span, log record or metric', async () => {
  const { headers, secrets } = credentialsToSend();
  const email = 'someone.secret@example.com';
  const res = await service.api.get('/trips/13?unexpected=sekr1t-query-value', {
    headers: { ...headers, 'x-forwarded-email': email, 'x-forwarded-user': 'user-1234567', 'x-forwarded-for': '203.0.113.77' },
  });
  const write = await service.api.post('/trips/14/vendor', { vendor_id: 'sql-value-5e1d' }, { headers });
  assert.equal(write.status, 200);
  await traceOf(res.headers['x-request-id']!);
  await traceOf(write.headers['x-request-id']!);
  await telemetry.flush();
  const exported = JSON.stringify({ spans: receiver.spans, logs: receiver.logs, metrics: receiver.metrics });
  for (const [name, value] of Object.entries({
    ...secrets,
    'database password': service.database.server.password,
    'forwarded e-mail': email,
    'forwarded user': 'user-1234567',
    'forwarded address': '203.0.113.77',
    'query value': 'sekr1t-query-value',
    'SQL value': 'sql-value-5e1d',
  })) {
    assert.ok(!exported.includes(value), `${name} must not be exported`);
  }
  const keys = [...receiver.spans, ...receiver.logs].flatMap((item) => Object.keys(item.attributes));
  assert.ok(!keys.some((key) => /authorization|forwarded|token|password|secret|cookie/i.test(key)), `attribute keys: ${[...new Set(keys)].join(', ')}`);
});
