/**
 * What the load generator sends, as plain data: it crosses a process boundary (IPC), so no
 * functions here; the generator turns a plan into autocannon's per-request setup.
 */
export type RequestPlan =
  /** The same request every time. */
  | { kind: 'fixed'; path: string; headers?: Record<string, string> }
  /** `GET /trips/{id}` with an id drawn uniformly from 1..maxId for every request. */
  | { kind: 'randomTrip'; maxId: number }
  /**
   * `GET path` with a key drawn uniformly from minId..maxId for every request: `{id}` becomes the key,
   * `{cursor}` a generated list's cursor just before it (base64url of the JSON array `[key]`).
   */
  | { kind: 'randomKey'; path: string; maxId: number /** Default 1. */; minId?: number; headers?: Record<string, string> }
  /**
   * `GET /trips/stream?cursor=…&page_size=…` with a cursor drawn uniformly from cursorFrom..cursorTo
   * for every request, so the results cache cannot answer from an earlier one.
   */
  | { kind: 'randomStream'; cursorFrom: number; cursorTo: number; pageSize: number; headers?: Record<string, string> }
  /**
   * Reads and writes: per request, `GET /trips/{id}` (random id), a `/trips/stream` page from a
   * random cursor, or `POST /trips/{id}/vendor`, by the given shares (summing to 1).
   */
  | { kind: 'mixed'; maxId: number; shares: { pointRead: number; streamRead: number; write: number } };

export interface LoadSpec {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  connections: number;
  durationSeconds: number;
  /** Offered requests per second over all connections (autocannon's overallRate); none = as fast as it can. */
  overallRate?: number;
  /**
   * With a rate: `autocannon` uses its rate option (each connection's quota per second, sent back
   * to back); `constant` spaces requests evenly (open loop, latency from when each was due).
   */
  pacing?: 'autocannon' | 'constant';
  plan: RequestPlan;
}

export interface LoadResult {
  requestsPerSecond: number;
  requests: number;
  durationSeconds: number;
  /**
   * Every 2xx response's latency in ms, as measured (autocannon's own histogram rounds to whole
   * milliseconds, which hides everything under 1 ms); for the evenly paced mode, from when it was due.
   */
  latencies: Float64Array;
  /**
   * At a fixed rate: autocannon's p99 with its coordinated-omission correction (whole ms), which
   * adds the requests a stalled connection should have sent. Higher, so the one a target is judged on.
   */
  correctedP99Ms?: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodes: Record<string, number>;
}

/** Messages between the orchestrator and the load generator process. */
export type LoadRequestMessage = { type: 'run'; id: number; spec: LoadSpec };
export type LoadReplyMessage = { type: 'result'; id: number; result: LoadResult } | { type: 'failed'; id: number; message: string };
