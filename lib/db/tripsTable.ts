/**
 * The trips table's columns, in table order, with their PostgreSQL types: the one list the rest
 * derive from. The embedded seeder creates the table from it (lib/db/seedTrips.ts); the Trip schema
 * (openapi/schemas.ts) and the trip handlers' SELECT list and row type (functions/tripColumns.ts)
 * are built from it; the /rides files `npm run add-table` generated read the same table's catalog,
 * and test/userAccess/generatedTables.test.ts checks they are what it writes today.
 */
export const TRIP_COLUMNS = [
  { name: 'id', type: 'bigint' },
  { name: 'vendor_id', type: 'text' },
  { name: 'pickup_datetime', type: 'timestamp without time zone' },
  { name: 'dropoff_datetime', type: 'timestamp without time zone' },
  { name: 'passenger_count', type: 'smallint' },
  { name: 'pickup_longitude', type: 'double precision' },
  { name: 'pickup_latitude', type: 'double precision' },
  { name: 'dropoff_longitude', type: 'double precision' },
  { name: 'dropoff_latitude', type: 'double precision' },
  { name: 'store_and_fwd_flag', type: 'text' },
  { name: 'trip_duration', type: 'integer' },
] as const;

export type TripColumn = (typeof TRIP_COLUMNS)[number];
export type TripColumnName = TripColumn['name'];

export const TRIP_COLUMN_NAMES: readonly TripColumnName[] = TRIP_COLUMNS.map((column) => column.name);
