import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../lib/db/embeddedPostgres.ts';
import { seedTrips } from '../../lib/db/seedTrips.ts';
import type { TestDatabase } from './testService.ts';

export interface RestartableTestDatabase extends TestDatabase {
  /** The running server (a new one after each restart). */
  readonly server: EmbeddedPostgres;
  /** Stops the PostgreSQL server (fast shutdown: open connections are cut), keeping its data. */
  stopServer(): Promise<void>;
  /** Starts it again on the same data directory and port, as after a restart or failover. */
  startServer(): Promise<void>;
}

/**
 * A test database that can go away and come back: kept on disk between stops (a throw-away
 * server deletes its data when stopped), on the same port, so the service's pool reconnects to it.
 */
export async function startRestartableTestDatabase(rows = 500): Promise<RestartableTestDatabase> {
  const dataDir = mkdtempSync(join(tmpdir(), 'lakebase-api-restartable-'));
  let server: EmbeddedPostgres = await startEmbeddedPostgres({ dataDir, port: 0, persistent: true });
  const { port } = server;
  let running = true;
  const admin = new pg.Pool({ host: server.host, port, database: server.database, user: server.user, password: server.password, max: 2 });
  admin.on('error', () => undefined); // its idle connections die with the server: expected here
  await seedTrips(admin, { schema: 'public', table: 'nyc_train_synced', rows });
  return {
    get server() {
      return server;
    },
    admin,
    async stopServer() {
      await server.stop();
      running = false;
    },
    async startServer() {
      server = await startEmbeddedPostgres({ dataDir, port, persistent: true });
      running = true;
    },
    async stop() {
      await admin.end();
      if (running) await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
