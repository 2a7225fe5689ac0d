// Written by `npm run add-table` for public.nyc_train_synced from the catalog: --refresh rewrites it, so put your own code in the handlers.
import { RIDE_DIALECT } from '../../functions/rideDialect.ts';
import { describeTableApi } from '../support/tableApiSuite.ts';

/**
 * public.nyc_train_synced under /rides: the table is recreated from
 * this DDL in a throw-away embedded PostgreSQL, filled with generated rows, and every generated
 * operation is checked (see test/support/tableApiSuite.ts), the collection through
 * `@supabase/postgrest-js` as a front end would call it, within what functions/rideDialect.ts
 * allows. When the table changes, `npm run add-table -- public.nyc_train_synced --refresh`
 * rewrites this file: put checks of your own in another test file.
 */
describeTableApi({
  table: '"public"."nyc_train_synced"',
  path: '/rides',
  ddl: [
    'DROP TABLE IF EXISTS "public"."nyc_train_synced" CASCADE',
    'CREATE TABLE "public"."nyc_train_synced" (\n  "id" bigint NOT NULL,\n  "vendor_id" text,\n  "pickup_datetime" timestamp without time zone,\n  "dropoff_datetime" timestamp without time zone,\n  "passenger_count" smallint,\n  "pickup_longitude" double precision,\n  "pickup_latitude" double precision,\n  "dropoff_longitude" double precision,\n  "dropoff_latitude" double precision,\n  "store_and_fwd_flag" text,\n  "trip_duration" integer,\n  CONSTRAINT "nyc_train_synced_pkey" PRIMARY KEY (id)\n)',
    'COMMENT ON TABLE "public"."nyc_train_synced" IS \'lakebase-api synthetic trips v2 rows=200000\'',
  ],
  columns: [
    { name: 'id', fixture: { kind: 'int8', sql: 'bigint' }, notNull: true, filledByDatabase: false, writable: true },
    {
      name: 'vendor_id',
      fixture: { kind: 'text', sql: 'text' },
      notNull: false,
      filledByDatabase: false,
      writable: true,
    },
    {
      name: 'pickup_datetime',
      fixture: { kind: 'timestamp', sql: 'timestamp without time zone' },
      notNull: false,
      filledByDatabase: false,
      writable: true,
    },
    {
      name: 'dropoff_datetime',
      fixture: { kind: 'timestamp', sql: 'timestamp without time zone' },
      notNull: false,
      filledByDatabase: false,
      writable: true,
    },
    {
      name: 'passenger_count',
      fixture: { kind: 'int2', sql: 'smallint' },
      notNull: false,
      filledByDatabase: false,
      writable: true,
    },
    {
      name: 'pickup_longitude',
      fixture: { kind: 'float8', sql: 'double precision' },
      notNull: false,
      filledByDatabase: false,
      writable: true,
    },
    {
      name: 'pickup_latitude',
      fixture: { kind: 'float8', sql: 'double precision' },
      notNull: false,
      filledByDatabase: false,
      writable: true,
    },
    {
      name: 'dropoff_longitude',
      fixture: { kind: 'float8', sql: 'double precision' },
      notNull: false,
      filledByDatabase: false,
      writable: true,
    },
    {
      name: 'dropoff_latitude',
      fixture: { kind: 'float8', sql: 'double precision' },
      notNull: false,
      filledByDatabase: false,
      writable: true,
    },
    {
      name: 'store_and_fwd_flag',
      fixture: { kind: 'text', sql: 'text' },
      notNull: false,
      filledByDatabase: false,
      writable: true,
    },
    {
      name: 'trip_duration',
      fixture: { kind: 'int4', sql: 'integer' },
      notNull: false,
      filledByDatabase: false,
      writable: true,
    },
  ],
  key: ['id'],
  keyParams: ['id'],
  filters: [
    { param: 'id', column: 'id', operator: '=' },
    { param: 'id.gt', column: 'id', operator: '>' },
    { param: 'id.gte', column: 'id', operator: '>=' },
    { param: 'id.lt', column: 'id', operator: '<' },
    { param: 'id.lte', column: 'id', operator: '<=' },
  ],
  foreignKeys: [],
  uniqueKeys: [['id']],
  updatable: [
    'vendor_id',
    'pickup_datetime',
    'dropoff_datetime',
    'passenger_count',
    'pickup_longitude',
    'pickup_latitude',
    'dropoff_longitude',
    'dropoff_latitude',
    'store_and_fwd_flag',
    'trip_duration',
  ],
  operations: { count: 'countRides', list: 'listRides', get: 'getRide' },
  dialect: RIDE_DIALECT,
});
