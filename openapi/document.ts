import { admissionHeaders, tooManyRequests, withAdmissionResponses } from './admissionResponses.ts';
import { OpenApiBuilder } from 'openapi3-ts/oas31';
import type {
  HeadersObject,
  OpenAPIObject,
  OperationObject,
  ParameterObject,
  ReferenceObject,
  ResponseObject,
  ResponsesObject,
  SchemaObject,
  SecurityRequirementObject,
  SecuritySchemeObject,
} from 'openapi3-ts/oas31';
import type { AuthMode } from '../lib/ground/authSettings.ts';
import { CACHE_INVALIDATES_EXTENSION, CACHE_TTL_EXTENSION, READ_FROM_EXTENSION, type ReadFrom } from '../lib/http/routing/operationExtensions.ts';
import { schemas } from './schemas.ts';
import { tableResponses, tableSchemas } from './tableApi.ts';
import { tableApis } from './tables.ts';

export const MAX_SAFE_ID = Number.MAX_SAFE_INTEGER;

const ref = (name: string): ReferenceObject => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: SchemaObject | ReferenceObject, example?: unknown) => ({
  'application/json': { schema, ...(example === undefined ? {} : { example }) },
});

function problem(description: string, example: object): ResponseObject {
  return { description, content: { 'application/problem+json': { schema: ref('Problem'), example } } };
}
const retryAfter: HeadersObject = { 'Retry-After': { description: 'Seconds to wait before retrying', required: true, schema: { type: 'integer' } } };

const errorResponses = {
  Unauthorized: {
    ...problem(
      "The request does not say who is calling as AUTH_MODE requires (a bearer token, or the Databricks Apps proxy's " +
        'X-Forwarded-Email / X-Forwarded-Access-Token), or the token is malformed, expired or not accepted; `field` names the header',
      {
        type: '/problems/unauthorized',
        title: 'Unauthorized',
        status: 401,
        detail: 'The bearer token was refused: the token has expired',
        field: 'authorization',
      },
    ),
    headers: {
      'WWW-Authenticate': {
        description: 'RFC 6750 challenge: `Bearer realm="lakebase-api"`, with `error` and `error_description` when a credential was sent',
        required: true,
        schema: { type: 'string' },
      },
    },
  },
  Forbidden: problem(
    'The caller may not run the operation: not in AUTH_WRITERS, or Postgres refused it to the database user (a missing grant or a row-level security policy); `operation` names it',
    {
      type: '/problems/forbidden',
      title: 'Forbidden',
      status: 403,
      detail: 'reader@example.com may not run updateTripVendor: permission denied for table nyc_train_synced',
      operation: 'updateTripVendor',
    },
  ),
  BadRequest: problem('The input is invalid; `field` names the offending parameter or body member', {
    type: '/problems/bad-request',
    title: 'Bad Request',
    status: 400,
    detail: 'trip_id must be an integer',
    field: 'trip_id',
  }),
  NotFound: problem('No such resource', {
    type: '/problems/not-found',
    title: 'Not Found',
    status: 404,
    detail: 'Trip 123 not found',
  }),
  UriTooLong: problem('The path and query string are longer than MAX_URL_LENGTH', {
    type: '/problems/uri-too-long',
    title: 'URI Too Long',
    status: 414,
    detail: 'The path and query string exceed 4096 characters',
  }),
  PayloadTooLarge: problem('The request body is larger than MAX_BODY_BYTES', {
    type: '/problems/payload-too-large',
    title: 'Payload Too Large',
    status: 413,
    detail: 'The request body exceeds 16384 bytes',
    field: 'body',
  }),
  UnsupportedMediaType: problem('The request body is not application/json', {
    type: '/problems/unsupported-media-type',
    title: 'Unsupported Media Type',
    status: 415,
    detail: 'the request body must be application/json, got "text/plain"',
    field: 'content-type',
  }),
  InternalError: problem('An unexpected error; details are in the service log under the request id', {
    type: '/problems/internal-server-error',
    title: 'Internal Server Error',
    status: 500,
    detail: 'An unexpected error occurred; the request id identifies it in the logs',
    request_id: '3f1c…',
  }),
  Unavailable: {
    ...problem(
      'The database is unreachable, or busy: the request was shed because no connection (DB_POOL_WAIT_MS), or no share of them for a scanning read (DB_SCAN_WAIT_MS), came free in time; `limit` then names the budget (`pool-wait`, `scan-share`)',
      {
        type: '/problems/service-unavailable',
        title: 'Service Unavailable',
        status: 503,
        detail: 'The database is unavailable; retry shortly',
        request_id: '3f1c…',
      },
    ),
    headers: retryAfter,
  },
  Timeout: {
    ...problem('The database cancelled the query at the command timeout', {
      type: '/problems/gateway-timeout',
      title: 'Gateway Timeout',
      status: 504,
      detail: 'The database cancelled the query because it exceeded the command timeout',
      request_id: '3f1c…',
    }),
    headers: retryAfter,
  },
} satisfies Record<string, ResponseObject>;

const errorRef = (name: keyof typeof errorResponses) => ({ $ref: `#/components/responses/${name}` });

/** Answers any operation can give to a malformed request: an unknown parameter, a body past the cap, an overlong URL. */
const requestErrors: ResponsesObject = {
  '400': errorRef('BadRequest'),
  '413': errorRef('PayloadTooLarge'),
  '414': errorRef('UriTooLong'),
};

/** Responses every database-backed operation can give besides its own. */
const databaseErrors: ResponsesObject = {
  '400': errorRef('BadRequest'),
  '403': errorRef('Forbidden'),
  '500': errorRef('InternalError'),
  '503': errorRef('Unavailable'),
  '504': errorRef('Timeout'),
};

const tripIdParam: ParameterObject = {
  name: 'trip_id',
  in: 'path',
  required: true,
  description: 'The trip id, a positive integer',
  schema: { type: 'integer', minimum: 1, maximum: MAX_SAFE_ID },
  example: 123,
};

const pageSizeParam: ParameterObject = {
  name: 'page_size',
  in: 'query',
  description: 'Trips per page, 1 to 1000',
  schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
};

function ok(description: string, schemaName: string): ResponsesObject {
  return { '200': { description, content: json(ref(schemaName)) } };
}

type Operation = OperationObject & {
  operationId: string;
  [CACHE_TTL_EXTENSION]?: number;
  [CACHE_INVALIDATES_EXTENSION]?: string[];
  [READ_FROM_EXTENSION]?: ReadFrom;
};

const operations: Array<{ path: string; method: 'get' | 'post' | 'patch' | 'delete'; operation: Operation }> = [
  {
    path: '/',
    method: 'get',
    operation: {
      operationId: 'getServiceInfo',
      tags: ['service'],
      summary: 'Service name, version and links to the docs',
      description: 'Where to start: the version running and the paths of the interactive docs and of this document. Never touches the database.',
      responses: ok('Service information', 'ServiceInfo'),
    },
  },
  {
    path: '/health',
    method: 'get',
    operation: {
      operationId: 'getHealth',
      tags: ['service'],
      summary: 'Liveness: the process is up (does not touch the database)',
      description:
        'Answers 200 as long as the process serves HTTP, whatever the state of the database, so an orchestrator restarts only a ' +
        'process that is really stuck. For whether this instance can serve traffic, use /health/ready.',
      responses: ok('The process is up', 'Health'),
    },
  },
  {
    path: '/health/ready',
    method: 'get',
    operation: {
      operationId: 'getReadiness',
      tags: ['service'],
      summary: 'Readiness: the database answers through the pool (and, with Lakebase OAuth, a valid token is held)',
      description:
        'Runs `SELECT 1` through the connection pool within READINESS_TIMEOUT and checks the OAuth token in Lakebase modes. ' +
        '200 when this instance can serve traffic; 503 naming the failing components in `failing` (also from the moment ' +
        'graceful shutdown begins). Never cached. For load balancers and orchestrators; use /health for liveness.',
      responses: {
        ...ok('Ready to serve traffic', 'Readiness'),
        '503': {
          description: 'Not ready: `failing` names the components that are down',
          headers: retryAfter,
          content: json(ref('Readiness')),
        },
      },
    },
  },
  {
    path: '/trips/count',
    method: 'get',
    operation: {
      operationId: 'getTripCount',
      tags: ['trips'],
      [READ_FROM_EXTENSION]: 'replica',
      summary: 'Total number of trips',
      description: 'A full `count(*)` of the table. The answer is cached for 30 s, so it may lag the latest writes by that much.',
      [CACHE_TTL_EXTENSION]: 30,
      responses: { ...ok('The number of trips', 'TripCount'), ...databaseErrors },
    },
  },
  {
    path: '/trips/sample',
    method: 'get',
    operation: {
      operationId: 'getTripSample',
      tags: ['trips'],
      [READ_FROM_EXTENSION]: 'replica',
      summary: 'Five random ids of existing trips',
      description: 'Ids are drawn at random from the whole table on every call (never cached), fast on millions of rows.',
      responses: { ...ok('Random trip ids', 'TripSample'), ...databaseErrors },
    },
  },
  {
    path: '/trips/analytics',
    method: 'get',
    operation: {
      operationId: 'getTripAnalytics',
      tags: ['trips'],
      [READ_FROM_EXTENSION]: 'replica',
      summary: 'Totals, average duration, peak pickup hour and trips per vendor',
      description:
        'One scan of the table computes every figure (GROUPING SETS). The peak hour is the pickup hour with the most trips, ' +
        'the earlier hour on a tie; vendors are the ten with the most trips. Cached for 60 s.',
      [CACHE_TTL_EXTENSION]: 60,
      responses: { ...ok('Aggregates over all trips', 'TripAnalytics'), ...databaseErrors },
    },
  },
  {
    path: '/trips/pages',
    method: 'get',
    operation: {
      operationId: 'listTripPages',
      tags: ['trips'],
      [READ_FROM_EXTENSION]: 'replica',
      summary: 'Trips by page number (offset pagination, ordered by id)',
      description:
        'Classic page/page_size pagination. Deep pages cost more (the database skips the rows before the page); ' +
        'to walk the whole table use /trips/stream. With include_count=false the totals are null and no count is run.',
      [CACHE_TTL_EXTENSION]: 10,
      parameters: [
        { name: 'page', in: 'query', description: 'Page number, from 1', schema: { type: 'integer', minimum: 1, maximum: 10_000_000, default: 1 } },
        pageSizeParam,
        {
          name: 'include_count',
          in: 'query',
          description: 'Also count all trips for total_count/total_pages (a full count); false returns null totals',
          schema: { type: 'boolean', default: true },
        },
      ],
      responses: { ...ok('One page of trips', 'TripPage'), ...databaseErrors },
    },
  },
  {
    path: '/trips/stream',
    method: 'get',
    operation: {
      operationId: 'streamTrips',
      tags: ['trips'],
      [READ_FROM_EXTENSION]: 'replica',
      summary: 'Trips after a cursor (keyset pagination by id)',
      description:
        'Returns the trips with id greater than `cursor`, in id order. Follow `next_cursor` from 0 to visit every trip exactly once; ' +
        'the cost of a page does not grow with the cursor.',
      [CACHE_TTL_EXTENSION]: 10,
      parameters: [
        {
          name: 'cursor',
          in: 'query',
          description: 'Start after this id (0 = from the beginning)',
          schema: { type: 'integer', minimum: 0, maximum: MAX_SAFE_ID, default: 0 },
        },
        pageSizeParam,
      ],
      responses: { ...ok('Trips after the cursor', 'TripStreamPage'), ...databaseErrors },
    },
  },
  {
    path: '/trips/{trip_id}',
    method: 'get',
    operation: {
      operationId: 'getTrip',
      tags: ['trips'],
      [READ_FROM_EXTENSION]: 'primary',
      summary: 'One trip by id',
      description:
        'Every column of the trip, or 404 when no trip has this id. Read from the primary, so a write is visible as soon as it ' +
        'returns; cached for 5 s, and evicted by a write to the trip.',
      [CACHE_TTL_EXTENSION]: 5,
      parameters: [tripIdParam],
      responses: { ...ok('The trip', 'Trip'), '404': errorRef('NotFound'), ...databaseErrors },
    },
  },
  {
    path: '/trips/{trip_id}/vendor',
    method: 'post',
    operation: {
      operationId: 'updateTripVendor',
      tags: ['trips'],
      [READ_FROM_EXTENSION]: 'primary',
      summary: "Change a trip's vendor",
      description:
        'Updates the vendor_id of one trip and returns the updated trip. The change is visible to the next read: ' +
        'cached results that could contain the trip (the trip, pages, stream, analytics) are evicted.',
      // The count is unchanged by a vendor update, so its cached value stays.
      [CACHE_INVALIDATES_EXTENSION]: ['getTrip?trip_id={trip_id}&', 'getTripAnalytics?', 'listTripPages?', 'streamTrips?'],
      parameters: [tripIdParam],
      requestBody: { required: true, content: json(ref('VendorUpdate'), { vendor_id: '1' }) },
      responses: {
        ...ok('The updated trip', 'Trip'),
        '404': errorRef('NotFound'),
        '413': errorRef('PayloadTooLarge'),
        '415': errorRef('UnsupportedMediaType'),
        ...databaseErrors,
      },
    },
  },
];

export interface DocumentOptions {
  /**
   * `user` (LAKEBASE_ACCESS=user): every operation but the `service` probes runs as the signed-in
   * Databricks user, on connections logged in as them.
   */
  access?: 'service' | 'user';
  /**
   * AUTH_MODE (default: `apps-proxy` with LAKEBASE_ACCESS=user, else `none`): every operation but the
   * `service` probes declares the mode's security scheme and answers 401 without it. The router
   * reads `security` to know which operations need a caller.
   */
  auth?: AuthMode;
}

/** Each mode's security schemes (so /docs offers "Authorize"), and what an operation requires. */
function securityOf(auth: AuthMode, access: 'service' | 'user'): { schemes: Record<string, SecuritySchemeObject>; requirement: SecurityRequirementObject[] } {
  const forwardedEmail: SecuritySchemeObject = {
    type: 'apiKey',
    in: 'header',
    name: 'X-Forwarded-Email',
    description: `The signed-in user's e-mail, forwarded by the Databricks Apps proxy${access === 'user' ? "; must be the token's identity" : ''}`,
  };
  switch (auth) {
    case 'none':
      return { schemes: {}, requirement: [] };
    case 'jwt':
      return {
        schemes: {
          bearerJwt: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: 'A JWT from the configured OIDC issuer (AUTH_JWT_ISSUER) for this API (AUTH_JWT_AUDIENCE)',
          },
        },
        requirement: [{ bearerJwt: [] }],
      };
    case 'databricks-token':
      return {
        schemes: {
          databricksToken: { type: 'http', scheme: 'bearer', description: 'A Databricks OAuth access token or personal access token of the calling user' },
        },
        requirement: [{ databricksToken: [] }],
      };
    case 'apps-proxy':
      if (access === 'service') return { schemes: { forwardedEmail }, requirement: [{ forwardedEmail: [] }] };
      return {
        schemes: {
          forwardedAccessToken: {
            type: 'apiKey',
            in: 'header',
            name: 'X-Forwarded-Access-Token',
            description: "The signed-in user's OAuth token, forwarded by the Databricks Apps proxy (user authorization)",
          },
          forwardedEmail,
        },
        requirement: [{ forwardedAccessToken: [], forwardedEmail: [] }],
      };
  }
}

const isWrite = (method: string) => method !== 'get' && method !== 'head';

export function buildOpenApiDocument(version: string, options: DocumentOptions = {}): OpenAPIObject {
  const builder = OpenApiBuilder.create()
    .addOpenApiVersion('3.1.0')
    .addInfo({
      title: 'Lakebase API',
      version,
      description:
        'A fast, documented REST API over NYC taxi trips in a Databricks Lakebase (PostgreSQL) database. ' +
        'Errors are RFC 9457 problem details (`application/problem+json`).',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
      contact: { name: 'Lakebase API maintainers' },
    })
    // Relative: the host that serves this document, whatever its name (a Databricks App, localhost, a Lambda URL).
    .addServer({ url: '/', description: 'This service' })
    .addTag({ name: 'trips', description: 'NYC taxi trips' })
    .addTag({ name: 'service', description: 'Service information and probes' });
  // Tables served by `npm run add-table` (openapi/tables.ts): their tags, schemas and operations.
  const tableOperations = tableApis.flatMap((api) => api.operations);
  if (tableApis.length > 0) {
    for (const [name, schema] of Object.entries(tableSchemas)) builder.addSchema(name, schema);
  }
  for (const api of tableApis) {
    builder.addTag(api.tag);
    for (const [name, schema] of Object.entries(api.schemas)) builder.addSchema(name, schema);
  }

  for (const [name, schema] of Object.entries(schemas)) builder.addSchema(name, schema);
  builder.addResponse('TooManyRequests', tooManyRequests);
  for (const [name, header] of Object.entries(admissionHeaders)) builder.addHeader(name, header);

  const access = options.access ?? 'service';
  const { schemes, requirement } = securityOf(options.auth ?? (access === 'user' ? 'apps-proxy' : 'none'), access);
  for (const [name, scheme] of Object.entries(schemes)) builder.addSecurityScheme(name, scheme);
  const paths = new Map<string, Record<string, Operation>>();
  for (const { path, method, operation } of [...operations, ...tableOperations]) {
    // Deny by default: every operation needs a caller except the service's own probes, so an
    // operation added for a new table can never be open by omission. Open ones say so (`security: []`).
    const guarded = requirement.length > 0 && operation.tags?.includes('service') !== true;
    const refusals: ResponsesObject = guarded ? { '401': errorRef('Unauthorized'), ...(isWrite(method) ? { '403': errorRef('Forbidden') } : {}) } : {};
    const described = { ...operation, security: guarded ? requirement : [], responses: { ...requestErrors, ...refusals, ...operation.responses } };
    // The service's own probes are never limited or shed; everything else may answer 429 and 503.
    const limited = operation.tags?.includes('service') !== true;
    const withLimits = withAdmissionResponses(withCacheResponses(described), limited, Boolean(operation[CACHE_TTL_EXTENSION]));
    paths.set(path, { ...paths.get(path), [method]: withLimits });
  }
  for (const [path, item] of paths) builder.addPath(path, item);
  // Only the shared responses some operation gives: Unauthorized only when AUTH_MODE guards operations,
  // Conflict only with a table that can refuse a write. An unused component would only be noise.
  const referenced = new Set(JSON.stringify([...paths.values()]).match(/(?<=#\/components\/responses\/)[A-Za-z0-9_]+/g));
  for (const [name, response] of Object.entries({ ...tableResponses, ...errorResponses })) {
    if (referenced.has(name)) builder.addResponse(name, response);
  }
  builder.addHeader('ETag', {
    description: 'Strong validator of the response body; send it back in If-None-Match',
    required: true,
    schema: { type: 'string' },
  });
  builder.addHeader('X-Cache', {
    description: 'HIT when served from the results cache, MISS when queried (absent when the cache is off)',
    schema: { type: 'string', enum: ['HIT', 'MISS'] },
  });
  return builder.getSpec();
}

/**
 * Cacheable operations also answer 304 to a matching If-None-Match, and describe their ETag and
 * X-Cache headers: derived from `x-cache-ttl-seconds`, so the two never disagree.
 */
function withCacheResponses(operation: Operation): Operation {
  if (!operation[CACHE_TTL_EXTENSION]) return operation;
  const responses = { ...operation.responses };
  const ok = responses['200'] as ResponseObject;
  // A PostgREST-dialect read that streams (CSV, a large JSON page) bypasses the cache: no ETag then.
  const streams = operation['x-postgrest'] === true;
  responses['200'] = {
    ...ok,
    headers: {
      ...ok.headers,
      ETag: streams
        ? {
            description: 'Strong validator of the body; absent on a streamed answer (text/csv, or a JSON page that may pass 1000 rows)',
            schema: { type: 'string' },
          }
        : { $ref: '#/components/headers/ETag' },
      'X-Cache': { $ref: '#/components/headers/X-Cache' },
    },
  };
  responses['304'] = { description: 'Not Modified: the If-None-Match ETag is current', headers: { ETag: { $ref: '#/components/headers/ETag' } } };
  return { ...operation, responses };
}
