/**
 * Without OTEL_EXPORTER_OTLP_ENDPOINT nothing of OpenTelemetry is loaded: the service serves
 * requests (cache misses, hits, a write, /metrics) through its no-op seam only. With it set, the
 * same check sees the SDK, so the check itself can see what it looks for.
 *
 * One exception, older than telemetry: prom-client itself requires @opentelemetry/api (the no-op
 * API package, for exemplars in lib/metrics/processCpuTotal.js). That is allowed, and only that.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import { startTelemetryIfConfigured } from '../../lib/telemetry/startTelemetry.ts';
import { tracing } from '../../lib/telemetry/tracing.ts';
import { APP_VERSION } from '../../lib/version.ts';
import { startTestService, type TestService } from '../support/testService.ts';

const loadedModules = () => Object.values(createRequire(import.meta.url).cache).filter((module) => module !== undefined);

/**
 * Modules loaded so far from OpenTelemetry and from the gRPC library its exporter uses, but for
 * prom-client's own @opentelemetry/api. The OpenTelemetry packages are CommonJS: imported or
 * required, they land in require's cache.
 */
function telemetryModulesLoaded(): string[] {
  const api = loadedModules().find((module) => /[\\/]@opentelemetry[\\/]api[\\/]build[\\/]src[\\/]index\.js$/.test(module.id));
  const apiByPromClient = api !== undefined && /[\\/]node_modules[\\/]prom-client[\\/]/.test(api.parent?.id ?? '');
  return loadedModules()
    .map((module) => module.id)
    .filter((path) => /[\\/]node_modules[\\/](@opentelemetry|@grpc)[\\/]/.test(path))
    .filter((path) => !(apiByPromClient && /[\\/]@opentelemetry[\\/]api[\\/]/.test(path)));
}

let service: TestService;

before(async () => {
  service = await startTestService();
});

after(async () => {
  await service?.close();
});

test('OTEL_EXPORTER_OTLP_ENDPOINT unset: requests are served and no OpenTelemetry module is ever loaded', async () => {
  assert.equal(await startTelemetryIfConfigured({ OTEL_SERVICE_NAME: 'set but no endpoint' }, { version: APP_VERSION }), null);
  assert.equal(tracing().enabled, false);
  for (const path of ['/trips/1', '/trips/1', '/trips/count', '/trips/pages']) assert.equal((await service.api.get(path)).status, 200);
  assert.equal((await service.api.post('/trips/2/vendor', { vendor_id: '2' })).status, 200);
  await service.ctx.metrics!.exposition();
  assert.deepEqual(telemetryModulesLoaded(), []);
});

test('OTEL_SDK_DISABLED=true keeps it off even with an endpoint', async () => {
  assert.equal(
    await startTelemetryIfConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4317', OTEL_SDK_DISABLED: 'true' }, { version: APP_VERSION }),
    null,
  );
  assert.deepEqual(telemetryModulesLoaded(), []);
});

test('the check sees the SDK once an endpoint is set', async () => {
  const telemetry = await startTelemetryIfConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' }, { version: APP_VERSION });
  try {
    assert.ok(telemetry);
    const loaded = telemetryModulesLoaded();
    assert.ok(loaded.some((path) => path.includes('@opentelemetry/sdk-trace')));
    assert.ok(
      loaded.some((path) => path.includes('exporter-trace-otlp-grpc')),
      'gRPC, the default protocol',
    );
    assert.ok(!loaded.some((path) => path.includes('exporter-trace-otlp-proto')), "only the chosen protocol's exporters");
  } finally {
    await telemetry?.shutdown();
  }
});
