// Written by `npm run add-table` for public.nyc_train_synced: yours to edit; re-running with --force replaces it.
import { TRIP_COLUMN_NAMES, TRIP_COLUMNS, type TripColumn } from '../../openapi/tripColumns.ts';
import { describeTableApi } from '../support/tableApiSuite.ts';

/** The fixture generator's kind for each PostgreSQL type the trips table uses. */
const FIXTURE_KIND: Record<TripColumn['type'], string> = {
  bigint: 'int8',
  text: 'text',
  'timestamp without time zone': 'timestamp',
  smallint: 'int2',
  'double precision': 'float8',
  integer: 'int4',
};

/**
 * public.nyc_train_synced under /rides: the table is recreated from this DDL (its columns from
 * openapi/tripColumns.ts, the one list of them) in a throw-away embedded PostgreSQL, filled with
 * generated rows, and every generated operation is checked (see test/support/tableApiSuite.ts). Edit freely.
 */
describeTableApi({
  table: '"public"."nyc_train_synced"',
  path: '/rides',
  ddl: [
    'DROP TABLE IF EXISTS "public"."nyc_train_synced" CASCADE',
    `CREATE TABLE "public"."nyc_train_synced" (\n${TRIP_COLUMNS.map((c) => `  "${c.name}" ${c.type}${c.name === 'id' ? ' NOT NULL' : ''},\n`).join('')}  CONSTRAINT "nyc_train_synced_pkey" PRIMARY KEY (id)\n)`,
    'COMMENT ON TABLE "public"."nyc_train_synced" IS \'lakebase-api synthetic trips v2 rows=200000\'',
  ],
  columns: TRIP_COLUMNS.map((column) => ({
    name: column.name,
    fixture: { kind: FIXTURE_KIND[column.type], sql: column.type },
    notNull: column.name === 'id',
    filledByDatabase: false,
    writable: true,
  })),
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
  updatable: TRIP_COLUMN_NAMES.filter((name) => name !== 'id'),
  operations: { count: 'countRides', list: 'listRides', get: 'getRide' },
});
