import type { TracingChannel } from 'node:diagnostics_channel';
import { type Attributes, type Context, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';
import { poolAcquireChannel, statementChannel, transactionChannel } from '../db/databaseChannels.ts';
import { ApiError } from '../errors.ts';
import { bindScopedTelemetry, unbindScopedTelemetry } from '../ground/requestScope.ts';
import { credentialRefreshChannel } from '../lakebase/credentialChannel.ts';

/**
 * What a failure says in a span: its HTTP status or SQLSTATE or class, never its message (a
 * Postgres message can quote an input value).
 */
function errorType(err: unknown): string {
  if (err instanceof ApiError) return String(err.status);
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code !== '') return code;
  return err instanceof Error ? err.name : 'error';
}

export function markFailed(span: Span, err: unknown): void {
  const type = errorType(err);
  span.setAttribute('error.type', type);
  span.setStatus({ code: SpanStatusCode.ERROR, message: type });
}

/**
 * Inside a request whose trace the sampler left out: its cache load, statements and pool waits
 * would be left out too (a trace is whole or absent), so they skip the span altogether instead of
 * each paying for a non-recording one and a context of its own.
 */
export function unsampled(parent: Context): boolean {
  const span = trace.getSpan(parent);
  return span !== undefined && !span.isRecording();
}

/** How one channel's messages become spans. */
interface ChannelSpans<M extends object> {
  channel: TracingChannel<unknown, M>;
  name(message: M): string;
  kind: SpanKind;
  attributes(message: M): Attributes;
}

const POSTGRES = { 'db.system.name': 'postgresql' } as const;

const CHANNEL_SPANS = [
  {
    channel: statementChannel,
    name: (m) => m.name,
    kind: SpanKind.CLIENT,
    attributes: (m) => ({ ...POSTGRES, 'db.operation.name': m.operation, 'db.query.summary': m.name }),
  } satisfies ChannelSpans<{ name: string; operation: string }>,
  { channel: transactionChannel, name: () => 'transaction', kind: SpanKind.CLIENT, attributes: () => POSTGRES } satisfies ChannelSpans<object>,
  {
    channel: poolAcquireChannel,
    name: () => 'db.pool.acquire',
    kind: SpanKind.INTERNAL,
    attributes: (m) => ({ ...POSTGRES, 'db.client.connection.pool.waiting': m.waiting }),
  } satisfies ChannelSpans<{ waiting: number }>,
  {
    channel: credentialRefreshChannel,
    name: () => 'credential.refresh',
    kind: SpanKind.INTERNAL,
    attributes: (m) => (m.reason === undefined ? { 'credential.kind': m.kind } : { 'credential.kind': m.kind, 'credential.refresh.reason': m.reason }),
  } satisfies ChannelSpans<{ kind: string; reason?: string }>,
] as ChannelSpans<object>[];

/**
 * Subscribes to what the lower layers publish (lib/db/databaseChannels.ts,
 * lib/lakebase/credentialChannel.ts) and makes each traced operation a span, a child of whatever
 * span is active, and the parent of what the operation does meanwhile (the store binding). Inside a
 * request the sampler left out, nothing is recorded. Returns the unsubscription.
 */
export function spansFromChannels(tracer: Tracer): () => void {
  const unsubscribes = CHANNEL_SPANS.map(({ channel, name, kind, attributes }) => {
    const spans = new WeakMap<object, Span>();
    bindScopedTelemetry(channel.start, (message, current) => {
      const parent = (current as Context | undefined) ?? ROOT_CONTEXT;
      if (unsampled(parent)) return undefined;
      const span = tracer.startSpan(name(message), { kind, attributes: attributes(message) }, parent);
      spans.set(message, span);
      return trace.setSpan(parent, span);
    });
    const finish = (message: object) => {
      spans.get(message)?.end();
      spans.delete(message);
    };
    const handlers = {
      start() {},
      asyncStart() {},
      error(message: object & { error?: unknown }) {
        const span = spans.get(message);
        if (span) markFailed(span, message.error);
      },
      // A synchronous throw ends here (no async end follows it); a promise or callback ends at asyncEnd.
      end(message: object & { error?: unknown }) {
        if ('error' in message) finish(message);
      },
      asyncEnd: finish,
    };
    channel.subscribe(handlers);
    return () => {
      channel.unsubscribe(handlers);
      unbindScopedTelemetry(channel.start);
    };
  });
  return () => {
    for (const unsubscribe of unsubscribes) unsubscribe();
  };
}
