/**
 * A collector that refuses or hangs costs requests nothing: spans wait in a bounded queue that
 * requests only append to, and whatever cannot be delivered is dropped and counted in
 * lakebase_api_telemetry_dropped_total, never waited for.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import { startTelemetryIfConfigured } from '../../lib/telemetry/startTelemetry.ts';
import type { Telemetry } from '../../lib/telemetry/telemetrySettings.ts';
import { APP_VERSION } from '../../lib/version.ts';
import { reportFigures } from '../support/figures.ts';
import { OtlpReceiver } from '../support/otlpReceiver.ts';
import { pollUntil } from '../support/pollUntil.ts';
import { parsePrometheusText, sampleValue } from '../support/prometheusText.ts';
import { startTestService, type TestService } from '../support/testService.ts';

const QUEUE = 32;
/** Each export may take this long before the exporter gives up (the SDK reads it from the environment). */
const EXPORT_TIMEOUT_MS = 4000;

let receiver: OtlpReceiver;
let telemetry: Telemetry;
let service: TestService;

before(async () => {
  receiver = await OtlpReceiver.grpc();
  process.env.OTEL_EXPORTER_OTLP_TIMEOUT = String(EXPORT_TIMEOUT_MS);
  const started = await startTelemetryIfConfigured(
    // Every request traced (the default would start at most TRACES_PER_SECOND traces a second, and
    // these bursts are meant to overflow the queue).
    { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_MAX_QUEUE_SIZE: String(QUEUE), OTEL_TRACES_SAMPLER: 'parentbased_always_on' },
    { version: APP_VERSION },
  );
  assert.ok(started);
  telemetry = started;
  service = await startTestService();
  await telemetry.exportMetrics(service.ctx.metrics!);
});

after(async () => {
  await service?.close();
  const stopping = performance.now();
  await telemetry?.shutdown();
  assert.ok(performance.now() - stopping < 5000, 'shutdown does not wait for a hung collector');
  await receiver?.close();
});

async function droppedSpans(): Promise<number> {
  const { body } = await service.ctx.metrics!.exposition();
  return sampleValue(parsePrometheusText(body), 'lakebase_api_telemetry_dropped_total', { signal: 'traces' });
}

/** `count` cached reads, 8 at a time; the slowest one's time and the whole run's. */
async function readMany(count: number): Promise<{ slowestMs: number; totalMs: number }> {
  await service.api.get('/trips/count');
  let slowestMs = 0;
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < count) {
        next++;
        const one = performance.now();
        const res = await service.api.get('/trips/count');
        assert.equal(res.status, 200);
        slowestMs = Math.max(slowestMs, performance.now() - one);
      }
    }),
  );
  return { slowestMs, totalMs: performance.now() - started };
}

test('with a working collector, spans are delivered and nothing is dropped', async () => {
  // Fewer spans than the queue holds: a burst beyond it would be dropped (and counted) by design.
  const { totalMs } = await readMany(10);
  await telemetry.flush();
  assert.ok(receiver.spans.filter((span) => span.name === 'GET /trips/count').length >= 10);
  assert.equal(await droppedSpans(), 0);
  reportFigures('telemetry, collector accepting', { requests: 10, total_ms: totalMs });
});

test('a collector that refuses (UNAVAILABLE): requests are answered at once, the undelivered spans are counted', async () => {
  receiver.mode = 'refuse';
  const refusedBefore = receiver.requests.traces;
  const { slowestMs, totalMs } = await readMany(10);
  assert.ok(slowestMs < EXPORT_TIMEOUT_MS / 2, `slowest request ${slowestMs.toFixed(0)} ms`);
  // The exporter retries UNAVAILABLE with backoff within its timeout, then gives the batch up:
  // the span of each of those 11 requests (a cache hit is one server span) is counted.
  const dropped = await pollUntil('refused spans counted as dropped', EXPORT_TIMEOUT_MS * 3, async () => {
    const now = await droppedSpans();
    return now >= 11 ? now : undefined;
  });
  assert.ok(receiver.requests.traces > refusedBefore, 'the exports reached the collector and were refused');
  reportFigures('telemetry, collector refusing', { requests: 10, total_ms: totalMs, slowest_ms: slowestMs, spans_dropped: dropped });
});

test('a collector that hangs: requests are answered at once, spans beyond the queue are dropped and counted', async () => {
  receiver.mode = 'hang';
  const before = await droppedSpans();
  const hungBefore = receiver.requests.traces;
  const { slowestMs, totalMs } = await readMany(300);
  // An export is under way and unanswered, so the queue cannot drain: 300 requests' spans overflow it.
  await pollUntil('an export reaching the hung collector', 10_000, () => (receiver.requests.traces > hungBefore ? true : undefined));
  const dropped = (await droppedSpans()) - before;
  // 301 spans (one per cached read), 32 queued; an export timing out meanwhile may free room for 32 more.
  assert.ok(dropped >= 301 - 2 * QUEUE, `spans dropped and counted (${dropped})`);
  // Had any request waited for an export, it would have taken the exporter's timeout.
  assert.ok(slowestMs < EXPORT_TIMEOUT_MS / 2, `slowest request ${slowestMs.toFixed(0)} ms`);
  reportFigures('telemetry, collector hanging', { requests: 300, total_ms: totalMs, slowest_ms: slowestMs, spans_dropped: dropped });
});
