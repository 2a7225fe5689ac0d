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
