/**
 * The seam between the HTTP layer and OpenTelemetry. The router and the results cache's caller call
 * `tracing` at the few places where a span belongs (the layers below publish on diagnostics
 * channels instead: lib/telemetry/channelSpans.ts); until lib/telemetry/otlpTelemetry.ts installs an implementation (only when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set), every call is a no-op and no OpenTelemetry module is loaded.
 *
 * Process-wide on purpose, as OpenTelemetry's own API is: the pool's client class and the token
 * manager are built far from the Context, and one process exports to one collector.
 */

export type SpanAttributes = Record<string, string | number | boolean>;

/** A span under way: attributes learnt while it runs (a cache outcome) are added here. */
export interface OpenSpan {
  set(name: string, value: string | number | boolean): void;
}

/** What the router knows once a request is answered. */
export interface RequestOutcome {
  /** The route template (`/trips/{trip_id}`), or undefined when no route matched. */
  route: string | undefined;
  status: number;
  requestId: string;
  /** The verified user the request ran as (LAKEBASE_ACCESS=user). */
  user?: string;
  cache?: string;
}

/** The server span of one request. */
export interface RequestSpan {
  finish(outcome: RequestOutcome): void;
}

type SpanKindName = 'internal' | 'client';

export interface Tracing {
  readonly enabled: boolean;
  /**
   * Runs `work` (answering one request) inside a server span, joined to the caller's trace when
   * the headers carry a W3C `traceparent`. `work` must call `finish` on the span it gets.
   */
  serve<T>(method: string, headers: Readonly<Record<string, string | string[] | undefined>>, work: (span: RequestSpan) => Promise<T>): Promise<T>;
  /** Runs `work` in a child span of whatever span is active; a throw marks the span failed. */
  inSpan<T>(name: string, attributes: SpanAttributes, work: (span: OpenSpan) => Promise<T>, kind?: SpanKindName): Promise<T>;
  /** `{ trace_id, span_id }` of the active span for a log line, or nothing. */
  logFields(): { trace_id?: string; span_id?: string };
}

/** A span that records nothing: what every seam gets when tracing is off, or its trace is not recorded. */
export const NO_SPAN: OpenSpan & RequestSpan = { set() {}, finish() {} };
/** No trace ids for a log line. */
export const NO_FIELDS = Object.freeze({});

/** Off: every call runs its work and nothing else. */
const noTracing: Tracing = {
  enabled: false,
  serve: (_method, _headers, work) => work(NO_SPAN),
  inSpan: (_name, _attributes, work) => work(NO_SPAN),
  logFields: () => NO_FIELDS,
};

let active: Tracing = noTracing;

/** The tracing in force: no-op unless telemetry was started. */
export function tracing(): Tracing {
  return active;
}

/** Installs (or, with null, removes) the process's tracing. */
export function installTracing(implementation: Tracing | null): void {
  active = implementation ?? noTracing;
}
