import type pg from 'pg';
import type { TripsTable } from '../lib/http/serviceContext.ts';
import { TRIP_COLUMN_NAMES, type TripColumn } from '../lib/db/tripsTable.ts';

/** The columns every trip response carries (lib/db/tripsTable.ts), selected by name so extra table columns stay private. */
export const TRIP_COLUMNS = TRIP_COLUMN_NAMES.join(', ');

/** How a column's PostgreSQL type arrives in JavaScript (bigint and timestamps as lib/db/createPool.ts's type parsers give them). */
type ColumnValue<T extends string> = T extends 'bigint' | 'integer' | 'smallint' | 'double precision' ? number : string;

/** A trip as the handlers return it: one property per column, typed from its PostgreSQL type; only the key is never null. */
export type Trip = { [C in TripColumn as C['name']]: C['name'] extends 'id' ? number : ColumnValue<C['type']> | null };

/** Prepared statement names must map to one text per connection; the table is fixed per process. */
export function statementName(base: string, trips: TripsTable): string {
  return `${base}:${trips.schema}.${trips.table}`;
}

/** `count(*)` of the whole table, shared by /trips/count and /trips/pages (one prepared statement). */
export function countTripsStatement(trips: TripsTable) {
  return { name: statementName('trip_count', trips), text: `SELECT count(*) AS total_trips FROM ${trips.qualified}` };
}

/**
 * A page of trips as one JSON array built by Postgres, with the last id on the page and whether any
 * trip follows it. `source` is a subquery yielding TRIP_COLUMNS in id order, at most `pageSize + 1`
 * rows (its LIMIT is `$pageSize::int + 1`): the extra row only answers `has_next`, so the whole page
 * is one index range scan. (A separate `EXISTS (… WHERE id > max(page.id))` probe was planned as a
 * sequential scan, the planner not knowing the bound, and read every row before a deep cursor.)
 * Postgres formats the JSON in C from the rows it already has, so the service neither parses 100 rows
 * into objects nor serialises them again; timestamps come out as ISO 8601 without an offset and
 * numbers as their shortest round-trip text, the same bytes JSON.stringify gives.
 */
function tripPageJsonSql(source: string, pageSizeParam: string): string {
  return `
    WITH fetched AS MATERIALIZED (${source})
    SELECT '[' || coalesce(string_agg(row_to_json(page)::text, ',' ORDER BY page.id), '') || ']' AS trips,
           max(page.id) AS last_id,
           (SELECT count(*) FROM fetched) > ${pageSizeParam}::int AS has_next
    FROM (SELECT * FROM fetched ORDER BY id LIMIT ${pageSizeParam}::int) AS page`;
}

/** The keyset page after `cursor` (`/trips/stream`). */
export function streamPageStatement(trips: TripsTable, cursor: number, pageSize: number): pg.QueryConfig {
  return {
    name: statementName('trip_stream_json', trips),
    text: tripPageJsonSql(`SELECT ${TRIP_COLUMNS} FROM ${trips.qualified} WHERE id > $1 ORDER BY id LIMIT $2::int + 1`, '$2'),
    values: [cursor, pageSize],
  };
}

/** The page at `offset` in id order (`/trips/pages`). */
export function offsetPageStatement(trips: TripsTable, offset: number, pageSize: number): pg.QueryConfig {
  return {
    name: statementName('trip_page_json', trips),
    text: tripPageJsonSql(`SELECT ${TRIP_COLUMNS} FROM ${trips.qualified} ORDER BY id LIMIT $1::int + 1 OFFSET $2`, '$1'),
    values: [pageSize, offset],
  };
}

export interface TripPageJsonRow {
  /** A JSON array of trips. */
  trips: string;
  last_id: number | null;
  has_next: boolean;
}
