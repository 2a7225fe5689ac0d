/**
 * Export over OTLP with the official OpenTelemetry SDK. Loaded (with every @opentelemetry module)
 * only by startTelemetryIfConfigured, when OTEL_EXPORTER_OTLP_ENDPOINT is set.
 *
 * Spans come from the service's own seams (lib/telemetry/tracing.ts: router, cache load, pool
 * checkout, statements, credential refreshes), not from auto-instrumentation, which patches
 * modules as they load: that needs a preload flag on the command line, costs every call of every
 * patched module, and still would not know a route template, a cache outcome or a statement's name.
 */
import {
  context,
  defaultTextMapGetter,
  INVALID_SPAN_CONTEXT,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Tracer,
} from '@opentelemetry/api';
import { SeverityNumber, type Logger as OtelLogger } from '@opentelemetry/api-logs';
import { ExportResultCode, W3CTraceContextPropagator } from '@opentelemetry/core';
import { defaultResource, detectResources, envDetector, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider, type LogRecordExporter } from '@opentelemetry/sdk-logs';
import { MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
  type SpanExporter,
} from '@opentelemetry/sdk-trace';
import type { DestinationStream } from 'pino';
import { Counter } from 'prom-client';
import { ConfigError } from '../ground/settingsReaders.ts';
import { batchedStdout } from '../ops/logger.ts';
import type { Metrics } from '../ops/metrics.ts';
import { boundedLogProcessor, boundedSpanProcessor, DroppedTelemetry, ExportBound, settlingExporter } from './boundedExport.ts';
import { markFailed, spansFromChannels, unsampled } from './channelSpans.ts';
import { PrometheusBridge } from './prometheusBridge.ts';
import { ADMITTED, RateLimitedSampler } from './rateLimitedSampler.ts';
import { RequestScopeContextManager } from './requestScopeContextManager.ts';
import type { SignalSettings, Telemetry, TelemetrySettings } from './telemetrySettings.ts';
import { installTracing, NO_FIELDS, NO_SPAN, type RequestOutcome, type SpanAttributes, type Tracing } from './tracing.ts';

const SCOPE = 'lakebase-api';
/** How long shutdown waits for the last export. */
const SHUTDOWN_FLUSH_MS = 2000;
const DROPPED_METRIC = 'lakebase_api_telemetry_dropped_total';
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** pino's numeric levels as OpenTelemetry severities. */
const SEVERITIES: Record<number, [SeverityNumber, string]> = {
  10: [SeverityNumber.TRACE, 'TRACE'],
  20: [SeverityNumber.DEBUG, 'DEBUG'],
  30: [SeverityNumber.INFO, 'INFO'],
  40: [SeverityNumber.WARN, 'WARN'],
  50: [SeverityNumber.ERROR, 'ERROR'],
  60: [SeverityNumber.FATAL, 'FATAL'],
};

/**
 * The span a request left out by the default sampler runs under: one constant, non-recording, with
 * no ids. Its seams see it and record nothing (`unsampled`); its log lines carry no trace ids.
 */
const LEFT_OUT = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
const LEFT_OUT_CONTEXT = trace.setSpan(ROOT_CONTEXT, LEFT_OUT);
const ADMITTED_CONTEXT = ROOT_CONTEXT.setValue(ADMITTED, true);

class OtelTracing implements Tracing {
  readonly enabled = true;
  private readonly propagator = new W3CTraceContextPropagator();

  /**
   * @param budget The default sampler's budget of new traces, when it is the sampler in force: a
   *   request without a traceparent asks it first, and one left out starts no span at all (no ids,
   *   no SDK span, no context of its own), which is most requests under load.
   */
  constructor(
    private readonly tracer: Tracer,
    private readonly budget: RateLimitedSampler | undefined,
  ) {}

  serve<T>(
    method: string,
    headers: Readonly<Record<string, string | string[] | undefined>>,
    work: (span: { finish(outcome: RequestOutcome): void }) => Promise<T>,
  ): Promise<T> {
    let parent: Context;
    if (headers.traceparent !== undefined) {
      // Only the W3C trace context is read from the headers; no header is ever copied into a span.
      parent = this.propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
    } else if (this.budget) {
      if (!this.budget.admit()) return context.with(LEFT_OUT_CONTEXT, () => work(NO_SPAN));
      parent = ADMITTED_CONTEXT;
    } else {
      parent = ROOT_CONTEXT;
    }
    const known = KNOWN_METHODS.has(method);
    const span = this.tracer.startSpan(
      known ? method : 'HTTP',
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': known ? method : '_OTHER' } },
      parent,
    );
    let finished = false;
    const finish = (outcome: RequestOutcome) => {
      finished = true;
      if (outcome.route) {
        span.updateName(`${known ? method : 'HTTP'} ${outcome.route}`);
        span.setAttribute('http.route', outcome.route);
      }
      const attributes: Attributes = { 'http.response.status_code': outcome.status, 'request.id': outcome.requestId };
      if (outcome.user) attributes['enduser.id'] = outcome.user;
      if (outcome.cache) attributes['cache.outcome'] = outcome.cache.toLowerCase();
      span.setAttributes(attributes);
      // Server spans fail on 5xx only: a 4xx is the caller's mistake, answered as designed.
      if (outcome.status >= 500) {
        span.setAttribute('error.type', String(outcome.status));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    };
    return context
      .with(trace.setSpan(parent, span), () => work({ finish }))
      .finally(() => {
        if (!finished) span.end();
      });
  }

  inSpan<T>(
    name: string,
    attributes: SpanAttributes,
    work: (span: { set(name: string, value: string | number | boolean): void }) => Promise<T>,
    kind: 'internal' | 'client' = 'internal',
  ): Promise<T> {
    const parent = context.active();
    if (unsampled(parent)) return work(NO_SPAN);
    const span = this.tracer.startSpan(name, { kind: kind === 'client' ? SpanKind.CLIENT : SpanKind.INTERNAL, attributes }, parent);
    return context.with(trace.setSpan(parent, span), async () => {
      try {
        return await work({ set: (key, value) => span.setAttribute(key, value) });
      } catch (err) {
        markFailed(span, err);
        throw err;
      } finally {
        span.end();
      }
    });
  }

  logFields(): { trace_id?: string; span_id?: string } {
    const span = trace.getSpan(context.active());
    if (!span || span === LEFT_OUT) return NO_FIELDS;
    const { traceId, spanId } = span.spanContext();
    return { trace_id: traceId, span_id: spanId };
  }
}

async function spanExporter({ protocol, url }: SignalSettings): Promise<SpanExporter> {
  if (protocol === 'grpc') return new (await import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter({ url });
  if (protocol === 'http/protobuf') return new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter({ url });
  return new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter({ url });
}

async function metricExporter({ protocol, url }: SignalSettings): Promise<PushMetricExporter> {
  if (protocol === 'grpc') return new (await import('@opentelemetry/exporter-metrics-otlp-grpc')).OTLPMetricExporter({ url });
  if (protocol === 'http/protobuf') return new (await import('@opentelemetry/exporter-metrics-otlp-proto')).OTLPMetricExporter({ url });
  return new (await import('@opentelemetry/exporter-metrics-otlp-http')).OTLPMetricExporter({ url });
}

async function logExporter({ protocol, url }: SignalSettings): Promise<LogRecordExporter> {
  if (protocol === 'grpc') return new (await import('@opentelemetry/exporter-logs-otlp-grpc')).OTLPLogExporter({ url });
  if (protocol === 'http/protobuf') return new (await import('@opentelemetry/exporter-logs-otlp-proto')).OTLPLogExporter({ url });
  return new (await import('@opentelemetry/exporter-logs-otlp-http')).OTLPLogExporter({ url });
}

/** A metric exporter whose failed exports count their data points as dropped. */
function countingMetricExporter(exporter: PushMetricExporter, dropped: DroppedTelemetry): PushMetricExporter {
  return new Proxy(exporter, {
    get(target, property, receiver) {
      if (property !== 'export') return Reflect.get(target, property, receiver);
      const exportMetrics: PushMetricExporter['export'] = (metrics, done) =>
        target.export(metrics, (result) => {
          if (result.code !== ExportResultCode.SUCCESS) {
            const points = metrics.scopeMetrics.reduce((sum, scope) => sum + scope.metrics.reduce((n, metric) => n + metric.dataPoints.length, 0), 0);
            dropped.add('metrics', points);
          }
          done(result);
        });
      return exportMetrics;
    },
  });
}

/**
 * The resource every signal carries: `service.name` lakebase-api and the app's version, then
 * whatever OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES say (they win), read by the SDK's own
 * environment detector.
 */
function serviceResource(version: string): Resource {
  return defaultResource()
    .merge(resourceFromAttributes({ 'service.name': SCOPE, 'service.version': version }))
    .merge(detectResources({ detectors: [envDetector] }));
}

/**
 * OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG as the specification defines them (this SDK line
 * leaves reading them to its Node meta-package, which the service does not use). Unset, the
 * service's own default: a caller's sampling decision followed, and new traces started for every
 * request up to `tracesPerSecond` (TRACES_PER_SECOND) a second, so telemetry's cost is bounded
 * per second instead of growing with the request rate. `parentbased_always_on` (the
 * specification's default) traces every request.
 */
function samplerFromEnv(env: Readonly<Record<string, string | undefined>>, tracesPerSecond: number): { sampler: Sampler; budget?: RateLimitedSampler } {
  const name = env.OTEL_TRACES_SAMPLER?.trim();
  if (!name) {
    const budget = new RateLimitedSampler(tracesPerSecond);
    return { sampler: new ParentBasedSampler({ root: budget }), budget };
  }
  return { sampler: specificationSampler(name, env) };
}

/** One of the specification's samplers, by its OTEL_TRACES_SAMPLER name. */
function specificationSampler(name: string, env: Readonly<Record<string, string | undefined>>): Sampler {
  const arg = env.OTEL_TRACES_SAMPLER_ARG?.trim();
  const ratio = () => {
    const value = arg ? Number(arg) : 1;
    if (!(value >= 0 && value <= 1)) throw new ConfigError('OTEL_TRACES_SAMPLER_ARG', `must be a ratio between 0 and 1, got "${arg}"`);
    return new TraceIdRatioBasedSampler(value);
  };
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio();
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio() });
    default:
      throw new ConfigError(
        'OTEL_TRACES_SAMPLER',
        `must be one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio; got "${name}"`,
      );
  }
}

/** Fields of a pino line that are not attributes of its log record (or must not be: `caller` is what forwarded headers claim). */
const NOT_ATTRIBUTES = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'service', 'trace_id', 'span_id', 'caller']);

/**
 * The router's one line per request (the only line with `route` and `ms`): not a log record. Its
 * server span carries the same (route, status, request id, user, cache outcome, duration), and
 * exporting it too doubled telemetry's cost per cached read. A 5xx also has its own error line,
 * which is exported.
 */
const isRequestLine = (line: string) => line.includes('"ms":') && line.includes('"route":');

function emitLine(logger: OtelLogger, line: string): void {
  if (isRequestLine(line)) return;
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return;
  }
  const [severityNumber, severityText] = SEVERITIES[record.level as number] ?? [SeverityNumber.UNSPECIFIED, String(record.level)];
  const attributes: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) if (!NOT_ATTRIBUTES.has(key)) attributes[key] = value;
  const time = typeof record.time === 'string' ? Date.parse(record.time) : Number.NaN;
  // Emitted synchronously where the line was logged: the active span links the record to its trace.
  logger.emit({
    timestamp: Number.isFinite(time) ? time : Date.now(),
    severityNumber,
    severityText,
    body: typeof record.msg === 'string' ? record.msg : '',
    attributes: attributes as Attributes,
  });
}

export async function startOtlpTelemetry(
  settings: TelemetrySettings,
  options: { env: Readonly<Record<string, string | undefined>>; version: string },
): Promise<Telemetry> {
  const resource = serviceResource(options.version);
  const dropped = new DroppedTelemetry();
  // Export batches run on a timer; a request only ever appends to a bounded queue.
  const batch = { maxQueueSize: settings.maxQueueSize, maxExportBatchSize: settings.maxExportBatchSize, scheduledDelayMillis: settings.scheduledDelayMs };

  const spanBound = new ExportBound(settings.maxQueueSize, 'traces', dropped);
  const spanProcessor = new BatchSpanProcessor({ exporter: settlingExporter(await spanExporter(settings.traces), spanBound), ...batch });
  const { sampler, budget } = samplerFromEnv(options.env, settings.tracesPerSecond);
  const tracerProvider = new TracerProvider({
    resource,
    sampler,
    spanProcessors: [boundedSpanProcessor(spanProcessor, spanBound)],
  });

  const logBound = new ExportBound(settings.maxQueueSize, 'logs', dropped);
  const logProcessor = new BatchLogRecordProcessor({ exporter: settlingExporter(await logExporter(settings.logs), logBound), ...batch });
  const loggerProvider = new LoggerProvider({ resource, processors: [boundedLogProcessor(logProcessor, logBound)] });
  const otelLogger = loggerProvider.getLogger(SCOPE, options.version);

  context.setGlobalContextManager(new RequestScopeContextManager());
  const tracer = tracerProvider.getTracer(SCOPE, options.version);
  installTracing(new OtelTracing(tracer, budget));
  const stopChannelSpans = spansFromChannels(tracer);

  let meterProvider: MeterProvider | undefined;
  let stopped: Promise<void> | undefined;

  return {
    settings,
    logDestination(stdout: DestinationStream = batchedStdout()): DestinationStream {
      return {
        write(line: string) {
          stdout.write(line);
          emitLine(otelLogger, line);
        },
      };
    },
    async exportMetrics(metrics: Metrics) {
      // A telemetry started again for the same registry (tests) replaces the count of the last one.
      metrics.registry.removeSingleMetric(DROPPED_METRIC);
      new Counter({
        name: DROPPED_METRIC,
        help: 'Spans, metric points and log records never delivered to the OTLP collector (queue full, collector down, refused or slow)',
        labelNames: ['signal'],
        registers: [metrics.registry],
        collect() {
          this.reset();
          for (const [signal, count] of Object.entries(dropped.counts)) this.inc({ signal }, count);
        },
      });
      const reader = new PeriodicExportingMetricReader({
        exporter: countingMetricExporter(await metricExporter(settings.metrics), dropped),
        exportIntervalMillis: settings.metricIntervalMs,
        exportTimeoutMillis: Math.min(30_000, settings.metricIntervalMs),
        metricProducers: [new PrometheusBridge(metrics.registry)],
      });
      meterProvider = new MeterProvider({ resource, readers: [reader] });
    },
    async flush() {
      await Promise.all([tracerProvider.forceFlush(), loggerProvider.forceFlush(), meterProvider?.forceFlush()]);
    },
    shutdown() {
      stopped ??= (async () => {
        stopChannelSpans();
        installTracing(null);
        // The last flush gets a moment; a collector that hangs must not hold the process's exit.
        const flushed = Promise.allSettled([tracerProvider.shutdown(), loggerProvider.shutdown(), meterProvider?.shutdown()]);
        await Promise.race([flushed, new Promise((resolve) => setTimeout(resolve, SHUTDOWN_FLUSH_MS).unref())]);
        context.disable();
      })();
      return stopped;
    },
  };
}
