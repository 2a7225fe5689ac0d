/**
 * Times the embedded PostgreSQL and the deterministic trip seed.
 *
 *   npx tsx tools/seed-check.ts                 # 200000 rows in a throw-away cluster
 *   npx tsx tools/seed-check.ts 200000 1000000  # several sizes, one table each
 *   SEED_CHECK_DATA_DIR=/tmp/pg npx tsx tools/seed-check.ts   # keep the cluster (time a restart)
 *
 * Prints the start-up time, then for each size the seed time, the time of a second (reused) call
 * and the table's checksum, which must be the same on every machine for the same row count.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../lib/db/embeddedPostgres.ts';
import { seedTrips, tripsChecksum } from '../lib/db/seedTrips.ts';

const sizes = process.argv.slice(2).map(Number);
if (sizes.length === 0) sizes.push(200_000);
if (sizes.some((n) => !Number.isInteger(n) || n < 1)) {
  console.error('usage: tsx tools/seed-check.ts [rows ...]');
  process.exit(2);
}

const keep = process.env.SEED_CHECK_DATA_DIR;
const dataDir = keep ?? mkdtempSync(join(tmpdir(), 'lakebase-seed-check-'));
const logger = {
  info: (obj: object, msg?: string) => console.log(msg ?? '', JSON.stringify(obj)),
  warn: (obj: object, msg?: string) => console.warn('WARN', msg ?? '', JSON.stringify(obj)),
};

let startMs = Date.now();
const server = await startEmbeddedPostgres({ dataDir, persistent: Boolean(keep), logger });
startMs = Date.now() - startMs;
console.log(`embedded PostgreSQL ready on ${server.host}:${server.port} in ${startMs} ms (data in ${dataDir})`);

const client = new pg.Client(server.connectionConfig());
try {
  await client.connect();
  for (const rows of sizes) {
    const table = `seed_check_${rows}`;
    const first = await seedTrips(client, { schema: 'public', table, rows, logger });
    const second = await seedTrips(client, { schema: 'public', table, rows });
    const checksum = await tripsChecksum(client, { schema: 'public', table });
    const { rows: size } = await client.query<{ size: string }>(`SELECT pg_size_pretty(pg_total_relation_size($1)) AS size`, [`public.${table}`]);
    console.log(
      `${rows} rows: seed ${first.ms} ms (reused: ${first.reused}), second call ${second.ms} ms (reused: ${second.reused}), ` +
        `size ${size[0]?.size}, checksum ${checksum}`,
    );
  }
} finally {
  await client.end().catch(() => undefined);
  const stopping = Date.now();
  await server.stop();
  console.log(`stopped in ${Date.now() - stopping} ms`);
  if (!keep) rmSync(dataDir, { recursive: true, force: true });
}
