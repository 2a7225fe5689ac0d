export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Percentiles over every request of a scenario, all of its slices together. */
export function summarizeLatencies(parts: readonly Float64Array[]): LatencySummary {
  const all = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  all.sort();
  let sum = 0;
  for (const v of all) sum += v;
  return {
    p50: percentile(all, 50),
    p90: percentile(all, 90),
    p99: percentile(all, 99),
    max: all.length ? all[all.length - 1]! : 0,
    mean: all.length ? sum / all.length : 0,
  };
}

/** Latencies in ms as they arrive, kept in a growing typed array (cheap to send over IPC). */
export class LatencyRecorder {
  private values = new Float64Array(1 << 16);
  private count = 0;
  record(ms: number): void {
    if (this.count === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.count++] = ms;
  }
  recorded(): Float64Array {
    return this.values.slice(0, this.count);
  }
}
