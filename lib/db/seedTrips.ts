import pg from 'pg';
import { firstRow } from './firstRow.ts';
import { quoteIdent } from './sqlIdentifiers.ts';
import { TRIP_COLUMN_NAMES, TRIP_COLUMNS } from './tripsTable.ts';

export { quoteIdent };

/**
 * Deterministic synthetic NYC-taxi trips, generated inside Postgres by `INSERT … SELECT … FROM
 * generate_series`, so a million rows never cross the wire.
 *
 * Determinism: the same row count gives byte-identical rows on every machine.
 * - Randomness is `hashint8extended(id, k)` for k = 1..4: 64 bits each, four 16-bit uniforms.
 *   It is Jenkins' lookup3 over the id's 32-bit fold (`hash_uint32_extended`), integer arithmetic
 *   only, so no endianness or libm enters; hash partitioning stores its values on disk, so
 *   PostgreSQL cannot change it without breaking pg_upgrade. It is about 10x cheaper than md5 of
 *   the id's text, which is the usual portable alternative.
 * - Everything derived from it is integer arithmetic, table look-ups and one correctly rounded
 *   division at the end (micro-degrees / 1e6): no ln, exp or cos, whose last bit differs between
 *   C libraries. The test pins a checksum of the first 2000 rows to catch any drift.
 */
export interface SeedOptions {
  schema: string;
  table: string;
  rows: number;
  logger?: { info(obj: object, msg?: string): void; warn?(obj: object, msg?: string): void };
}

export interface SeedResult {
  /** Rows in the table: the seeded count, or the table's own count when it is not ours. */
  rows: number;
  /** true = the table was already there and left alone. */
  reused: boolean;
  ms: number;
}

/** Bump when the generated values change, so seeded tables are rebuilt on the next start. */
const SEED_VERSION = 2;
const MARKER_PREFIX = 'lakebase-api synthetic trips';
const marker = (rows: number) => `${MARKER_PREFIX} v${SEED_VERSION} rows=${rows}`;

/** Is this table comment the seeder's marker (bookkeeping, not a description of the data)? */
export const isSeedMarker = (comment: string): boolean => comment.startsWith(MARKER_PREFIX);

/** Rows per INSERT: bigger seeds log progress between statements (all in one transaction). */
const CHUNK_ROWS = 250_000;

/** Two-key advisory lock namespace for "seeding a table" (the second key is the table's hash). */
const ADVISORY_LOCK_CLASS = 0x1a4eba5e;

// ---------------------------------------------------------------------------------------------
// Distributions. Probabilities are out of 65536 (one 16-bit uniform); all values are integers.
// ---------------------------------------------------------------------------------------------

/** Relative pickups per hour of day, close to the 2016 NYC yellow-cab profile: quiet 3-5 am, a
 * morning rush at 8-9, a long afternoon and the day's peak at 18-19. */
const HOURLY_WEIGHTS = [36, 26, 19, 14, 11, 10, 23, 38, 46, 46, 44, 46, 48, 48, 50, 48, 44, 52, 64, 63, 58, 58, 55, 47];

/** Cumulative thresholds for width_bucket: bucket i (0-based) = the i-th weight's share of 65536. */
function cumulativeThresholds(weights: readonly number[]): number[] {
  const total = weights.reduce((a, b) => a + b, 0);
  const thresholds: number[] = [];
  let sum = 0;
  for (const weight of weights.slice(0, -1)) {
    sum += weight;
    thresholds.push(Math.round((sum * 65536) / total));
  }
  return thresholds;
}

/** Trip duration (seconds) at cumulative probability u/65536, interpolated linearly between knots:
 * median 11 min, 90% between 4 and 35 min, 1 in 1000 over two hours, at most four. */
const DURATION_KNOTS: ReadonlyArray<readonly [u: number, seconds: number]> = [
  [0, 60],
  [655, 120],
  [3277, 180],
  [6554, 245],
  [16384, 397],
  [32768, 662],
  [49152, 1075],
  [58982, 1634],
  [62259, 2100],
  [64881, 3440],
  [65470, 7200],
  [65536, 14400],
];

/** Passengers 1..6: 71% alone, then 14, 4, 2, 5 and 4 percent (5 and 6 are the minivans). */
const PASSENGER_WEIGHTS = [71, 14, 4, 2, 5, 4];

/** Pickup areas: centre and half-spread in micro-degrees, weight per mille. Mostly Manhattan. */
const ZONES: ReadonlyArray<{ name: string; lon: number; lat: number; dLon: number; dLat: number; weight: number }> = [
  { name: 'Midtown', lon: -73_985_500, lat: 40_758_000, dLon: 12_000, dLat: 10_000, weight: 300 },
  { name: 'Chelsea and the Village', lon: -73_999_000, lat: 40_739_000, dLon: 10_000, dLat: 10_000, weight: 170 },
  { name: 'Upper East Side', lon: -73_959_000, lat: 40_773_000, dLon: 9_000, dLat: 12_000, weight: 130 },
  { name: 'Upper West Side', lon: -73_977_000, lat: 40_786_000, dLon: 9_000, dLat: 12_000, weight: 100 },
  { name: 'Lower Manhattan', lon: -74_007_000, lat: 40_715_000, dLon: 8_000, dLat: 10_000, weight: 90 },
  { name: 'Brooklyn', lon: -73_970_000, lat: 40_695_000, dLon: 25_000, dLat: 20_000, weight: 60 },
  { name: 'Queens', lon: -73_925_000, lat: 40_755_000, dLon: 25_000, dLat: 20_000, weight: 40 },
  { name: 'Harlem', lon: -73_945_000, lat: 40_810_000, dLon: 10_000, dLat: 12_000, weight: 30 },
  { name: 'JFK', lon: -73_786_000, lat: 40_644_000, dLon: 6_000, dLat: 4_000, weight: 30 },
  { name: 'LaGuardia', lon: -73_872_000, lat: 40_774_000, dLon: 5_000, dLat: 3_000, weight: 30 },
  { name: 'anywhere', lon: -73_895_000, lat: 40_740_000, dLon: 125_000, dLat: 110_000, weight: 20 },
];

/** Every coordinate stays in this box (micro-degrees). */
const BOX = { minLon: -74_020_000, maxLon: -73_770_000, minLat: 40_630_000, maxLat: 40_850_000 };

/** Sixteen compass directions as unit vectors x1000 (cos, sin of k * 22.5 degrees). */
const DIRECTION_COS = [1000, 924, 707, 383, 0, -383, -707, -924, -1000, -924, -707, -383, 0, 383, 707, 924];
const DIRECTION_SIN = [0, 383, 707, 924, 1000, 924, 707, 383, 0, -383, -707, -924, -1000, -924, -707, -383];

const intArray = (values: readonly number[]) => `'{${values.join(',')}}'::int[]`;

/** A dropoff that left the box is mirrored back in at the edge it crossed (the Hudson is just west
 * of Manhattan: clamping would pile trips up on the edge), then clamped if it overshot twice. */
const intoBox = (v: string, min: number, max: number) =>
  `least(${max}, greatest(${min}, CASE WHEN ${v} < ${min} THEN ${2 * min} - ${v} WHEN ${v} > ${max} THEN ${2 * max} - ${v} ELSE ${v} END))`;

/** The INSERT … SELECT for ids $1..$2. Each level is materialised once per row (OFFSET 0 stops the
 * planner from inlining a subquery's expressions into every use). */
function insertSql(qualified: string): string {
  const durationU = DURATION_KNOTS.map(([u]) => u);
  const durationS = DURATION_KNOTS.map(([, s]) => s);
  const zoneThresholds = cumulativeThresholds(ZONES.map((z) => z.weight));
  // Straight-line speed of a trip, micro-degrees of latitude per second: 15..39 (5..15 km/h).
  // A degree of longitude at 40.75 N is 0.758 of a degree of latitude: x 1319/1000.
  return `
    INSERT INTO ${qualified} (${TRIP_COLUMN_NAMES.join(', ')})
    SELECT id, vendor_id, pickup, pickup + make_interval(secs => duration), passengers,
      plon::float8 / 1000000, plat::float8 / 1000000,
      ${intoBox('dlon', BOX.minLon, BOX.maxLon)}::float8 / 1000000,
      ${intoBox('dlat', BOX.minLat, BOX.maxLat)}::float8 / 1000000,
      flag, duration
    FROM (
    SELECT id, vendor_id, pickup, passengers, flag, duration, plon, plat,
      plon + reach * (${intArray(DIRECTION_COS)})[dir] * 1319 / 1000000 AS dlon,
      plat + reach * (${intArray(DIRECTION_SIN)})[dir] / 1000 AS dlat
    FROM (
      SELECT id, vendor_id, pickup, passengers, flag, dir,
        -- Piecewise-linear inverse CDF of the duration.
        (d0 + (d1 - d0) * (u4 - k0) / (k1 - k0))::int AS duration,
        least(${BOX.maxLon}, greatest(${BOX.minLon}, (${intArray(ZONES.map((z) => z.lon))})[zone]
          + (u8 + u9 - 65535)::bigint * (${intArray(ZONES.map((z) => z.dLon))})[zone] / 65536)) AS plon,
        least(${BOX.maxLat}, greatest(${BOX.minLat}, (${intArray(ZONES.map((z) => z.lat))})[zone]
          + (u10 + u11 - 65535)::bigint * (${intArray(ZONES.map((z) => z.dLat))})[zone] / 65536)) AS plat,
        -- How far the cab got: straight-line speed x time, capped at 50 minutes' worth.
        (15 + (u13 * 25 >> 16))::bigint * least(d0 + (d1 - d0) * (u4 - k0) / (k1 - k0), 3000) AS reach
      FROM (
        SELECT id, u4, u8, u9, u10, u11, u13,
          CASE WHEN u0 < 30802 THEN '1' ELSE '2' END AS vendor_id,
          timestamp '2016-01-01 00:00:00' + make_interval(
            days => u1 * 182 >> 16,
            hours => width_bucket(u2, ${intArray(cumulativeThresholds(HOURLY_WEIGHTS))}),
            secs => u3 * 3600 >> 16) AS pickup,
          (width_bucket(u5, ${intArray(cumulativeThresholds(PASSENGER_WEIGHTS))}) + 1)::smallint AS passengers,
          CASE WHEN u6 < 328 THEN 'Y' ELSE 'N' END AS flag,
          width_bucket(u7, ${intArray(zoneThresholds)}) + 1 AS zone,
          (u12 >> 12) + 1 AS dir,
          (${intArray(durationU)})[seg] AS k0, (${intArray(durationU)})[seg + 1] AS k1,
          (${intArray(durationS)})[seg] AS d0, (${intArray(durationS)})[seg + 1] AS d1
        FROM (
          SELECT id,
            (h1 & 65535)::int AS u0, (h1 >> 16 & 65535)::int AS u1, (h1 >> 32 & 65535)::int AS u2, (h1 >> 48 & 65535)::int AS u3,
            (h2 & 65535)::int AS u4, (h2 >> 16 & 65535)::int AS u5, (h2 >> 32 & 65535)::int AS u6, (h2 >> 48 & 65535)::int AS u7,
            (h3 & 65535)::int AS u8, (h3 >> 16 & 65535)::int AS u9, (h3 >> 32 & 65535)::int AS u10, (h3 >> 48 & 65535)::int AS u11,
            (h4 & 65535)::int AS u12, (h4 >> 16 & 65535)::int AS u13,
            width_bucket((h2 & 65535)::int, ${intArray(durationU.slice(1, -1))}) + 1 AS seg
          FROM (
            SELECT id, hashint8extended(id, 1) AS h1, hashint8extended(id, 2) AS h2,
              hashint8extended(id, 3) AS h3, hashint8extended(id, 4) AS h4
            FROM generate_series($1::bigint, $2::bigint) AS id
            OFFSET 0
          ) AS hashes
          OFFSET 0
        ) AS uniforms
        OFFSET 0
      ) AS drawn
      OFFSET 0
    ) AS trips
    OFFSET 0
    ) AS moved`;
}

/** The table's definition, from the one list of its columns (the key's NOT NULL; the primary key comes after the load). */
const TABLE_COLUMNS = TRIP_COLUMNS.map((column) => `${column.name} ${column.type}${column.name === 'id' ? ' NOT NULL' : ''}`).join(', ');

async function withClient<T>(db: pg.Pool | pg.ClientBase, work: (client: pg.ClientBase) => Promise<T>): Promise<T> {
  if (!(db instanceof pg.Pool)) return work(db);
  const client = await db.connect();
  try {
    return await work(client);
  } finally {
    client.release();
  }
}

async function inTransaction<T>(client: pg.ClientBase, work: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await work();
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * Seeds `schema.table` with `rows` trips, once.
 *
 * - A table carrying this version's marker for the same row count is reused as it is (edits made
 *   through the API included): one catalog query.
 * - A table with an older marker or another row count (SAMPLE_ROWS changed) is dropped and rebuilt.
 * - A table without a marker is somebody's own data: left alone, with a warning.
 *
 * Everything runs in one transaction under a transaction-level advisory lock: a second process
 * starting at the same time waits and then finds the table seeded, and a crash mid-seed leaves
 * no half-filled table behind (the marker is committed with the rows).
 */
export async function seedTrips(db: pg.Pool | pg.ClientBase, options: SeedOptions): Promise<SeedResult> {
  const { schema, table, rows, logger } = options;
  if (!Number.isSafeInteger(rows) || rows < 1) throw new RangeError(`rows must be a positive integer, got ${rows}`);
  const started = Date.now();
  const qualified = `${quoteIdent(schema)}.${quoteIdent(table)}`;
  const name = `${schema}.${table}`;

  return withClient(db, (client) =>
    inTransaction(client, async () => {
      // Bulk work must not trip a statement_timeout the caller's session may carry.
      await client.query(`SET LOCAL statement_timeout = 0`);
      await client.query(`SET LOCAL lock_timeout = '60s'`);
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [ADVISORY_LOCK_CLASS, name]);

      const existing = await client.query<{ comment: string | null }>(
        `SELECT obj_description(c.oid, 'pg_class') AS comment
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')`,
        [schema, table],
      );
      const found = existing.rows[0];
      if (found) {
        const comment = found.comment ?? '';
        if (comment === marker(rows)) return { rows, reused: true, ms: Date.now() - started };
        if (!isSeedMarker(comment)) {
          const count = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${qualified}`);
          const actual = Number(firstRow(count, 'count(*)').n);
          logger?.warn?.({ table: name, rows: actual }, `${name} exists and was not created by the seeder: leaving it as it is`);
          return { rows: actual, reused: true, ms: Date.now() - started };
        }
        logger?.info({ table: name, was: comment, rows }, `${name} was seeded with other settings: re-seeding`);
      }

      logger?.info({ rows, table: name }, `Seeding ${rows} synthetic trips into ${name}`);
      await client.query(`SET LOCAL maintenance_work_mem = '256MB'`);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
      await client.query(`DROP TABLE IF EXISTS ${qualified}`);
      await client.query(`CREATE TABLE ${qualified} (${TABLE_COLUMNS})`);
      const sql = insertSql(qualified);
      for (let from = 1; from <= rows; from += CHUNK_ROWS) {
        const to = Math.min(rows, from + CHUNK_ROWS - 1);
        await client.query(sql, [from, to]);
        if (to < rows) logger?.info({ table: name, done: to, rows }, `Seeded ${to} of ${rows} trips`);
      }
      // The key after the bulk load: one sorted build instead of row-by-row index maintenance.
      await client.query(`ALTER TABLE ${qualified} ADD PRIMARY KEY (id)`);
      await client.query(`COMMENT ON TABLE ${qualified} IS '${marker(rows)}'`);
      await client.query(`ANALYZE ${qualified}`);
      const ms = Date.now() - started;
      logger?.info({ rows, table: name, ms }, `Seeded ${rows} trips into ${name} in ${(ms / 1000).toFixed(1)} s`);
      return { rows, reused: false, ms };
    }),
  );
}

/**
 * md5 over every row in id order, formatted independently of the session (DateStyle,
 * extra_float_digits): equal checksums mean byte-identical content. For tests and tools.
 */
export async function tripsChecksum(db: pg.Pool | pg.ClientBase, options: Pick<SeedOptions, 'schema' | 'table'>): Promise<string> {
  const qualified = `${quoteIdent(options.schema)}.${quoteIdent(options.table)}`;
  return withClient(db, (client) =>
    inTransaction(client, async () => {
      await client.query(`SET LOCAL datestyle = 'ISO, YMD'`);
      await client.query(`SET LOCAL extra_float_digits = 1`);
      // One md5 per row, then md5 of their concatenation: 32 bytes a row instead of the row text.
      const result = await client.query<{ checksum: string | null }>(
        `SELECT md5(string_agg(md5(t::text), '' ORDER BY t.id)) AS checksum FROM ${qualified} AS t`,
      );
      return firstRow(result, 'the checksum query').checksum ?? md5OfNothing;
    }),
  );
}

const md5OfNothing = 'd41d8cd98f00b204e9800998ecf8427e';
