import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { millisToHrTime } from '@opentelemetry/core';
import { AggregationTemporality, DataPointType, type CollectionResult, type MetricData, type MetricProducer } from '@opentelemetry/sdk-metrics';
import type { MetricObjectWithValues, MetricValue, MetricValueWithName, Registry } from 'prom-client';

/**
 * The /metrics registry, read as OpenTelemetry metrics at each export. /metrics stays the one
 * source of truth: the same instruments (requests, latency, pool, cache, token state, the Node
 * runtime) reach the collector under the same names, with nothing counted twice.
 *
 * Counters become cumulative monotonic sums, gauges gauges, histograms explicit-bucket
 * histograms (Prometheus' cumulative bucket counts turned into per-bucket counts). prom-client
 * summaries are not used here and are skipped.
 */
export class PrometheusBridge implements MetricProducer {
  /** Cumulative series start when the registry was bridged. */
  private readonly startTime: HrTime = millisToHrTime(Date.now());

  constructor(private readonly registry: Registry) {}

  async collect(): Promise<CollectionResult> {
    const now = millisToHrTime(Date.now());
    const metrics: MetricData[] = [];
    const errors: unknown[] = [];
    for (const metric of await this.registry.getMetricsAsJSON()) {
      try {
        const data = this.convert(metric as MetricObjectWithValues<MetricValue<string> | MetricValueWithName<string>>, now);
        if (data) metrics.push(data);
      } catch (err) {
        errors.push(err);
      }
    }
    return {
      // The reader puts these under its own resource.
      resourceMetrics: { resource: undefined as never, scopeMetrics: [{ scope: { name: 'lakebase-api/prometheus' }, metrics }] },
      errors,
    };
  }

  private convert(metric: MetricObjectWithValues<MetricValue<string> | MetricValueWithName<string>>, endTime: HrTime): MetricData | undefined {
    const descriptor = { name: metric.name, description: metric.help, unit: '', valueType: ValueType.DOUBLE };
    const point = (value: MetricValue<string>) => ({ startTime: this.startTime, endTime, attributes: value.labels as Attributes, value: value.value });
    // A NaN gauge (no token yet) is "unknown": leave it out rather than send a made-up number.
    const known = metric.values.filter((value) => Number.isFinite(value.value));
    switch (String(metric.type)) {
      case 'counter':
        return {
          descriptor,
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPointType: DataPointType.SUM,
          isMonotonic: true,
          dataPoints: known.map(point),
        };
      case 'gauge':
        return { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.GAUGE, dataPoints: known.map(point) };
      case 'histogram':
        return {
          descriptor,
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPointType: DataPointType.HISTOGRAM,
          dataPoints: this.histogramPoints(metric.name, metric.values as MetricValueWithName<string>[], endTime),
        };
      default:
        return undefined;
    }
  }

  /** Groups `_bucket`/`_sum`/`_count` samples by their labels (less `le`) into one point each. */
  private histogramPoints(name: string, values: MetricValueWithName<string>[], endTime: HrTime) {
    const series = new Map<string, { attributes: Attributes; buckets: Array<[number, number]>; sum: number; count: number }>();
    for (const value of values) {
      const { le, ...labels } = value.labels as Record<string, string | number>;
      const key = JSON.stringify(labels);
      let entry = series.get(key);
      if (!entry) {
        entry = { attributes: labels, buckets: [], sum: 0, count: 0 };
        series.set(key, entry);
      }
      if (value.metricName === `${name}_bucket`) entry.buckets.push([le === '+Inf' ? Infinity : Number(le), value.value]);
      else if (value.metricName === `${name}_sum`) entry.sum = value.value;
      else if (value.metricName === `${name}_count`) entry.count = value.value;
    }
    return [...series.values()].map(({ attributes, buckets, sum, count }) => {
      buckets.sort((a, b) => a[0] - b[0]);
      const boundaries = buckets.filter(([bound]) => bound !== Infinity).map(([bound]) => bound);
      const counts = buckets.map(([, cumulative], i) => cumulative - (buckets[i - 1]?.[1] ?? 0));
      return { startTime: this.startTime, endTime, attributes, value: { buckets: { boundaries, counts }, sum, count } };
    });
  }
}
