import { fork, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';

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
  /** Sends `message` over IPC and waits for the child's reply of the same type. */
  request<T>(message: { type: string }): Promise<T>;
  stop(): Promise<void>;
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
  constructor(private readonly server: ServerProcess, intervalMs = 250) {
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
  const logFd = openSync(options.logFile, 'a');
  const child: ChildProcess = fork(options.script, options.args ?? [], {
    execArgv: ['--import', 'tsx', ...(options.nodeArgs ?? [])],
    env: options.env,
    stdio: ['ignore', logFd, logFd, 'ipc'],
  });
  closeSync(logFd);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${options.name} did not start within ${options.startTimeoutMs ?? 60_000} ms (see ${options.logFile})`)), options.startTimeoutMs ?? 60_000);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${options.name} exited with code ${code} before listening (see ${options.logFile})`)); });
    child.on('message', (message: { type?: string; port?: number }) => {
      if (message?.type === 'ready' && message.port) { clearTimeout(timer); resolve(message.port); }
    });
  });
  const pid = child.pid!;
  let exited = child.exitCode !== null;
  child.once('exit', () => { exited = true; });
  let canReset = true;
  return {
    name: options.name,
    pid,
    origin: `http://127.0.0.1:${port}`,
    logFile: options.logFile,
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
      child.send({ type: 'stop' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
    },
  };
}
