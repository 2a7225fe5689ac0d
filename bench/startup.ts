import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { rssMiB, startEntryPoint, type Build } from './serverProcess.ts';

/**
 * Start-up cost of the service's real entry point, compiled against tsx, in both database modes:
 * milliseconds from spawning node to the start-up line (listening), and the resident set size
 * after a second of idling. Starts alternate between the builds within each round, so both see
 * the same moments of the shared machine.
 */
export type StartupMode = 'plain Postgres' | 'embedded';

export interface StartupResult {
  mode: StartupMode;
  build: Build;
  startsMs: number[];
  idleRssMiB: number[];
}

/** Idle long enough for start-up garbage to be collected or not, the same for every start. */
const IDLE_MS = 1000;

export async function measureStartups(options: {
  root: string;
  rounds: number;
  env: Record<StartupMode, NodeJS.ProcessEnv>;
  logsDir: string;
  log: (message: string) => void;
}): Promise<StartupResult[]> {
  const results: StartupResult[] = [];
  const builds: Build[] = ['compiled', 'tsx'];
  for (const mode of Object.keys(options.env) as StartupMode[]) {
    for (const build of builds) results.push({ mode, build, startsMs: [], idleRssMiB: [] });
  }
  const startOnce = async (mode: StartupMode, build: Build) => {
    const logFile = join(options.logsDir, `startup-${build}-${mode.replace(/\s+/g, '-')}.log`);
    rmSync(logFile, { force: true });
    const server = await startEntryPoint({ name: `${build} (${mode})`, build, root: options.root, env: options.env[mode], logFile });
    try {
      await new Promise((r) => setTimeout(r, IDLE_MS));
      return { startMs: server.startMs, idleRssMiB: rssMiB(server.pid) };
    } finally {
      await server.stop();
      rmSync(logFile, { force: true });
    }
  };
  // The embedded mode's first start creates and seeds its cluster: not what a restart costs.
  if (options.env.embedded) await startOnce('embedded', 'compiled');
  for (let round = 0; round < options.rounds; round++) {
    const order = round % 2 === 0 ? builds : [...builds].reverse();
    for (const mode of Object.keys(options.env) as StartupMode[]) {
      for (const build of order) {
        const measured = await startOnce(mode, build);
        const result = results.find((r) => r.mode === mode && r.build === build)!;
        result.startsMs.push(measured.startMs);
        if (measured.idleRssMiB !== null) result.idleRssMiB.push(measured.idleRssMiB);
      }
    }
  }
  for (const r of results)
    options.log(
      `start-up ${r.mode}, ${r.build}: ${r.startsMs.map((m) => m.toFixed(0)).join(', ')} ms; idle RSS ${r.idleRssMiB.map((m) => m.toFixed(0)).join(', ')} MiB`,
    );
  return results;
}
