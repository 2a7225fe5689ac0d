/**
 * Latencies in log-spaced buckets (5% wide): constant memory however long a soak runs, so the
 * measuring does not itself look like a leak. Percentiles are the buckets' upper bounds.
 */
const GROWTH = 1.05;

export class LatencyHistogram {
  private readonly buckets: number[] = [];
  count = 0;
  max = 0;

  record(ms: number): void {
    const index = Math.max(0, Math.ceil(Math.log(ms + 1) / Math.log(GROWTH)));
    this.buckets[index] = (this.buckets[index] ?? 0) + 1;
    this.count++;
    if (ms > this.max) this.max = ms;
  }

  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.ceil((p / 100) * this.count);
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i] ?? 0;
      if (seen >= rank) return Math.min(this.max, GROWTH ** i - 1);
    }
    return this.max;
  }
}
