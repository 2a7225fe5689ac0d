import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { processAlive, startEmbeddedPostgres, type EmbeddedPostgres } from '../../lib/db/embeddedPostgres.ts';
import { seedTrips } from '../../lib/db/seedTrips.ts';

/**
 * How the database goes away: `fast` is a planned restart or failover (Postgres ends every session
 * with 57P01 and checkpoints); `immediate` is a crash (every process quits at once, sessions see
 * their sockets close, and the next start replays the WAL).
 */
export type StopMode = 'fast' | 'immediate';

export interface RestartableDatabase {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
  /** A superuser pool for set-up and for watching the server; it survives restarts. */
  admin: pg.Pool;
  isRunning(): boolean;
  stop(mode: StopMode): Promise<void>;
  /**
   * Suspends every server process (SIGSTOP): connections stay open and new ones are accepted by
   * the kernel, but nothing answers, as with a hung server or a network partition.
   */
  freeze(): void;
  thaw(): void;
  /** Starts again on the same data directory and port; resolves when it accepts connections. */
  start(): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * A real embedded PostgreSQL that can be stopped and started again under load, on the same data
 * directory and port, as a managed database restarts or fails over behind one host name.
 */
export async function startRestartableDatabase(rows = 2000): Promise<RestartableDatabase> {
  const dataDir = mkdtempSync(join(tmpdir(), 'lakebase-api-restart-'));
  // persistent: stop() must keep the data directory.
  let server: EmbeddedPostgres | undefined = await startEmbeddedPostgres({ dataDir, port: 0, persistent: true });
  const { host, port, database, user, password } = server;
  const admin = new pg.Pool({ host, port, database, user, password, max: 2 });
  // Its idle connections die with every stop; the pool drops them and opens new ones.
  admin.on('error', () => undefined);
  await seedTrips(admin, { schema: 'public', table: 'nyc_train_synced', rows });

  const postmasterPid = () => Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  let frozen: number[] = [];

  async function stop(mode: StopMode): Promise<void> {
    if (!server) return;
    const running = server;
    server = undefined;
    if (mode === 'fast') {
      await running.stop();
      return;
    }
    const pid = postmasterPid();
    process.kill(pid, 'SIGQUIT'); // immediate shutdown: no checkpoint, crash recovery on the next start
    const deadline = Date.now() + 15_000;
    while (processAlive(pid)) {
      if (Date.now() > deadline) throw new Error(`PostgreSQL (pid ${pid}) did not quit`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  return {
    host,
    port,
    database,
    user,
    password,
    admin,
    isRunning: () => server !== undefined,
    stop,
    freeze() {
      const parent = postmasterPid();
      const children = execFileSync('pgrep', ['-P', String(parent)])
        .toString()
        .split('\n')
        .filter(Boolean)
        .map(Number);
      frozen = [parent, ...children];
      for (const pid of frozen) process.kill(pid, 'SIGSTOP');
    },
    thaw() {
      for (const pid of frozen) process.kill(pid, 'SIGCONT');
      frozen = [];
    },
    async start() {
      if (server) return;
      server = await startEmbeddedPostgres({ dataDir, port, persistent: true });
    },
    async destroy() {
      if (frozen.length) for (const pid of frozen) process.kill(pid, 'SIGCONT');
      await admin.end().catch(() => undefined);
      await stop('fast').catch(() => undefined);
      if (existsSync(dataDir)) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
