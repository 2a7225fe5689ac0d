import { spawn, type ChildProcess } from 'node:child_process';
import { pollUntil } from './pollUntil.ts';

const root = new URL('../../', import.meta.url);

export interface FetchExample {
  child: ChildProcess;
  /** Where it listens, e.g. http://127.0.0.1:41234. */
  base: string;
  /** Its stdout and stderr so far. */
  output(): string;
  /** Resolves with its exit code. */
  exited: Promise<number | null>;
}

/** Starts examples/fetch-server.ts as a user would (`npx tsx`), with only `env`, and waits until it listens. */
export async function startFetchExample(env: NodeJS.ProcessEnv, onSpawn?: (child: ChildProcess) => void): Promise<FetchExample> {
  let output = '';
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/fetch-server.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onSpawn?.(child);
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const base = await pollUntil('the fetch example to listen', 90_000, () => {
    if (child.exitCode !== null) throw new Error(`the example exited early:\n${output}`);
    return /fetch adapter on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
  });
  return { child, base, output: () => output, exited };
}
