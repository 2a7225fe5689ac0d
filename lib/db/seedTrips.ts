import pg from 'pg';
import { quoteIdent } from './sqlIdentifiers.ts';

/**
 * Deterministic synthetic NYC-taxi trips, generated inside Postgres in one INSERT … SELECT.
 *
 * Randomness comes from md5 of the id (stable on every platform and version, unlike the built-in
 * hash functions, whose output may depend on endianness): two digests per row give sixteen 16-bit
 * uniforms. The same row count yields the same table everywhere.
 */
export interface SeedOptions {
  schema: string;
  table: string;
  rows: number;
  logger?: { info(obj: object, msg?: string): void };
}

export interface SeedResult {
  rows: number;
  reused: boolean;
  ms: number;
}

const SEED_VERSION = 1;
const marker = (rows: number) => `lakebase-api synthetic trips v${SEED_VERSION} rows=${rows}`;

/** Share of pickups per hour of day (NYC-like: quiet at 3-5 am, a morning rush, an evening peak). */
const HOURLY_WEIGHTS = [
  3.7, 2.7, 2.0, 1.5, 1.1, 1.0, 2.2, 3.8, 4.6, 4.6, 4.4, 4.6,
  4.9, 4.9, 5.1, 4.9, 4.5, 5.3, 6.4, 6.1, 5.7, 5.6, 5.4, 4.6,
];
/** Upper bounds of hours 0..22 as cumulative fractions: width_bucket maps a uniform to its hour. */
const HOUR_THRESHOLDS = (() => {
  const total = HOURLY_WEIGHTS.reduce((a, b) => a + b, 0);
  let sum = 0;
  return HOURLY_WEIGHTS.slice(0, -1).map((w) => (sum += w) / total);
})();

function seedSql(table: string): string {
  // u<n>: the n-th 16-bit slice of the row's two digests, as a uniform in (0, 1), computed once
  // per row in the inner query (OFFSET 0 keeps the planner from inlining it into every use).
  const uniforms = Array.from({ length: 16 }, (_, n) => {
    const digest = n < 8 ? 'h1' : 'h2';
    return `((('x' || substr(${digest}, ${(n % 8) * 4 + 1}, 4))::bit(16)::int + 0.5) / 65536.0) AS u${n}`;
  }).join(',\n          ');
  const thresholds = `ARRAY[${HOUR_THRESHOLDS.map((t) => t.toFixed(6)).join(',')}]::float8[]`;
  // Box-Muller normals for durations and coordinates.
  const normal = (a: number, b: number) => `(sqrt(-2 * ln(u${a})) * cos(2 * pi() * u${b}))`;
  return `
    INSERT INTO ${table} (id, vendor_id, pickup_datetime, dropoff_datetime, passenger_count,
      pickup_longitude, pickup_latitude, dropoff_longitude, dropoff_latitude, store_and_fwd_flag, trip_duration)
    SELECT id, vendor_id, pickup, pickup + make_interval(secs => duration), passengers,
      round(plon::numeric, 6)::float8, round(plat::numeric, 6)::float8,
      round(least(-73.70, greatest(-74.05, plon + dlon))::numeric, 6)::float8,
      round(least(40.90, greatest(40.57, plat + dlat))::numeric, 6)::float8,
      flag, duration
    FROM (
      SELECT id,
        CASE WHEN u0 < 0.465 THEN '1' ELSE '2' END AS vendor_id,
        timestamp '2016-01-01 00:00:00'
          + make_interval(days => floor(u1 * 182)::int, hours => width_bucket(u2, ${thresholds}), secs => floor(u3 * 3600)) AS pickup,
        least(10800, greatest(60, round(exp(ln(660) + 0.62 * ${normal(4, 5)}))))::int AS duration,
        CASE WHEN u6 < 0.71 THEN 1 WHEN u6 < 0.85 THEN 2 WHEN u6 < 0.89 THEN 3
             WHEN u6 < 0.91 THEN 4 WHEN u6 < 0.96 THEN 5 ELSE 6 END::smallint AS passengers,
        -- 80% of pickups in Manhattan, the rest anywhere in the city.
        CASE WHEN u7 < 0.8 THEN least(-73.93, greatest(-74.02, -73.982 + 0.012 * ${normal(8, 9)}))
             ELSE -74.02 + 0.25 * u8 END AS plon,
        CASE WHEN u7 < 0.8 THEN least(40.83, greatest(40.70, 40.755 + 0.025 * ${normal(10, 11)}))
             ELSE 40.63 + 0.22 * u10 END AS plat,
        (u12 - 0.5) * 0.06 AS dlon,
        (u13 - 0.5) * 0.08 AS dlat,
        CASE WHEN u14 < 0.005 THEN 'Y' ELSE 'N' END AS flag
      FROM (
        SELECT id,
          ${uniforms}
        FROM generate_series(1, $1::bigint) AS id,
          LATERAL (SELECT md5(id::text) AS h1, md5('trip-' || id::text) AS h2) AS digests
        OFFSET 0
      ) AS r
    ) AS generated`;
}

async function withClient<T>(db: pg.Pool | pg.ClientBase, work: (client: pg.ClientBase) => Promise<T>): Promise<T> {
  if (!(db instanceof pg.Pool)) return work(db);
  const client = await db.connect();
  try {
    return await work(client);
  } finally {
    client.release();
  }
}

/**
 * Seeds the table once. A table carrying our marker for the same row count is reused as it is
 * (vendor updates made through the API included); one with another count is rebuilt; a table
 * without our marker is somebody's real data and is never touched.
 */
export async function seedTrips(db: pg.Pool | pg.ClientBase, options: SeedOptions): Promise<SeedResult> {
  const started = Date.now();
  const qualified = `${quoteIdent(options.schema)}.${quoteIdent(options.table)}`;
  const name = `${options.schema}.${options.table}`;
  return withClient(db, async (client) => {
    // Two processes starting together must not both seed.
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [`seed:${name}`]);
    try {
      const existing = await client.query<{ comment: string | null }>(
        `SELECT obj_description(c.oid, 'pg_class') AS comment FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relname = $2`,
        [options.schema, options.table],
      );
      if (existing.rows.length > 0) {
        const comment = existing.rows[0]!.comment ?? '';
        if (comment === marker(options.rows) || !comment.startsWith('lakebase-api synthetic trips')) {
          return { rows: options.rows, reused: true, ms: Date.now() - started };
        }
      }
      options.logger?.info({ rows: options.rows, table: name }, `Seeding ${options.rows} synthetic trips into ${name}`);
      await client.query('BEGIN');
      try {
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(options.schema)}`);
        await client.query(`DROP TABLE IF EXISTS ${qualified}`);
        await client.query(`CREATE TABLE ${qualified} (
          id bigint NOT NULL, vendor_id text, pickup_datetime timestamp, dropoff_datetime timestamp,
          passenger_count smallint, pickup_longitude double precision, pickup_latitude double precision,
          dropoff_longitude double precision, dropoff_latitude double precision, store_and_fwd_flag text,
          trip_duration integer)`);
        await client.query(seedSql(qualified), [options.rows]);
        // The key after the bulk load: one sorted build instead of row-by-row index maintenance.
        await client.query(`ALTER TABLE ${qualified} ADD PRIMARY KEY (id)`);
        await client.query(`COMMENT ON TABLE ${qualified} IS '${marker(options.rows)}'`);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
      await client.query(`ANALYZE ${qualified}`);
      const ms = Date.now() - started;
      options.logger?.info({ rows: options.rows, table: name, ms }, `Seeded ${options.rows} trips in ${(ms / 1000).toFixed(1)} s`);
      return { rows: options.rows, reused: false, ms };
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`seed:${name}`]).catch(() => undefined);
    }
  });
}
