import { fork, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

/** A server under test, in its own process (so it never shares an event loop with the load). */
export interface ServerProcess {
  name: string;
  pid: number;
  origin: string;
  /** Where its stdout and stderr go (the service's request log). */
  logFile: string;
  /** Restarts the peak-RSS mark (Linux `clear_refs`), so each scenario gets its own peak. */
  resetPeakRss(): void;
  /** Peak resident set size since the last reset, in MiB (VmHWM), or the current RSS if unknown. */
  peakRssMiB(): number | null;
  /** Resident set size once it announced it was listening, before any load, in MiB. */
  startRssMiB: number | null;
  /** Milliseconds from spawning the process to its being ready to serve. */
  startMs: number;
  /** Sends `message` over IPC and waits for the child's reply of the same type. */
  request<T>(message: { type: string }): Promise<T>;
  stop(): Promise<void>;
}

/** How a server runs: TypeScript through tsx (as `npm start`), or the build in dist/ with plain node (as app.yaml). */
export type Build = 'tsx' | 'compiled';

/** app.yaml's command after `node` (its node options and dist/server.js): exactly what the platform runs. */
export function appYamlNodeArgs(root: string): string[] {
  const { command } = parse(readFileSync(join(root, 'app.yaml'), 'utf8')) as { command: string[] };
  if (command[0] !== 'node') throw new Error(`app.yaml's command does not start with node: ${command.join(' ')}`);
  return command.slice(1);
}

function statusField(pid: number, field: string): number | null {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/**
 * Samples VmHWM while a scenario runs, as well as at its end: if the process dies mid-run the last
 * sample still tells how big it got.
 */
export class PeakRssSampler {
  private peak: number | null = null;
  private readonly timer: NodeJS.Timeout;
  constructor(
    private readonly server: ServerProcess,
    intervalMs = 250,
  ) {
    this.timer = setInterval(() => this.sample(), intervalMs);
  }
  private sample(): void {
    const value = this.server.peakRssMiB();
    if (value !== null && (this.peak === null || value > this.peak)) this.peak = value;
  }
  stop(): number | null {
    clearInterval(this.timer);
    this.sample();
    return this.peak;
  }
}

export async function startServer(options: {
  name: string;
  script: string;
  args?: string[];
  nodeArgs?: string[];
  env: NodeJS.ProcessEnv;
  logFile: string;
  startTimeoutMs?: number;
}): Promise<ServerProcess> {
  const began = performance.now();
  const logFd = openSync(options.logFile, 'a');
  const child: ChildProcess = fork(options.script, options.args ?? [], {
    execArgv: ['--import', 'tsx', ...(options.nodeArgs ?? [])],
    env: options.env,
    stdio: ['ignore', logFd, logFd, 'ipc'],
  });
  closeSync(logFd);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${options.name} did not start within ${options.startTimeoutMs ?? 60_000} ms (see ${options.logFile})`)),
      options.startTimeoutMs ?? 60_000,
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${options.name} exited with code ${code} before listening (see ${options.logFile})`));
    });
    child.on('message', (message: { type?: string; port?: number }) => {
      if (message?.type === 'ready' && message.port) {
        clearTimeout(timer);
        resolve(message.port);
      }
    });
  });
  return tracked(options.name, child, `http://127.0.0.1:${port}`, options.logFile, performance.now() - began, () => child.send({ type: 'stop' }));
}

const STARTUP_LINE = /Application startup complete: listening on http:\/\/([\d.]+):(\d+)/;

/**
 * The service's real entry point, as it is run: `server.ts` through tsx (`npm start`) or
 * app.yaml's command (plain node on `dist/server.js`, after `npm run build`). Ready once its
 * start-up line is in the log file; stopped with SIGTERM, as the platform does.
 */
export async function startEntryPoint(options: {
  name: string;
  build: Build;
  root: string;
  nodeArgs?: string[];
  env: NodeJS.ProcessEnv;
  logFile: string;
  startTimeoutMs?: number;
}): Promise<ServerProcess> {
  const args = options.build === 'tsx' ? ['--import', 'tsx', 'server.ts'] : appYamlNodeArgs(options.root);
  const began = performance.now();
  const logFd = openSync(options.logFile, 'a');
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...args], { cwd: options.root, env: options.env, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  let exitCode: number | null | undefined;
  child.once('exit', (code) => {
    exitCode = code;
  });
  const deadline = began + (options.startTimeoutMs ?? 120_000);
  for (;;) {
    const found = STARTUP_LINE.exec(readFileSync(options.logFile, 'utf8'));
    if (found) {
      const origin = `http://127.0.0.1:${found[2]}`;
      return tracked(options.name, child, origin, options.logFile, performance.now() - began, () => child.kill('SIGTERM'));
    }
    if (exitCode !== undefined) throw new Error(`${options.name} exited with code ${exitCode} before listening (see ${options.logFile})`);
    if (performance.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${options.name} did not start within ${options.startTimeoutMs ?? 120_000} ms (see ${options.logFile})`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** RSS readings and a bounded stop for a started server process. */
function tracked(name: string, child: ChildProcess, origin: string, logFile: string, startMs: number, askToStop: () => void): ServerProcess {
  const pid = child.pid!;
  let exited = child.exitCode !== null;
  child.once('exit', () => {
    exited = true;
  });
  let canReset = true;
  return {
    name,
    pid,
    origin,
    logFile,
    startMs,
    startRssMiB: statusField(pid, 'VmRSS'),
    resetPeakRss() {
      if (!canReset) return;
      try {
        writeFileSync(`/proc/${pid}/clear_refs`, '5');
      } catch {
        canReset = false; // not Linux, or not allowed: peaks become "since start"
      }
    },
    peakRssMiB: () => statusField(pid, 'VmHWM') ?? statusField(pid, 'VmRSS'),
    request<T>(message: { type: string }) {
      return new Promise<T>((resolve) => {
        const onReply = (reply: { type?: string }) => {
          if (reply?.type !== message.type) return;
          child.off('message', onReply);
          resolve(reply as T);
        };
        child.on('message', onReply);
        child.send(message);
      });
    },
    async stop() {
      if (exited) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      askToStop();
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
    },
  };
}

/** Current resident set size of a process, in MiB. */
export const rssMiB = (pid: number) => statusField(pid, 'VmRSS');
