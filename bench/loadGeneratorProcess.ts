import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadReplyMessage, LoadResult, LoadSpec } from './loadPlan.ts';

const here = dirname(fileURLToPath(import.meta.url));

/** The long-lived load generator process and a promise-based call into it. */
export async function startLoadGenerator(): Promise<{ run(spec: LoadSpec): Promise<LoadResult>; stop(): void }> {
  const child: ChildProcess = fork(join(here, 'loadGenerator.ts'), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced', // latencies travel as typed arrays
  });
  await new Promise<void>((resolveReady, reject) => {
    child.once('exit', (code) => reject(new Error(`the load generator exited with code ${code}`)));
    child.once('message', () => resolveReady());
  });
  let nextId = 0;
  const waiting = new Map<number, { resolve(result: LoadResult): void; reject(err: Error): void }>();
  child.on('message', (message: LoadReplyMessage) => {
    const pending = waiting.get(message.id);
    if (!pending) return;
    waiting.delete(message.id);
    if (message.type === 'result') pending.resolve(message.result);
    else pending.reject(new Error(message.message));
  });
  return {
    run(spec) {
      const id = nextId++;
      return new Promise((resolveRun, reject) => {
        waiting.set(id, { resolve: resolveRun, reject });
        child.send({ type: 'run', id, spec });
      });
    },
    stop: () => {
      child.disconnect();
    },
  };
}
