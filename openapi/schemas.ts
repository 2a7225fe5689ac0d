import type { SchemaObject } from 'openapi3-ts/oas31';
import { TRIP_COLUMN_NAMES, type TripColumnName } from '../lib/db/tripsTable.ts';

/** Component schemas of the public contract. JSON Schema 2020-12, as OpenAPI 3.1 uses it. */

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** `timestamp without time zone`, exactly as stored: ISO 8601 with no offset. */
const localTimestamp: SchemaObject = {
  type: ['string', 'null'],
  pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,6})?$',
  description: 'Local timestamp as stored (no time zone offset)',
  examples: ['2016-03-14T17:24:55'],
};

const tripExample = {
  id: 123,
  vendor_id: '2',
  pickup_datetime: '2016-03-14T17:24:55',
  dropoff_datetime: '2016-03-14T17:32:30',
  passenger_count: 1,
  pickup_longitude: -73.982154846191406,
  pickup_latitude: 40.767936706542969,
  dropoff_longitude: -73.964630126953125,
  dropoff_latitude: 40.765602111816406,
  store_and_fwd_flag: 'N',
  trip_duration: 455,
} satisfies Record<TripColumnName, unknown>;

/** One property per column of the table, no more, no fewer (`satisfies` makes a missing or extra one a compile error). */
const tripProperties = {
  id: { type: 'integer', minimum: 1, description: 'Trip id (primary key)' },
  vendor_id: { type: ['string', 'null'], description: 'Taxi vendor code' },
  pickup_datetime: localTimestamp,
  dropoff_datetime: localTimestamp,
  passenger_count: { type: ['integer', 'null'] },
  pickup_longitude: { type: ['number', 'null'] },
  pickup_latitude: { type: ['number', 'null'] },
  dropoff_longitude: { type: ['number', 'null'] },
  dropoff_latitude: { type: ['number', 'null'] },
  store_and_fwd_flag: { type: ['string', 'null'], description: "'Y' when the trip was stored before forwarding" },
  trip_duration: { type: ['integer', 'null'], description: 'Duration in seconds' },
} satisfies Record<TripColumnName, SchemaObject>;

export const schemas: Record<string, SchemaObject> = {
  Trip: {
    type: 'object',
    description: 'One NYC taxi trip, with every column of the table',
    required: [...TRIP_COLUMN_NAMES],
    additionalProperties: false,
    properties: tripProperties,
    examples: [tripExample],
  },
  TripCount: {
    type: 'object',
    required: ['total_trips'],
    additionalProperties: false,
    properties: { total_trips: { type: 'integer', minimum: 0 } },
    examples: [{ total_trips: 200000 }],
  },
  TripSample: {
    type: 'object',
    required: ['sample_trip_ids'],
    additionalProperties: false,
    properties: {
      sample_trip_ids: {
        type: 'array',
        items: { type: 'integer', minimum: 1 },
        maxItems: 5,
        uniqueItems: true,
        description: 'Up to 5 distinct ids of existing trips, chosen at random (fewer only if the table has fewer rows)',
      },
    },
    examples: [{ sample_trip_ids: [18342, 99120, 4511, 151077, 70230] }],
  },
  TripAnalytics: {
    type: 'object',
    required: ['total_trips', 'avg_trip_duration_minutes', 'peak_hour', 'peak_hour_trip_count', 'vendor_distribution'],
    additionalProperties: false,
    properties: {
      total_trips: { type: 'integer', minimum: 0 },
      avg_trip_duration_minutes: { type: ['number', 'null'], description: 'Mean trip duration in minutes, 2 decimals; null for an empty table' },
      peak_hour: { type: ['integer', 'null'], minimum: 0, maximum: 23, description: 'Hour of day (0-23) with the most pickups' },
      peak_hour_trip_count: { type: 'integer', minimum: 0 },
      vendor_distribution: {
        type: 'object',
        additionalProperties: { type: 'integer', minimum: 0 },
        description: 'Trips per vendor id, the 10 largest vendors',
      },
    },
    examples: [
      {
        total_trips: 200000,
        avg_trip_duration_minutes: 14.87,
        peak_hour: 18,
        peak_hour_trip_count: 14012,
        vendor_distribution: { '2': 106120, '1': 93880 },
      },
    ],
  },
  PagePagination: {
    type: 'object',
    required: ['page', 'page_size', 'total_pages', 'total_count', 'has_next', 'has_previous'],
    additionalProperties: false,
    properties: {
      page: { type: 'integer', minimum: 1 },
      page_size: { type: 'integer', minimum: 1, maximum: 1000 },
      total_pages: { type: ['integer', 'null'], minimum: 0, description: 'null when include_count=false' },
      total_count: { type: ['integer', 'null'], minimum: 0, description: 'null when include_count=false' },
      has_next: { type: 'boolean' },
      has_previous: { type: 'boolean' },
    },
  },
  TripPage: {
    type: 'object',
    required: ['trips', 'pagination'],
    additionalProperties: false,
    properties: {
      trips: { type: 'array', items: ref('Trip') },
      pagination: ref('PagePagination'),
    },
    examples: [
      {
        trips: [tripExample],
        pagination: { page: 1, page_size: 1, total_pages: 200000, total_count: 200000, has_next: true, has_previous: false },
      },
    ],
  },
  StreamPagination: {
    type: 'object',
    required: ['page_size', 'has_next', 'next_cursor', 'has_previous'],
    additionalProperties: false,
    properties: {
      page_size: { type: 'integer', minimum: 1, maximum: 1000 },
      has_next: { type: 'boolean' },
      next_cursor: { type: ['integer', 'null'], minimum: 1, description: 'Pass as `cursor` to get the next page; null on the last page' },
      has_previous: { type: 'boolean', description: 'true when the page started after a cursor (> 0)' },
    },
  },
  TripStreamPage: {
    type: 'object',
    required: ['trips', 'pagination'],
    additionalProperties: false,
    properties: {
      trips: { type: 'array', items: ref('Trip') },
      pagination: ref('StreamPagination'),
    },
    examples: [
      {
        trips: [tripExample],
        pagination: { page_size: 1, has_next: true, next_cursor: 123, has_previous: true },
      },
    ],
  },
  VendorUpdate: {
    type: 'object',
    required: ['vendor_id'],
    additionalProperties: false,
    properties: {
      vendor_id: {
        type: 'string',
        pattern: '^[A-Za-z0-9_-]{1,32}$',
        description: 'The new vendor code: 1 to 32 letters, digits, "_" or "-"',
      },
    },
    examples: [{ vendor_id: '1' }],
  },
  Health: {
    type: 'object',
    required: ['status', 'version', 'uptime_seconds'],
    additionalProperties: false,
    properties: {
      status: { type: 'string', enum: ['healthy'] },
      version: { type: 'string' },
      uptime_seconds: { type: 'number', minimum: 0 },
    },
    examples: [{ status: 'healthy', version: '0.1.0', uptime_seconds: 42.5 }],
  },
  Readiness: {
    type: 'object',
    description: 'Whether this instance can serve traffic, component by component',
    required: ['status', 'failing', 'checks'],
    additionalProperties: false,
    properties: {
      status: { type: 'string', enum: ['ready', 'not_ready'] },
      failing: {
        type: 'array',
        items: { type: 'string', enum: ['server', 'database', 'token'] },
        uniqueItems: true,
        description: 'The components that are down; empty when ready',
      },
      checks: {
        type: 'object',
        required: ['server', 'database'],
        additionalProperties: false,
        properties: {
          server: ref('ServerCheck'),
          database: ref('DatabaseCheck'),
          token: ref('TokenCheck'),
          replica: ref('ReplicaCheck'),
        },
      },
    },
    examples: [
      { status: 'ready', failing: [], checks: { server: { status: 'up' }, database: { status: 'up', latency_ms: 0.8 } } },
      {
        status: 'not_ready',
        failing: ['database'],
        checks: {
          server: { status: 'up' },
          database: { status: 'down', latency_ms: 1.4, error: 'The database is unavailable; retry shortly (ECONNREFUSED)' },
        },
      },
    ],
  },
  ServerCheck: {
    type: 'object',
    description: 'Down once graceful shutdown has begun (in-flight requests are still finishing)',
    required: ['status'],
    additionalProperties: false,
    properties: {
      status: { type: 'string', enum: ['up', 'down'] },
      detail: { type: 'string' },
    },
  },
  DatabaseCheck: {
    type: 'object',
    description: '`SELECT 1` through the connection pool, bounded by READINESS_TIMEOUT (waiting for a connection included)',
    required: ['status', 'latency_ms'],
    additionalProperties: false,
    properties: {
      status: { type: 'string', enum: ['up', 'down'] },
      latency_ms: { type: 'number', minimum: 0 },
      error: { type: 'string', description: 'Why it is down (SQLSTATE or network error code in parentheses); details are in the service log' },
    },
  },
  TokenCheck: {
    type: 'object',
    description:
      'The OAuth token new database connections log in with (Lakebase modes only). Down when no valid token is held; ' +
      'a failed refresh while the token is still valid shows in last_error but is not failing.',
    required: ['status', 'valid', 'expires_at', 'minutes_to_expiry', 'last_refresh_at', 'last_error', 'refreshes', 'refresh_failures'],
    additionalProperties: false,
    properties: {
      status: { type: 'string', enum: ['up', 'down'] },
      valid: { type: 'boolean' },
      expires_at: { type: ['string', 'null'], description: 'ISO 8601, UTC' },
      minutes_to_expiry: { type: ['number', 'null'], description: 'Negative once expired' },
      last_refresh_at: { type: ['string', 'null'], description: 'When the current token was obtained (ISO 8601, UTC)' },
      last_error: { type: ['string', 'null'], description: 'Why the last refresh failed, if it did' },
      refreshes: { type: 'integer', minimum: 0 },
      refresh_failures: { type: 'integer', minimum: 0 },
    },
  },
  ReplicaCheck: {
    type: 'object',
    description:
      'The read replica (only when one is configured). Never failing: while it is down or lagging past DB_READ_MAX_LAG_SECONDS ' +
      'the primary answers its reads. `status` says whether it serves reads now.',
    required: ['status', 'state', 'lag_seconds', 'max_lag_seconds', 'last_check_at', 'last_error'],
    additionalProperties: false,
    properties: {
      status: { type: 'string', enum: ['up', 'down'], description: 'up while it serves reads' },
      state: { type: 'string', enum: ['starting', 'up', 'lagging', 'down'] },
      lag_seconds: { type: ['number', 'null'], minimum: 0, description: 'Seconds of writes not replayed yet (0 when caught up); null before the first check' },
      max_lag_seconds: { type: 'number', minimum: 0, description: 'DB_READ_MAX_LAG_SECONDS' },
      last_check_at: { type: ['string', 'null'], description: 'ISO 8601, UTC' },
      last_error: { type: ['string', 'null'], description: 'Why it is not serving reads (no host, no credential)' },
    },
  },
  ServiceInfo: {
    type: 'object',
    required: ['name', 'version', 'docs', 'openapi'],
    additionalProperties: false,
    properties: {
      name: { type: 'string' },
      version: { type: 'string' },
      description: { type: 'string' },
      docs: { type: 'string', description: 'Path of the interactive API docs' },
      openapi: { type: 'string', description: 'Path of this OpenAPI document' },
    },
    examples: [{ name: 'Lakebase API', version: '0.1.0', description: 'NYC taxi trips over Lakebase', docs: '/docs', openapi: '/openapi.json' }],
  },
  Problem: {
    type: 'object',
    description: 'RFC 9457 problem details',
    required: ['type', 'title', 'status', 'detail'],
    properties: {
      type: { type: 'string' },
      title: { type: 'string' },
      status: { type: 'integer', minimum: 400, maximum: 599 },
      detail: { type: 'string' },
      field: { type: 'string', description: 'The offending input: a parameter name, `body`, or a path in the body' },
      request_id: { type: 'string', description: 'Present on 5xx: quote it when reporting the error' },
      operation: { type: 'string', description: 'On 403: the operation that was refused' },
      code: { type: 'string', description: "PostgREST-dialect operations: PostgREST's error code (`PGRST116`) or the SQLSTATE (`23505`)" },
      message: { type: 'string', description: "PostgREST-dialect operations: PostgREST's (or Postgres') message" },
      details: { type: ['string', 'null'] },
      hint: { type: ['string', 'null'] },
      limit: {
        type: 'string',
        description: 'On 429 and on a shed 503: the limit that refused the request (`caller-rate`, `caller-in-flight`, `scan-share`, …)',
      },
    },
  },
};
