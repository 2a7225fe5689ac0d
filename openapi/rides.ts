// Written by `npm run add-table` for public.nyc_train_synced from the catalog: --refresh rewrites it, so put your own code in the handlers.
import type { ParameterObject } from 'openapi3-ts/oas31';
import { RIDE_DIALECT } from '../functions/rideDialect.ts';
import { dialectOperations } from './postgrestDialect.ts';
import { errorRef, schemaRef, type TableApi, tableDatabaseErrors } from './tableApi.ts';

/*
 * public.nyc_train_synced under /rides. Registered in
 * openapi/tables.ts; each operationId names its handler in functions/.
 */

/** Filters of the list and the count: the columns that lead an index. */
const rideFilters: ParameterObject[] = [
  {
    name: 'id',
    in: 'query',
    description: 'Only rows whose id is equal to this value',
    schema: { type: 'integer', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER },
  },
  {
    name: 'id.gt',
    in: 'query',
    description: 'Only rows whose id is greater than this value',
    schema: { type: 'integer', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER },
  },
  {
    name: 'id.gte',
    in: 'query',
    description: 'Only rows whose id is at least this value',
    schema: { type: 'integer', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER },
  },
  {
    name: 'id.lt',
    in: 'query',
    description: 'Only rows whose id is less than this value',
    schema: { type: 'integer', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER },
  },
  {
    name: 'id.lte',
    in: 'query',
    description: 'Only rows whose id is at most this value',
    schema: { type: 'integer', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER },
  },
];

export const ridesApi: TableApi = {
  tag: { name: 'rides', description: 'Rows of public.nyc_train_synced' },
  schemas: {
    Ride: {
      type: 'object',
      description: 'One row of public.nyc_train_synced',
      required: [
        'id',
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
      additionalProperties: false,
      properties: {
        id: {
          type: 'integer',
          minimum: -Number.MAX_SAFE_INTEGER,
          maximum: Number.MAX_SAFE_INTEGER,
          description: '64-bit integer; accepted within ±(2^53 − 1), the integers every JSON client reads exactly',
        },
        vendor_id: { type: ['string', 'null'] },
        pickup_datetime: {
          type: ['string', 'null'],
          pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,6})?$',
          description: 'Local timestamp as stored (ISO 8601, no time zone offset)',
        },
        dropoff_datetime: {
          type: ['string', 'null'],
          pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,6})?$',
          description: 'Local timestamp as stored (ISO 8601, no time zone offset)',
        },
        passenger_count: { type: ['integer', 'null'], minimum: -32768, maximum: 32767 },
        pickup_longitude: { type: ['number', 'null'] },
        pickup_latitude: { type: ['number', 'null'] },
        dropoff_longitude: { type: ['number', 'null'] },
        dropoff_latitude: { type: ['number', 'null'] },
        store_and_fwd_flag: { type: ['string', 'null'] },
        trip_duration: { type: ['integer', 'null'], minimum: -2147483648, maximum: 2147483647 },
      },
    },
  },
  operations: [
    ...dialectOperations(
      {
        path: '/rides',
        tag: 'rides',
        table: 'public.nyc_train_synced',
        itemSchema: 'Ride',
        columns: [
          'id',
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
        primaryKey: ['id'],
        operationIds: { read: 'listRides' },
        cacheTtlSeconds: 10,
        narrowing: RIDE_DIALECT,
      },
      ['listRides?', 'countRides?', 'getRide?'],
    ),
    {
      path: '/rides/count',
      method: 'get',
      operation: {
        operationId: 'countRides',
        tags: ['rides'],
        summary: 'Number of public.nyc_train_synced rows matching the filters',
        description: 'A full `count(*)` of the rows the filters (those of the list) match. Cached for up to 30 s.',
        'x-cache-ttl-seconds': 30,
        'x-read-from': 'replica',
        parameters: rideFilters,
        responses: {
          '200': { description: 'The number of rows', content: { 'application/json': { schema: schemaRef('RowCount') } } },
          ...tableDatabaseErrors,
        },
      },
    },
    {
      path: '/rides/{id}',
      method: 'get',
      operation: {
        operationId: 'getRide',
        tags: ['rides'],
        summary: 'One public.nyc_train_synced row by id',
        description: 'The row, or 404 when no row has this id. Cached for up to 5 s.',
        'x-cache-ttl-seconds': 5,
        parameters: [
          {
            name: 'id',
            in: 'path',
            required: true,
            description: 'id of the row',
            schema: { type: 'integer', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER },
            example: 1,
          },
        ],
        responses: {
          '200': { description: 'The row', content: { 'application/json': { schema: schemaRef('Ride') } } },
          '404': errorRef('NotFound'),
          ...tableDatabaseErrors,
        },
      },
    },
  ],
};
