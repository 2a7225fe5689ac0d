/**
 * Telemetry in every runtime, against a real OTLP receiver: the Lambda handler (examples/lambda)
 * exports the invocation's spans and log records before the invocation returns, since Lambda
 * freezes the sandbox then; the fetch example (examples/fetch-server.ts, its own process) exports
 * as server.ts does. With OTEL_EXPORTER_OTLP_ENDPOINT unset neither loads OpenTelemetry.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { loadConfig } from '../../lib/ground/config.ts';
import { createLambdaHandler } from '../../lib/http/adapters/lambda.ts';
import { openObservedContext } from '../../lib/observedContext.ts';
import { startFetchExample } from '../support/fetchExample.ts';
import { OtlpReceiver, SPAN_KIND } from '../support/otlpReceiver.ts';
import { pollUntil } from '../support/pollUntil.ts';
import { startTestDatabase, type TestDatabase } from '../support/testService.ts';
import { apiService } from '../../functions/index.ts';

const root = new URL('../../', import.meta.url);
type LambdaEntry = typeof import('../../examples/lambda/index.ts');
/** A fresh instance of the Lambda entry (a query makes it a module of its own): its container state is its own. */
const lambdaEntry = (instance: string): Promise<LambdaEntry> => import(new URL(`examples/lambda/index.ts?${instance}`, root).href);
const event = (path: string, requestId: string): APIGatewayProxyEventV2 => {
  const base = JSON.parse(readFileSync(new URL('../adapters/fixtures/apigw-v2-event.json', import.meta.url), 'utf8')) as APIGatewayProxyEventV2;
  return {
    ...base,
    rawPath: path,
    rawQueryString: '',
    headers: { ...base.headers, 'x-request-id': requestId },
    requestContext: { ...base.requestContext, stage: '$default' },
  };
};

/**
 * OpenTelemetry SDK and exporter modules loaded in this process (not the API package prom-client
 * requires itself, nor @grpc/grpc-js, which the receiver this test runs uses).
 */
const sdkModulesLoaded = () =>
  Object.keys(createRequire(import.meta.url).cache).filter((path) => /[\\/]node_modules[\\/]@opentelemetry[\\/](sdk-|exporter-|core|resources)/.test(path));

let database: TestDatabase;
let receiver: OtlpReceiver;
let databaseUrl: string;

before(async () => {
  database = await startTestDatabase(100);
  receiver = await OtlpReceiver.grpc();
  const { server } = database;
  databaseUrl = `postgresql://${server.user}:${server.password}@${server.host}:${server.port}/${server.database}`;
});

after(async () => {
  await receiver?.close();
  await database?.stop();
});

describe('the Lambda handler', () => {
  // The entry reads process.env, as on Lambda: set what it needs, put everything back after.
  const touched = ['DATABASE_URL', 'LOG_LEVEL', 'AUTH_MODE', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_SERVICE_NAME'];
  const saved = Object.fromEntries(touched.map((name) => [name, process.env[name]]));
  after(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  test('without OTEL_EXPORTER_OTLP_ENDPOINT it serves and loads no OpenTelemetry SDK', async () => {
    Object.assign(process.env, { DATABASE_URL: databaseUrl, LOG_LEVEL: 'silent', AUTH_MODE: 'none' });
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    const { handler } = await lambdaEntry('off');
    try {
      assert.equal((await handler(event('/trips/3', 'lambda-off-1'))).statusCode, 200);
      assert.deepEqual(sdkModulesLoaded(), []);
    } finally {
      await handler.close();
    }
  });

  test('with it set, each invocation has sent its spans and log records before it returns', async () => {
    Object.assign(process.env, { DATABASE_URL: databaseUrl, LOG_LEVEL: 'info', AUTH_MODE: 'none' });
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    process.env.OTEL_SERVICE_NAME = 'lakebase-api-lambda';
    const { handler } = await lambdaEntry('on');
    try {
      for (const [path, requestId] of [
        ['/trips/5', 'lambda-on-1'],
        ['/trips/5', 'lambda-on-2'],
        ['/trips/999999', 'lambda-on-3'],
      ] as const) {
        const result = await handler(event(path, requestId));
        assert.equal(result.headers?.['x-request-id'], requestId);
        // No polling: the flush before returning is the point (a frozen sandbox runs no timer).
        const server = receiver.spans.find((span) => span.kind === SPAN_KIND.server && span.attributes['request.id'] === requestId);
        assert.ok(server, `the server span of ${requestId} reached the collector before the invocation returned`);
        assert.equal(server.name, 'GET /trips/{trip_id}');
        assert.equal(server.attributes['http.response.status_code'], result.statusCode);
        assert.equal(server.resource['service.name'], 'lakebase-api-lambda');
        if (requestId === 'lambda-on-1') {
          const trace = receiver.spans.filter((span) => span.traceId === server.traceId);
          const load = trace.find((span) => span.name === 'cache.load' && span.parentSpanId === server.spanId);
          assert.ok(load, 'the cache miss loaded under the server span');
          assert.ok(
            trace.some((span) => span.kind === SPAN_KIND.client && span.parentSpanId === load.spanId && span.name.startsWith('trips_by_ids_json')),
            'the statement by name under the load',
          );
        }
        if (requestId === 'lambda-on-2') assert.equal(server.attributes['cache.outcome'], 'hit');
      }
      // The cold start's log lines are log records too, sent with the first invocation.
      assert.ok(receiver.logs.some((log) => String(log.body).startsWith('Connected to')));
    } finally {
      await handler.close();
    }
  });

  test('a collector that hangs delays an invocation by at most the flush limit', async () => {
    const hanging = await OtlpReceiver.grpc();
    hanging.mode = 'hang';
    const config = loadConfig({ DATABASE_URL: databaseUrl, LOG_LEVEL: 'silent', DB_POOL_SIZE: '1' });
    const env = { DATABASE_URL: databaseUrl, OTEL_EXPORTER_OTLP_ENDPOINT: hanging.url };
    const handler = createLambdaHandler(apiService, () => openObservedContext(config, env), { telemetryFlushMs: 300 });
    try {
      await handler(event('/trips/1', 'lambda-hang-0')); // the cold start, not measured
      const started = performance.now();
      const result = await handler(event('/trips/2', 'lambda-hang-1'));
      const ms = performance.now() - started;
      assert.equal(result.statusCode, 200);
      assert.ok(ms >= 250 && ms < 1500, `answered after the 300 ms flush limit, not the exporter's 10 s timeout (took ${ms.toFixed(0)} ms)`);
      assert.ok(hanging.requests.traces >= 1, 'the export was attempted');
    } finally {
      await handler.close();
      await hanging.close();
    }
  });
});

describe('the fetch example (examples/fetch-server.ts)', () => {
  let child: ChildProcess | undefined;
  after(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  test('exports its requests as server.ts does, and its last spans on SIGTERM', async () => {
    const example = await startFetchExample(
      {
        DATABASE_URL: databaseUrl,
        LOG_LEVEL: 'info',
        DB_POOL_SIZE: '1',
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_SERVICE_NAME: 'lakebase-api-fetch',
      },
      (spawned) => {
        child = spawned;
      },
    );
    const { base, exited } = example;

    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const read = await fetch(`${base}/trips/9`, { headers: { 'x-request-id': 'fetch-1', traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
    assert.equal(read.status, 200);
    const server = await pollUntil('the fetch example server span', 10_000, () =>
      receiver.spans.find((span) => span.kind === SPAN_KIND.server && span.attributes['request.id'] === 'fetch-1'),
    );
    assert.equal(server.name, 'GET /trips/{trip_id}');
    assert.equal(server.traceId, traceId, "the caller's traceparent is honoured");
    assert.equal(server.parentSpanId, '00f067aa0ba902b7');
    assert.equal(server.resource['service.name'], 'lakebase-api-fetch');
    // stdout lines logged inside the request carry its trace.
    assert.match(example.output(), new RegExp(`"trace_id":"${traceId}"`));

    // A request just before SIGTERM: its span is sent by the shutdown's flush.
    assert.equal((await fetch(`${base}/trips/count`, { headers: { 'x-request-id': 'fetch-2' } })).status, 200);
    example.child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.ok(receiver.spans.some((span) => span.kind === SPAN_KIND.server && span.attributes['request.id'] === 'fetch-2'));
  });
});
