import type { Context } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { LogRecordProcessor, SdkLogRecord } from '@opentelemetry/sdk-logs';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace';

export type Signal = 'traces' | 'metrics' | 'logs';

/** Telemetry the service produced but never delivered, by signal: reported on /metrics. */
export class DroppedTelemetry {
  readonly counts: Record<Signal, number> = { traces: 0, metrics: 0, logs: 0 };

  add(signal: Signal, items: number): void {
    this.counts[signal] += items;
  }
}

/**
 * At most `capacity` items between being handed to a batch processor and their export ending.
 * The SDK's batch processors bound their queues too, but only tell a diagnostic log what they
 * dropped; with the bound kept here (the same size, released only once an export has ended, so
 * the processor's own queue can never overflow) every dropped item is counted.
 */
export class ExportBound {
  private pending = 0;

  constructor(
    private readonly capacity: number,
    private readonly signal: Signal,
    private readonly dropped: DroppedTelemetry,
  ) {}

  /** Room for one more item? If not, the item is counted as dropped. */
  admit(): boolean {
    if (this.pending >= this.capacity) {
      this.dropped.add(this.signal, 1);
      return false;
    }
    this.pending++;
    return true;
  }

  /** An export of `items` ended; a failed one (collector down, refused, timed out) lost them. */
  settled(items: number, result: ExportResult): void {
    this.pending = Math.max(0, this.pending - items);
    if (result.code !== ExportResultCode.SUCCESS) this.dropped.add(this.signal, items);
  }
}

interface BatchExporter<T> {
  export(items: T[], done: (result: ExportResult) => void): void;
  shutdown(): Promise<void>;
  forceFlush?(): Promise<void>;
}

/** The exporter, reporting to `bound` how each export ended. */
export function settlingExporter<T, E extends BatchExporter<T>>(exporter: E, bound: ExportBound): E {
  return new Proxy(exporter, {
    get(target, property, receiver) {
      if (property !== 'export') return Reflect.get(target, property, receiver);
      return (items: T[], done: (result: ExportResult) => void) =>
        target.export(items, (result) => {
          bound.settled(items.length, result);
          done(result);
        });
    },
  });
}

/** A span processor that forwards a finished span only while `bound` has room. */
export function boundedSpanProcessor(inner: SpanProcessor, bound: ExportBound): SpanProcessor {
  return {
    onStart: (span: Span, parent: Context) => inner.onStart(span, parent),
    onEnd(span: ReadableSpan) {
      // Unsampled spans are never exported, so they take no room.
      if ((span.spanContext().traceFlags & 1) === 0) return;
      if (bound.admit()) inner.onEnd(span);
    },
    forceFlush: () => inner.forceFlush(),
    shutdown: () => inner.shutdown(),
  };
}

/** A log record processor that forwards a record only while `bound` has room. */
export function boundedLogProcessor(inner: LogRecordProcessor, bound: ExportBound): LogRecordProcessor {
  return {
    onEmit(record: SdkLogRecord, context?: Context) {
      if (bound.admit()) inner.onEmit(record, context);
    },
    forceFlush: () => inner.forceFlush(),
    shutdown: () => inner.shutdown(),
  };
}
