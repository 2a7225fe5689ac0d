/**
 * The default sampler: every request traced up to TRACES_PER_SECOND new traces a second, a trace
 * whole or absent (a request left out has no cache, statement or pool spans exported either), and a
 * caller's sampled traceparent followed whatever the budget. The token bucket itself on a fake clock.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SamplingDecision } from '@opentelemetry/sdk-trace';
import { RateLimitedSampler } from '../../lib/telemetry/rateLimitedSampler.ts';
import { startTelemetryIfConfigured } from '../../lib/telemetry/startTelemetry.ts';
import type { Telemetry } from '../../lib/telemetry/telemetrySettings.ts';
import { APP_VERSION } from '../../lib/version.ts';
import { captureLogs } from '../support/logCapture.ts';
import { OtlpReceiver, SPAN_KIND } from '../support/otlpReceiver.ts';
import { startTestService, type TestService } from '../support/testService.ts';

const PER_SECOND = 5;

let receiver: OtlpReceiver;
let telemetry: Telemetry;
let service: TestService;

before(async () => {
  receiver = await OtlpReceiver.grpc();
  const started = await startTelemetryIfConfigured(
    { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, TRACES_PER_SECOND: String(PER_SECOND) },
    { version: APP_VERSION },
  );
  assert.ok(started);
  telemetry = started;
  assert.equal(telemetry.settings.tracesPerSecond, PER_SECOND);
  const logs = captureLogs('info', { through: (capture) => telemetry.logDestination(capture) });
  service = await startTestService({ logs });
});

after(async () => {
  await service?.close();
  await telemetry?.shutdown();
  await receiver?.close();
});

test('the token bucket: a second’s worth at once, then one per 1/rate seconds, never more than a second’s worth saved', () => {
  let now = 0;
  const sampler = new RateLimitedSampler(4, () => now);
  const decide = () => sampler.shouldSample().decision === SamplingDecision.RECORD_AND_SAMPLED;
  assert.deepEqual(Array.from({ length: 6 }, decide), [true, true, true, true, false, false], 'a burst: the first 4');
  now += 250;
  assert.deepEqual([decide(), decide()], [true, false], 'a quarter second later: one more');
  now += 10_000;
  assert.equal(Array.from({ length: 10 }, decide).filter(Boolean).length, 4, 'after a long quiet spell: still 4, not 40');
});

test('a burst beyond the budget: about TRACES_PER_SECOND traced, every one of them whole, the others with no span at all', async () => {
  const received = receiver.spans.length;
  const started = performance.now();
  const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => service.api.get(`/trips/${100 + i}`)));
  const seconds = (performance.now() - started) / 1000;
  for (const res of answers) assert.equal(res.status, 200);
  await telemetry.flush();
  const ids = new Set(answers.map((res) => res.headers['x-request-id']));
  const servers = receiver.spans.filter((span) => span.kind === SPAN_KIND.server && ids.has(String(span.attributes['request.id'])));
  // The bucket holds 5 (start-up statements may have spent some) and refills at 5 a second while the burst runs.
  assert.ok(servers.length >= 1, 'the first requests of the burst are traced');
  assert.ok(servers.length <= PER_SECOND + Math.ceil(seconds * PER_SECOND) + 1, `${servers.length} traced in ${seconds.toFixed(2)} s`);
  const tracedIds = new Set(servers.map((span) => span.traceId));
  for (const server of servers) {
    // Each traced miss has its cache load (the statement may be another request's batch).
    assert.ok(
      receiver.spans.some((span) => span.traceId === server.traceId && span.parentSpanId === server.spanId && span.name === 'cache.load'),
      'a traced request is whole',
    );
  }
  // No span from the burst belongs to a trace without its server span: the left-out requests'
  // loads and statements were not recorded on their own.
  const burstLoads = receiver.spans.slice(received).filter((span) => span.name === 'cache.load');
  for (const load of burstLoads) assert.ok(tracedIds.has(load.traceId), 'no orphan cache.load');
  // Lines of requests left out still carry their request id, and no trace id: there is no trace.
  const untraced = answers.filter((res) => !servers.some((span) => span.attributes['request.id'] === res.headers['x-request-id']));
  assert.ok(untraced.length > 0);
  for (const res of untraced) {
    const line = service.logs.records().find((r) => r.reqId === res.headers['x-request-id'] && r.route);
    assert.ok(line, 'the request line is still written');
    assert.equal(line.trace_id, undefined);
    assert.equal(line.span_id, undefined);
  }
});

test('a caller’s sampled traceparent is followed even with the budget spent; an unsampled one is not', async () => {
  await Promise.all(Array.from({ length: 3 * PER_SECOND }, () => service.api.get('/trips/count'))); // spend the budget
  const sampledTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
  const unsampledTrace = '5bf92f3577b34da6a3ce929d0e0e4737';
  const [sampled, unsampled] = await Promise.all([
    service.api.get('/trips/3', { headers: { traceparent: `00-${sampledTrace}-00f067aa0ba902b7-01` } }),
    service.api.get('/trips/4', { headers: { traceparent: `00-${unsampledTrace}-00f067aa0ba902b8-00` } }),
  ]);
  assert.equal(sampled.status, 200);
  assert.equal(unsampled.status, 200);
  await telemetry.flush();
  const server = receiver.spans.find((span) => span.traceId === sampledTrace && span.kind === SPAN_KIND.server);
  assert.ok(server, "the caller's sampled trace is joined");
  assert.ok(receiver.spans.some((span) => span.traceId === sampledTrace && span.name === 'cache.load'));
  assert.ok(!receiver.spans.some((span) => span.traceId === unsampledTrace), "the caller's decision not to sample is followed");
  const line = service.logs.records().find((r) => r.reqId === unsampled.headers['x-request-id'] && r.route);
  assert.equal(line?.trace_id, unsampledTrace, "a left-out request's lines still name the caller's trace");
});
