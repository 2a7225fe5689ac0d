import type { DestinationStream } from 'pino';
import { ConfigError, type Env } from '../ground/settingsReaders.ts';
import type { Metrics } from '../ops/metrics.ts';

type OtlpProtocol = 'grpc' | 'http/protobuf' | 'http/json';
const PROTOCOLS: readonly OtlpProtocol[] = ['grpc', 'http/protobuf', 'http/json'];

export interface SignalSettings {
  protocol: OtlpProtocol;
  /** Where this signal's exports go: as given for gRPC, with `/v1/<signal>` appended for HTTP. */
  url: string;
}

export interface TelemetrySettings {
  traces: SignalSettings;
  metrics: SignalSettings;
  logs: SignalSettings;
  /** OTEL_METRIC_EXPORT_INTERVAL: milliseconds between metric exports (default 60 000). */
  metricIntervalMs: number;
  /** The longest queue of spans (and of log records) waiting for export; beyond it they are dropped and counted. */
  maxQueueSize: number;
  /** OTEL_BSP_MAX_EXPORT_BATCH_SIZE: an export starts as soon as this many are waiting (at most the queue size). */
  maxExportBatchSize: number;
  /** OTEL_BSP_SCHEDULE_DELAY: milliseconds between exports of whatever is waiting. */
  scheduledDelayMs: number;
  /** TRACES_PER_SECOND: new traces started per second at most, unless OTEL_TRACES_SAMPLER names a sampler. */
  tracesPerSecond: number;
}

/** A running export to an OTLP collector. */
export interface Telemetry {
  readonly settings: TelemetrySettings;
  /** Where the logger writes: stdout as before (in batches, as without telemetry), and each line as an OTLP log record. */
  logDestination(stdout?: DestinationStream): DestinationStream;
  /**
   * Exports this registry's instruments (what /metrics shows) and adds to it the count of
   * telemetry dropped because the collector was down, slow or full.
   */
  exportMetrics(metrics: Metrics): Promise<void>;
  /** Sends what is queued now (tests, shutdown). */
  flush(): Promise<void>;
  /** Flushes, then stops exporting and removes the tracing. */
  shutdown(): Promise<void>;
}

function positiveInteger(env: Env, name: string, fallback: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new ConfigError(name, `must be a positive whole number, got "${raw}"`);
  return value;
}

function signalSettings(env: Env, signal: 'traces' | 'metrics' | 'logs', endpoint: string): SignalSettings {
  const upper = signal.toUpperCase();
  const variable = env[`OTEL_EXPORTER_OTLP_${upper}_PROTOCOL`]?.trim() ? `OTEL_EXPORTER_OTLP_${upper}_PROTOCOL` : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  // gRPC by default: the protocol a Databricks App's collector speaks (the OpenTelemetry
  // specification's own default would be http/protobuf).
  const protocol = (env[variable]?.trim() || 'grpc') as OtlpProtocol;
  if (!PROTOCOLS.includes(protocol)) throw new ConfigError(variable, `must be one of ${PROTOCOLS.join(', ')}, got "${protocol}"`);
  const own = env[`OTEL_EXPORTER_OTLP_${upper}_ENDPOINT`]?.trim();
  if (own) return { protocol, url: own };
  return { protocol, url: protocol === 'grpc' ? endpoint : `${endpoint.replace(/\/+$/, '')}/v1/${signal}` };
}

/**
 * The OpenTelemetry settings from the environment, as the specification names them, or null
 * when OTEL_EXPORTER_OTLP_ENDPOINT is not set (or OTEL_SDK_DISABLED=true): then nothing is exported.
 */
export function readTelemetrySettings(env: Env): TelemetrySettings | null {
  const endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (!endpoint || env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return null;
  try {
    new URL(endpoint);
  } catch {
    throw new ConfigError('OTEL_EXPORTER_OTLP_ENDPOINT', `must be a URL such as http://localhost:4317, got "${endpoint}"`);
  }
  const maxQueueSize = positiveInteger(env, 'OTEL_BSP_MAX_QUEUE_SIZE', 2048);
  return {
    traces: signalSettings(env, 'traces', endpoint),
    metrics: signalSettings(env, 'metrics', endpoint),
    logs: signalSettings(env, 'logs', endpoint),
    metricIntervalMs: positiveInteger(env, 'OTEL_METRIC_EXPORT_INTERVAL', 60_000),
    maxQueueSize,
    maxExportBatchSize: Math.min(maxQueueSize, positiveInteger(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 512)),
    scheduledDelayMs: positiveInteger(env, 'OTEL_BSP_SCHEDULE_DELAY', 1000),
    tracesPerSecond: positiveInteger(env, 'TRACES_PER_SECOND', 100),
  };
}
