// Written by `npm run add-table` for public.nyc_train_synced from the catalog: --refresh rewrites it, so put your own code in the handlers.
import type { ColumnFilter } from '../lib/tables/tableFilters.ts';
import type { PostgrestTable } from '../lib/postgrest/tableShape.ts';

/**
 * public.nyc_train_synced, served under /rides.
 */
export const RIDE_TABLE = '"public"."nyc_train_synced"';

/**
 * One row as every response carries it (the Ride schema in openapi/rides.ts).
 * @public for the code you write against this table
 */
export type Ride = {
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
};

/**
 * Each row of `t` in its wire form, as `r`: Postgres' row_to_json(r) is then the response JSON
 * (numeric as exact text, bytea as base64, timestamps in ISO 8601), built in C from the row it has.
 */
export const RIDE_WIRE = `CROSS JOIN LATERAL (SELECT ${[
  't."id" AS "id"',
  't."vendor_id" AS "vendor_id"',
  't."pickup_datetime" AS "pickup_datetime"',
  't."dropoff_datetime" AS "dropoff_datetime"',
  't."passenger_count" AS "passenger_count"',
  't."pickup_longitude" AS "pickup_longitude"',
  't."pickup_latitude" AS "pickup_latitude"',
  't."dropoff_longitude" AS "dropoff_longitude"',
  't."dropoff_latitude" AS "dropoff_latitude"',
  't."store_and_fwd_flag" AS "store_and_fwd_flag"',
  't."trip_duration" AS "trip_duration"',
].join(', ')}) AS r`;

/** The table's column names: what ./rideDialect.ts may list as filterable and orderable. */
export type RideColumn =
  | 'id'
  | 'vendor_id'
  | 'pickup_datetime'
  | 'dropoff_datetime'
  | 'passenger_count'
  | 'pickup_longitude'
  | 'pickup_latitude'
  | 'dropoff_longitude'
  | 'dropoff_latitude'
  | 'store_and_fwd_flag'
  | 'trip_duration';

/**
 * /rides in PostgREST's dialect (lib/postgrest/): the columns as the catalog describes them, every
 * one filterable and orderable. The handlers serve RIDE_DIALECT of ./rideDialect.ts: this, narrowed
 * as the owner chooses there (that file is yours: --refresh never rewrites it).
 */
export const RIDE_CATALOG: PostgrestTable = {
  name: 'rides',
  relation: '"public"."nyc_train_synced"',
  columns: [
    { name: 'id', sql: 'bigint', kind: 'number' },
    { name: 'vendor_id', sql: 'text', kind: 'text' },
    { name: 'pickup_datetime', sql: 'timestamp without time zone', kind: 'temporal' },
    { name: 'dropoff_datetime', sql: 'timestamp without time zone', kind: 'temporal' },
    { name: 'passenger_count', sql: 'smallint', kind: 'number' },
    { name: 'pickup_longitude', sql: 'double precision', kind: 'number' },
    { name: 'pickup_latitude', sql: 'double precision', kind: 'number' },
    { name: 'dropoff_longitude', sql: 'double precision', kind: 'number' },
    { name: 'dropoff_latitude', sql: 'double precision', kind: 'number' },
    { name: 'store_and_fwd_flag', sql: 'text', kind: 'text' },
    { name: 'trip_duration', sql: 'integer', kind: 'number' },
  ],
  primaryKey: ['id'],
};

/** Filters of the list and count: the columns that lead an index (a filter that scans the whole table is not offered). */
export const rideFilters: Readonly<Record<string, ColumnFilter>> = {
  id: { column: 't."id"', operator: '=', value: (p) => `$${p}::bigint` },
  'id.gt': { column: 't."id"', operator: '>', value: (p) => `$${p}::bigint` },
  'id.gte': { column: 't."id"', operator: '>=', value: (p) => `$${p}::bigint` },
  'id.lt': { column: 't."id"', operator: '<', value: (p) => `$${p}::bigint` },
  'id.lte': { column: 't."id"', operator: '<=', value: (p) => `$${p}::bigint` },
};

/** Constraint → its columns, so a refused row names the columns. */
export const rideConstraints: Readonly<Record<string, readonly string[]>> = { nyc_train_synced_pkey: ['id'] };
