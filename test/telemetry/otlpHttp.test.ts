/**
 * OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf or http/json: the same traces, metrics and logs reach
 * a real OTLP/HTTP receiver at `<endpoint>/v1/<signal>`, in the encoding the variable names.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { createLogger } from '../../lib/ops/logger.ts';
import { startTelemetryIfConfigured } from '../../lib/telemetry/startTelemetry.ts';
import { readTelemetrySettings } from '../../lib/telemetry/telemetrySettings.ts';
import { APP_VERSION } from '../../lib/version.ts';
import { OtlpReceiver } from '../support/otlpReceiver.ts';
import { pollUntil } from '../support/pollUntil.ts';
import { startTestService, type TestService } from '../support/testService.ts';

let receiver: OtlpReceiver;
let service: TestService;

before(async () => {
  receiver = await OtlpReceiver.http();
  service = await startTestService();
});

after(async () => {
  await service?.close();
  await receiver?.close();
});

for (const protocol of ['http/protobuf', 'http/json'] as const) {
  test(`${protocol}: spans, metrics and log records arrive at /v1/traces, /v1/metrics and /v1/logs`, async () => {
    const telemetry = await startTelemetryIfConfigured(
      { OTEL_EXPORTER_OTLP_ENDPOINT: `${receiver.url}/`, OTEL_EXPORTER_OTLP_PROTOCOL: protocol },
      { version: APP_VERSION },
    );
    assert.ok(telemetry);
    try {
      assert.equal(telemetry.settings.traces.url, `${receiver.url}/v1/traces`);
      await telemetry.exportMetrics(service.ctx.metrics!);
      const res = await service.api.get('/trips/21', { headers: { 'cache-control': 'no-cache' } });
      const requestId = res.headers['x-request-id']!;
      const logger = createLogger({ level: 'info', destination: telemetry.logDestination(new Writable({ write: (_chunk, _encoding, done) => done() })) });
      logger.info({ marker: protocol }, 'a line through OTLP/HTTP');
      const server = await pollUntil(`the server span over ${protocol}`, 10_000, async () => {
        await telemetry.flush();
        return receiver.spans.find((span) => span.attributes['request.id'] === requestId);
      });
      assert.equal(server.name, 'GET /trips/{trip_id}');
      assert.match(server.traceId, /^[0-9a-f]{32}$/);
      const statement = receiver.spans.find((span) => span.traceId === server.traceId && span.name.startsWith('trips_by_ids_json'));
      assert.ok(statement, 'the statement span in the same trace');
      assert.ok(receiver.logs.some((log) => log.attributes.marker === protocol && log.body === 'a line through OTLP/HTTP'));
      assert.ok(receiver.metrics.some((metric) => metric.name === 'lakebase_api_http_requests_total'));
      assert.ok(receiver.contentTypes.has(protocol === 'http/json' ? 'application/json' : 'application/x-protobuf'), [...receiver.contentTypes].join(', '));
    } finally {
      await telemetry.shutdown();
    }
  });
}

test('each signal may have its own protocol and endpoint, as the specification allows', () => {
  const settings = readTelemetrySettings({
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4314',
    OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'http/json',
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://metrics.local:4317',
  });
  assert.deepEqual(settings?.traces, { protocol: 'grpc', url: 'http://localhost:4314' });
  assert.deepEqual(settings?.logs, { protocol: 'http/json', url: 'http://localhost:4314/v1/logs' });
  assert.deepEqual(settings?.metrics, { protocol: 'grpc', url: 'http://metrics.local:4317' });
  assert.throws(
    () => readTelemetrySettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4314', OTEL_EXPORTER_OTLP_PROTOCOL: 'thrift' }),
    /OTEL_EXPORTER_OTLP_PROTOCOL/,
  );
  assert.throws(() => readTelemetrySettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'localhost 4314' }), /OTEL_EXPORTER_OTLP_ENDPOINT/);
});

test('the batch processor settings are the OTEL_BSP_* variables of the specification', () => {
  const defaults = readTelemetrySettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4314' });
  assert.deepEqual(
    { queue: defaults?.maxQueueSize, batch: defaults?.maxExportBatchSize, delay: defaults?.scheduledDelayMs },
    { queue: 2048, batch: 512, delay: 1000 },
  );
  const set = readTelemetrySettings({
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4314',
    OTEL_BSP_MAX_QUEUE_SIZE: '256',
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '1024',
    OTEL_BSP_SCHEDULE_DELAY: '200',
  });
  assert.deepEqual(
    { queue: set?.maxQueueSize, batch: set?.maxExportBatchSize, delay: set?.scheduledDelayMs },
    { queue: 256, batch: 256, delay: 200 },
    'a batch is never larger than the queue',
  );
  assert.throws(
    () => readTelemetrySettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4314', OTEL_BSP_SCHEDULE_DELAY: 'soon' }),
    /OTEL_BSP_SCHEDULE_DELAY/,
  );
});
