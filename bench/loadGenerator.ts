/**
 * The load generator, run as its own process (forked by bench/run.ts) so that it never shares an
 * event loop with a server under test. It receives a LoadSpec over IPC, runs it and answers with a
 * summary: autocannon for closed-loop load and for its rate option, and a paced open-loop sender
 * for a truly constant offered rate.
 */
import { Agent, request as httpRequest } from 'node:http';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { LatencyRecorder } from './latency.ts';
import type { LoadReplyMessage, LoadRequestMessage, LoadResult, LoadSpec, RequestPlan } from './loadPlan.ts';

interface OneRequest {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  /** Always present, so a GET never inherits the body of an earlier POST in autocannon's request object. */
  body: string | undefined;
}

const randomId = (maxId: number) => 1 + Math.floor(Math.random() * maxId);

/** The next request of a plan; random parts are drawn afresh every time. */
function chooser(plan: RequestPlan): () => OneRequest {
  switch (plan.kind) {
    case 'fixed': {
      const fixed: OneRequest = { method: 'GET', path: plan.path, headers: plan.headers ?? {}, body: undefined };
      return () => fixed;
    }
    case 'randomTrip':
      return () => ({ method: 'GET', path: `/trips/${randomId(plan.maxId)}`, headers: {}, body: undefined });
    case 'randomKey':
      return () => {
        const id = (plan.minId ?? 1) - 1 + randomId(plan.maxId - (plan.minId ?? 1) + 1);
        const path = plan.path.replace('{id}', String(id)).replace('{cursor}', Buffer.from(JSON.stringify([id - 1])).toString('base64url'));
        return { method: 'GET', path, headers: plan.headers ?? {}, body: undefined };
      };
    case 'randomStream': {
      const span = plan.cursorTo - plan.cursorFrom + 1;
      const headers = plan.headers ?? {};
      return () => ({
        method: 'GET',
        path: `/trips/stream?cursor=${plan.cursorFrom + Math.floor(Math.random() * span)}&page_size=${plan.pageSize}`,
        headers,
        body: undefined,
      });
    }
    case 'mixed': {
      const { pointRead, streamRead } = plan.shares;
      return (): OneRequest => {
        const draw = Math.random();
        if (draw < pointRead) return { method: 'GET', path: `/trips/${randomId(plan.maxId)}`, headers: {}, body: undefined };
        if (draw < pointRead + streamRead)
          return { method: 'GET', path: `/trips/stream?cursor=${randomId(plan.maxId) - 1}&page_size=100`, headers: {}, body: undefined };
        const body = JSON.stringify({ vendor_id: Math.random() < 0.5 ? '1' : '2' });
        return { method: 'POST', path: `/trips/${randomId(plan.maxId)}/vendor`, headers: { 'content-type': 'application/json' }, body };
      };
    }
  }
}

/** Closed loop (each connection sends its next request when the last one is answered), or autocannon's rate option. */
async function runAutocannon(spec: LoadSpec): Promise<LoadResult> {
  const latencies = new LatencyRecorder();
  const next = chooser(spec.plan);
  // autocannon calls setupRequest before every request, so each one gets its own random id.
  const setupRequest = (req: autocannon.Request): autocannon.Request => ({ ...req, ...next() });
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: spec.origin,
        connections: spec.connections,
        duration: spec.durationSeconds,
        requests: [{ setupRequest }],
        ...(spec.overallRate ? { overallRate: spec.overallRate } : {}),
        timeout: 10,
      },
      (err, finished) => (err ? reject(err) : resolve(finished)),
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latencies.record(responseTime);
    });
  });
  const statusCodes: Record<string, number> = {};
  for (const [code, stats] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = stats.count ?? 0;
  return {
    requestsPerSecond: result.duration > 0 ? result.requests.total / result.duration : 0,
    requests: result.requests.total,
    durationSeconds: result.duration,
    latencies: latencies.recorded(),
    ...(spec.overallRate ? { correctedP99Ms: result.latency.p99 } : {}),
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    statusCodes,
  };
}

/**
 * Open loop at a constant rate, as wrk2 does: request i is due at start + i/rate, whatever became
 * of the earlier ones, over at most `connections` keep-alive sockets; its latency counts from when
 * it was due, so time spent queued behind a slow response is counted (no coordinated omission).
 * autocannon's rate option, by contrast, lets each connection send its per-second quota back to
 * back at the start of every second: bursts at full speed, then silence.
 */
async function runPaced(spec: LoadSpec): Promise<LoadResult> {
  const rate = spec.overallRate!;
  const agent = new Agent({ keepAlive: true, maxSockets: spec.connections });
  const url = new URL(spec.origin);
  const next = chooser(spec.plan);
  const latencies = new LatencyRecorder();
  const statusCodes: Record<string, number> = {};
  let completed = 0;
  let errors = 0;
  let timeouts = 0;
  let non2xx = 0;
  const started = performance.now();
  const total = Math.round(rate * spec.durationSeconds);
  let sent = 0;
  let outstanding = 0;

  await new Promise<void>((resolve) => {
    const finishIfDone = () => {
      if (sent === total && outstanding === 0) resolve();
    };
    const send = (dueAt: number) => {
      const { method, path, headers, body } = next();
      outstanding++;
      const req = httpRequest({ agent, host: url.hostname, port: url.port, method, path, headers, timeout: 10_000 }, (res) => {
        res.resume();
        res.once('end', () => {
          const status = res.statusCode ?? 0;
          statusCodes[status] = (statusCodes[status] ?? 0) + 1;
          if (status >= 200 && status < 300) latencies.record(performance.now() - dueAt);
          else non2xx++;
          completed++;
          outstanding--;
          finishIfDone();
        });
      });
      req.once('timeout', () => {
        timeouts++;
        req.destroy(new Error('timeout'));
      });
      req.once('error', () => {
        errors++;
        outstanding--;
        finishIfDone();
      });
      req.end(body);
    };
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate) + 1);
      while (sent < due) send(started + (sent++ / rate) * 1000);
      if (sent < total) setTimeout(tick, 1);
      else finishIfDone();
    };
    tick();
  });
  agent.destroy();
  const durationSeconds = (performance.now() - started) / 1000;
  return {
    requestsPerSecond: completed / durationSeconds,
    requests: completed,
    durationSeconds,
    latencies: latencies.recorded(),
    errors,
    timeouts,
    non2xx,
    statusCodes,
  };
}

export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  return spec.pacing === 'constant' && spec.overallRate ? runPaced(spec) : runAutocannon(spec);
}

process.on('message', (message: LoadRequestMessage) => {
  if (message.type !== 'run') return;
  runLoad(message.spec).then(
    (result) => process.send!({ type: 'result', id: message.id, result } satisfies LoadReplyMessage),
    (err: unknown) => process.send!({ type: 'failed', id: message.id, message: err instanceof Error ? err.message : String(err) } satisfies LoadReplyMessage),
  );
});
// The orchestrator went away: stop rather than linger.
process.on('disconnect', () => process.exit(0));
process.send!({ type: 'ready' });
