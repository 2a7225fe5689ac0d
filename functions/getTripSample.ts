import type { Handler } from '../lib/http/handler.ts';
import { statementName } from './tripColumns.ts';

const SAMPLE_SIZE = 5;
/** Draw extra candidates so that collisions (two draws landing on one id) rarely leave us short. */
const CANDIDATES = 20;

export const getTripSample: Handler = async ({ signal }, ctx) => {
  const table = ctx.trips.qualified;
  // Random points between min(id) and max(id), each resolved to the next existing id through the
  // primary-key index: a handful of index probes, whatever the table size, and uniform while ids
  // are dense (as they are here). ORDER BY random() would read the whole table.
  const { rows } = await ctx.db.query<{ id: number }>(
    {
      name: statementName('trip_sample', ctx.trips),
      text: `
      WITH bounds AS (SELECT min(id) AS lo, max(id) AS hi FROM ${table}),
      draws AS (
        SELECT lo + floor(random() * (hi - lo + 1))::bigint AS point
        FROM bounds, generate_series(1, $1::int)
        WHERE lo IS NOT NULL
      )
      SELECT id FROM (
        SELECT DISTINCT hit.id
        FROM draws CROSS JOIN LATERAL (
          SELECT id FROM ${table} WHERE id >= draws.point ORDER BY id LIMIT 1
        ) AS hit
      ) AS found
      ORDER BY random()
      LIMIT $2::int`,
      values: [CANDIDATES, SAMPLE_SIZE],
    },
    { signal },
  );
  if (rows.length === SAMPLE_SIZE) return { body: { sample_trip_ids: rows.map((r) => r.id) } };

  // Few rows or very sparse ids: the table is small enough (or odd enough) for a plain random pick.
  const fallback = await ctx.db.query<{ id: number }>(
    {
      name: statementName('trip_sample_small', ctx.trips),
      text: `SELECT id FROM ${table} ORDER BY random() LIMIT $1::int`,
      values: [SAMPLE_SIZE],
    },
    { signal },
  );
  return { body: { sample_trip_ids: fallback.rows.map((r) => r.id) } };
};
