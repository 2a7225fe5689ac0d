/**
 * A real OTLP receiver for tests: the collector's gRPC services (TraceService, MetricsService,
 * LogsService) on @grpc/grpc-js, and the OTLP/HTTP endpoints (`/v1/traces`, …) for
 * `http/protobuf` and `http/json`. Requests are decoded with the protobuf code the OpenTelemetry
 * project generates from its own .proto files (shipped in @opentelemetry/otlp-transformer 0.57,
 * installed as `otlp-generated-protos`), never with hand-written message definitions.
 *
 * `mode` makes it misbehave as a broken collector would: `refuse` answers every export with
 * UNAVAILABLE (HTTP 503), `hang` never answers.
 */
import * as grpc from '@grpc/grpc-js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';

interface MessageType {
  decode(bytes: Uint8Array): object;
  toObject(message: object, options: object): Record<string, unknown>;
  encode(message: object): { finish(): Uint8Array };
  create(properties?: object): object;
}
type Signal = 'traces' | 'metrics' | 'logs';

const generated = createRequire(import.meta.url)('otlp-generated-protos/build/src/generated/root.js') as {
  opentelemetry: { proto: { collector: Record<'trace' | 'metrics' | 'logs', { v1: Record<string, MessageType> }> } };
};
const collector = generated.opentelemetry.proto.collector;

/** Each signal's gRPC service path and request / response messages. */
const SERVICES: Record<Signal, { path: string; request: MessageType; response: MessageType }> = {
  traces: {
    path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
    request: collector.trace.v1.ExportTraceServiceRequest!,
    response: collector.trace.v1.ExportTraceServiceResponse!,
  },
  metrics: {
    path: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
    request: collector.metrics.v1.ExportMetricsServiceRequest!,
    response: collector.metrics.v1.ExportMetricsServiceResponse!,
  },
  logs: {
    path: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
    request: collector.logs.v1.ExportLogsServiceRequest!,
    response: collector.logs.v1.ExportLogsServiceResponse!,
  },
};

export type Attributes = Record<string, unknown>;

/** OTLP's SpanKind and status codes as they arrive. */
export const SPAN_KIND = { internal: 1, server: 2, client: 3 } as const;
export const STATUS_ERROR = 2;

export interface ReceivedSpan {
  name: string;
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client. */
  kind: number;
  attributes: Attributes;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  statusCode: number;
  resource: Attributes;
}

export interface ReceivedLog {
  body: unknown;
  severityText: string;
  traceId: string;
  spanId: string;
  attributes: Attributes;
  resource: Attributes;
}

export interface ReceivedMetric {
  name: string;
  kind: 'sum' | 'gauge' | 'histogram' | 'other';
  points: Array<{ attributes: Attributes; value?: number; count?: number; sum?: number; bucketCounts?: number[] }>;
  resource: Attributes;
}

export type ReceiverMode = 'accept' | 'refuse' | 'hang';

// --- OTLP JSON (as http/json sends it, and as protobuf decodes to with the options below) ------

// biome-ignore lint/suspicious/noExplicitAny: decoded OTLP is read field by field, each access checked by the tests' assertions; its generated types are not exported.
type Json = Record<string, any>;

function anyValue(value: Json | undefined): unknown {
  if (!value) return undefined;
  if ('stringValue' in value) return value.stringValue;
  if ('boolValue' in value) return value.boolValue;
  if ('intValue' in value) return Number(value.intValue);
  if ('doubleValue' in value) return Number(value.doubleValue);
  if ('arrayValue' in value) return (((value.arrayValue as Json).values as Json[] | undefined) ?? []).map(anyValue);
  if ('kvlistValue' in value) return attributesOf((value.kvlistValue as Json).values as Json[]);
  return undefined;
}

function attributesOf(list: Json[] | undefined): Attributes {
  const attributes: Attributes = {};
  for (const { key, value } of list ?? []) attributes[key as string] = anyValue(value as Json);
  return attributes;
}

/** Protobuf bytes arrive base64-encoded from toObject, hex in OTLP JSON. */
function hexId(value: unknown, encoding: 'base64' | 'hex'): string {
  if (typeof value !== 'string' || value === '') return '';
  return encoding === 'hex' ? value.toLowerCase() : Buffer.from(value, 'base64').toString('hex');
}

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly logs: ReceivedLog[] = [];
  readonly metrics: ReceivedMetric[] = [];
  /** Export requests received per signal (answered or not). */
  readonly requests: Record<Signal, number> = { traces: 0, metrics: 0, logs: 0 };
  /** OTLP/HTTP: the Content-Type of every export received. */
  readonly contentTypes = new Set<string>();
  mode: ReceiverMode = 'accept';
  private readonly hung: Array<() => void> = [];

  private constructor(
    readonly url: string,
    private readonly stop: () => Promise<void>,
  ) {}

  /** The gRPC collector services on a free loopback port. */
  static async grpc(): Promise<OtlpReceiver> {
    const server = new grpc.Server();
    let receiver!: OtlpReceiver;
    for (const [signal, service] of Object.entries(SERVICES) as Array<[Signal, (typeof SERVICES)[Signal]]>) {
      const definition: grpc.ServiceDefinition = {
        Export: {
          path: service.path,
          requestStream: false,
          responseStream: false,
          requestSerialize: (message: object) => Buffer.from(service.request.encode(message).finish()),
          requestDeserialize: (bytes: Buffer) => service.request.decode(bytes),
          responseSerialize: (message: object) => Buffer.from(service.response.encode(message).finish()),
          responseDeserialize: (bytes: Buffer) => service.response.decode(bytes),
        },
      };
      server.addService(definition, {
        Export: (call: grpc.ServerUnaryCall<object, object>, callback: grpc.sendUnaryData<object>) => {
          receiver.requests[signal]++;
          if (receiver.mode === 'hang') return void receiver.hung.push(() => callback({ code: grpc.status.UNAVAILABLE, details: 'receiver closed' }));
          if (receiver.mode === 'refuse') return callback({ code: grpc.status.UNAVAILABLE, details: 'refusing (test)' });
          receiver.record(signal, service.request.toObject(call.request, { longs: String, bytes: String, enums: Number, defaults: false }), 'base64');
          callback(null, service.response.create());
        },
      });
    }
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
    );
    receiver = new OtlpReceiver(`http://127.0.0.1:${port}`, async () => {
      for (const release of receiver.hung.splice(0)) release();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      server.forceShutdown();
    });
    return receiver;
  }

  /** OTLP/HTTP (`/v1/traces`, `/v1/metrics`, `/v1/logs`), protobuf or JSON by Content-Type. */
  static async http(): Promise<OtlpReceiver> {
    let receiver!: OtlpReceiver;
    const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const signal = ({ '/v1/traces': 'traces', '/v1/metrics': 'metrics', '/v1/logs': 'logs' } as Record<string, Signal>)[req.url ?? ''];
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        if (!signal || req.method !== 'POST') return void res.writeHead(404).end();
        receiver.requests[signal]++;
        receiver.contentTypes.add(req.headers['content-type'] ?? '');
        if (receiver.mode === 'hang') return void receiver.hung.push(() => res.destroy());
        if (receiver.mode === 'refuse') return void res.writeHead(503).end();
        const body = Buffer.concat(chunks);
        const json = (req.headers['content-type'] ?? '').includes('json');
        const { request, response } = SERVICES[signal];
        if (json) receiver.record(signal, JSON.parse(body.toString('utf8')) as Json, 'hex');
        else receiver.record(signal, request.toObject(request.decode(body), { longs: String, bytes: String, enums: Number, defaults: false }), 'base64');
        if (json) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(Buffer.from(response.encode(response.create()).finish()));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    receiver = new OtlpReceiver(`http://127.0.0.1:${port}`, async () => {
      for (const release of receiver.hung.splice(0)) release();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    return receiver;
  }

  close(): Promise<void> {
    return this.stop();
  }

  private record(signal: Signal, request: Json, ids: 'base64' | 'hex'): void {
    if (signal === 'traces') {
      for (const rs of (request.resourceSpans as Json[] | undefined) ?? []) {
        const resource = attributesOf((rs.resource as Json | undefined)?.attributes as Json[]);
        for (const ss of (rs.scopeSpans as Json[] | undefined) ?? []) {
          for (const span of (ss.spans as Json[] | undefined) ?? []) {
            this.spans.push({
              name: span.name as string,
              traceId: hexId(span.traceId, ids),
              spanId: hexId(span.spanId, ids),
              parentSpanId: hexId(span.parentSpanId, ids),
              kind: Number(span.kind ?? 0),
              attributes: attributesOf(span.attributes as Json[]),
              statusCode: Number((span.status as Json | undefined)?.code ?? 0),
              resource,
            });
          }
        }
      }
    } else if (signal === 'logs') {
      for (const rl of (request.resourceLogs as Json[] | undefined) ?? []) {
        const resource = attributesOf((rl.resource as Json | undefined)?.attributes as Json[]);
        for (const sl of (rl.scopeLogs as Json[] | undefined) ?? []) {
          for (const log of (sl.logRecords as Json[] | undefined) ?? []) {
            this.logs.push({
              body: anyValue(log.body as Json),
              severityText: (log.severityText as string | undefined) ?? '',
              traceId: hexId(log.traceId, ids),
              spanId: hexId(log.spanId, ids),
              attributes: attributesOf(log.attributes as Json[]),
              resource,
            });
          }
        }
      }
    } else {
      for (const rm of (request.resourceMetrics as Json[] | undefined) ?? []) {
        const resource = attributesOf((rm.resource as Json | undefined)?.attributes as Json[]);
        for (const sm of (rm.scopeMetrics as Json[] | undefined) ?? []) {
          for (const metric of (sm.metrics as Json[] | undefined) ?? []) {
            const kind = metric.sum ? 'sum' : metric.gauge ? 'gauge' : metric.histogram ? 'histogram' : 'other';
            const data = (metric.sum ?? metric.gauge ?? metric.histogram ?? {}) as Json;
            const points = ((data.dataPoints as Json[] | undefined) ?? []).map((point) => ({
              attributes: attributesOf(point.attributes as Json[]),
              value: point.asDouble !== undefined ? Number(point.asDouble) : point.asInt !== undefined ? Number(point.asInt) : undefined,
              count: point.count !== undefined ? Number(point.count) : undefined,
              sum: point.sum !== undefined ? Number(point.sum) : undefined,
              bucketCounts: (point.bucketCounts as unknown[] | undefined)?.map(Number),
            }));
            this.metrics.push({ name: metric.name as string, kind, points, resource });
          }
        }
      }
    }
  }
}
