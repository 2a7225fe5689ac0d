import { LatencyHistogram } from './latencyHistogram.ts';

export interface LoadRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** Groups outcomes in the figures (e.g. "read", "write"). */
  tag?: string;
}

export interface LoadOutcome {
  request: LoadRequest;
  /** 0 when no HTTP response came back (connection error or hang). */
  status: number;
  headers: Headers | undefined;
  text: string;
  /** The network error's code, or "hang" when the response took longer than `timeoutMs`. */
  error?: string;
  startedAt: number;
  ms: number;
}

export interface LoadOptions {
  baseUrl: string;
  workers: number;
  /** The next request for a worker; undefined ends that worker. */
  next(worker: number, seq: number): LoadRequest | undefined;
  /** Checked before every request: true stops the load. */
  stop(): boolean;
  /** A response slower than this is a hang (counted, and the request is abandoned). */
  timeoutMs: number;
  onOutcome?(outcome: LoadOutcome): void;
}

export interface LoadStats {
  sent: number;
  byStatus: Record<string, number>;
  errors: Record<string, number>;
  latency: LatencyHistogram;
}

function errorCode(err: unknown): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return 'hang';
  const cause = err instanceof Error ? (err.cause as { code?: string } | undefined) : undefined;
  return cause?.code ?? (err instanceof Error ? err.message : String(err));
}

/** Closed-loop load over real HTTP (keep-alive): each worker sends its next request when the last one ends. */
export async function runLoad(options: LoadOptions): Promise<LoadStats> {
  const stats: LoadStats = { sent: 0, byStatus: {}, errors: {}, latency: new LatencyHistogram() };
  const worker = async (id: number) => {
    for (let seq = 0; !options.stop(); seq++) {
      const request = options.next(id, seq);
      if (!request) return;
      const startedAt = performance.now();
      let outcome: LoadOutcome;
      try {
        const response = await fetch(`${options.baseUrl}${request.path}`, {
          method: request.method,
          headers: request.headers,
          body: request.body,
          signal: AbortSignal.timeout(options.timeoutMs),
        });
        const text = await response.text();
        outcome = { request, status: response.status, headers: response.headers, text, startedAt, ms: performance.now() - startedAt };
      } catch (err) {
        outcome = { request, status: 0, headers: undefined, text: '', error: errorCode(err), startedAt, ms: performance.now() - startedAt };
      }
      stats.sent++;
      stats.latency.record(outcome.ms);
      if (outcome.error) stats.errors[outcome.error] = (stats.errors[outcome.error] ?? 0) + 1;
      else stats.byStatus[outcome.status] = (stats.byStatus[outcome.status] ?? 0) + 1;
      options.onOutcome?.(outcome);
    }
  };
  await Promise.all(Array.from({ length: options.workers }, (_, id) => worker(id)));
  return stats;
}
