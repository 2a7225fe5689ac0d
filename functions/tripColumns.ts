import type { TripsTable } from '../lib/context.ts';

/** The columns every trip response carries, selected by name so extra table columns stay private. */
export const TRIP_COLUMNS = [
  'id', 'vendor_id', 'pickup_datetime', 'dropoff_datetime', 'passenger_count',
  'pickup_longitude', 'pickup_latitude', 'dropoff_longitude', 'dropoff_latitude',
  'store_and_fwd_flag', 'trip_duration',
].join(', ');

export interface Trip {
  id: number;
  vendor_id: string | null;
  pickup_datetime: string | null;
  dropoff_datetime: string | null;
  passenger_count: number | null;
  pickup_longitude: number | null;
  pickup_latitude: number | null;
  dropoff_longitude: number | null;
  dropoff_latitude: number | null;
  store_and_fwd_flag: string | null;
  trip_duration: number | null;
}

/** Prepared statement names must map to one text per connection; the table is fixed per process. */
export function statementName(base: string, trips: TripsTable): string {
  return `${base}:${trips.schema}.${trips.table}`;
}

/** `count(*)` of the whole table, shared by /trips/count and /trips/pages (one prepared statement). */
export function countTripsStatement(trips: TripsTable) {
  return { name: statementName('trip_count', trips), text: `SELECT count(*) AS total_trips FROM ${trips.qualified}` };
}

/**
 * A page of trips as one JSON array built by Postgres from `source` (a subquery yielding
 * TRIP_COLUMNS in id order), with the last id on the page and whether any trip follows it. Postgres
 * formats the JSON in C from the rows it already has, so the service neither parses 100 rows into
 * objects nor serialises them again; timestamps come out as ISO 8601 without an offset and numbers as
 * their shortest round-trip text, the same bytes JSON.stringify gives.
 */
export function tripPageJsonSql(trips: TripsTable, source: string): string {
  return `
    SELECT '[' || coalesce(string_agg(row_to_json(page)::text, ',' ORDER BY page.id), '') || ']' AS trips,
           max(page.id) AS last_id,
           EXISTS (SELECT 1 FROM ${trips.qualified} WHERE id > max(page.id)) AS has_next
    FROM (${source}) AS page`;
}

export interface TripPageJsonRow {
  /** A JSON array of trips. */
  trips: string;
  last_id: number | null;
  has_next: boolean;
}
