import { resolve } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../lib/db/embeddedPostgres.ts';
import { seedTrips, type SeedResult } from '../lib/db/seedTrips.ts';
import { quoteIdent } from '../lib/db/sqlIdentifiers.ts';

export interface BenchDatabase {
  server: EmbeddedPostgres;
  seed: SeedResult;
  serverVersion: string;
  /** The standard PG* variables: the service reaches it as plain PostgreSQL, as in production. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * The benchmark's own embedded PostgreSQL, apart from the development one: its data directory
 * (default `.data/bench`) keeps the seeded table, so a later run with the same BENCH_ROWS reuses
 * it instead of generating a million rows again.
 */
export async function startBenchDatabase(options: {
  dataDir: string;
  rows: number;
  schema: string;
  table: string;
  log: (msg: string) => void;
}): Promise<BenchDatabase> {
  const server = await startEmbeddedPostgres({ dataDir: resolve(options.dataDir), port: 0, persistent: true });
  const admin = new pg.Client({ host: server.host, port: server.port, database: server.database, user: server.user, password: server.password });
  try {
    await admin.connect();
    const seed = await seedTrips(admin, {
      schema: options.schema,
      table: options.table,
      rows: options.rows,
      logger: { info: (_obj, msg) => options.log(msg ?? '') },
    });
    // Writes from earlier runs' mixed scenario leave dead tuples; clear them so runs start alike.
    await admin.query(`VACUUM ANALYZE ${quoteIdent(options.schema)}.${quoteIdent(options.table)}`);
    const { rows } = await admin.query<{ server_version: string }>('SHOW server_version');
    return {
      server,
      seed,
      serverVersion: rows[0]!.server_version,
      env: {
        PGHOST: server.host,
        PGPORT: String(server.port),
        PGDATABASE: server.database,
        PGUSER: server.user,
        PGPASSWORD: server.password,
        PGSSLMODE: 'disable',
      },
      stop: () => server.stop(),
    };
  } catch (err) {
    await server.stop().catch(() => undefined);
    throw err;
  } finally {
    await admin.end().catch(() => undefined);
  }
}
