/**
 * runLoad (loadClient.ts) in a child process of its own, so a test's load never shares the event
 * loop of the server it measures. The request plan is plain data: a path whose `{n}` becomes a
 * random integer in 1..maxN for every request.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runLoad } from './loadClient.ts';

export interface LoadProcessPlan {
  baseUrl: string;
  workers: number;
  seconds: number;
  /** A hard bound on requests, whatever the machine's speed. */
  maxRequests: number;
  path: string;
  maxN: number;
  headers: Record<string, string>;
}

export interface LoadProcessResult {
  byStatus: Record<string, number>;
  errors: Record<string, number>;
  /** 429 and 503 answers without a Retry-After header. */
  refusalsWithoutRetryAfter: number;
  p99Ms: number;
}

/** Runs `plan` in a forked process and resolves with its summary. */
export function runLoadInProcess(plan: LoadProcessPlan): Promise<LoadProcessResult> {
  const child = fork(fileURLToPath(import.meta.url), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (result: LoadProcessResult) => {
      child.disconnect();
      resolve(result);
    });
    child.once('exit', (code) => reject(new Error(`the load process exited with code ${code} before answering`)));
    child.send(plan);
  });
}

async function serve(plan: LoadProcessPlan): Promise<LoadProcessResult> {
  const until = performance.now() + plan.seconds * 1000;
  let sent = 0;
  let refusalsWithoutRetryAfter = 0;
  const stats = await runLoad({
    baseUrl: plan.baseUrl,
    workers: plan.workers,
    next: () =>
      sent++ < plan.maxRequests
        ? { method: 'GET', path: plan.path.replace('{n}', String(1 + Math.floor(Math.random() * plan.maxN))), headers: plan.headers }
        : undefined,
    stop: () => performance.now() > until,
    timeoutMs: 15_000,
    onOutcome: (outcome) => {
      if ((outcome.status === 429 || outcome.status === 503) && !outcome.headers?.get('retry-after')) refusalsWithoutRetryAfter++;
    },
  });
  return { byStatus: stats.byStatus, errors: stats.errors, refusalsWithoutRetryAfter, p99Ms: stats.latency.percentile(99) };
}

if (process.send && process.argv[1] === fileURLToPath(import.meta.url)) {
  process.once('message', (plan: LoadProcessPlan) => {
    void serve(plan).then((result) => process.send?.(result));
  });
}
