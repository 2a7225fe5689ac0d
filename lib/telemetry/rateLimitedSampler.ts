import { createContextKey, type Context } from '@opentelemetry/api';
import { SamplingDecision, type Sampler, type SamplingResult } from '@opentelemetry/sdk-trace';

/**
 * Set on the parent context of a request's server span when the request has already taken its
 * place in the budget (lib/telemetry/otlpTelemetry.ts asks before starting anything): the sampler
 * then samples it without taking a second one.
 */
export const ADMITTED = createContextKey('lakebase-api trace admitted');

/**
 * Starts at most `perSecond` new traces a second: a token bucket that holds one second's worth and
 * refills continuously. Below the rate every request is traced; above it the cost of telemetry
 * stays what that rate costs, however many requests arrive (an exported span is 15–17 µs of CPU,
 * more than a cached read's whole answer leaves room for). Used as the root sampler under
 * ParentBasedSampler, so a trace is whole or absent and a caller's sampled traceparent is followed.
 */
export class RateLimitedSampler implements Sampler {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = perSecond;
    this.last = now();
  }

  /** Takes a place in this second's budget, if one is left. */
  admit(): boolean {
    const now = this.now();
    this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  shouldSample(context?: Context): SamplingResult {
    const sampled = context?.getValue(ADMITTED) === true || this.admit();
    return { decision: sampled ? SamplingDecision.RECORD_AND_SAMPLED : SamplingDecision.NOT_RECORD };
  }

  toString(): string {
    return `RateLimitedSampler{${this.perSecond}/s}`;
  }
}
