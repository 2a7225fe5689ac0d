import type { HeaderObject, OperationObject, ReferenceObject, ResponseObject, ResponsesObject } from 'openapi3-ts/oas31';

/**
 * What fair shares of the database (lib/admission/, docs/operations.md) add to the contract: every
 * operation that uses the database may answer 429 (a per-caller limit) and 503 (shed: no connection,
 * or no scanning share, within the wait budget), and cached reads say what the cache did.
 */

const problemSchema: ReferenceObject = { $ref: '#/components/schemas/Problem' };
const integer = { type: 'integer' as const, minimum: 0 };

export const admissionHeaders: Record<string, HeaderObject> = {
  'RateLimit-Policy': {
    description:
      'The per-caller policies (draft-ietf-httpapi-ratelimit-headers): `"rate";q=<burst>;w=<seconds>` for the token bucket of scanning reads, ' +
      '`"in-flight";q=<n>;qu="concurrent-requests"` for requests using the database at once',
    required: true,
    schema: { type: 'string' },
    example: '"rate";q=4000;w=2, "in-flight";q=128;qu="concurrent-requests"',
  },
  RateLimit: {
    description: 'The policy that refused the request, with nothing left (`r=0`) and the seconds until it admits again (`t`)',
    required: true,
    schema: { type: 'string' },
    example: '"rate";r=0;t=1',
  },
  Age: {
    description: 'RFC 9111 §5.1: seconds since the answer was loaded from the database (0 when this request loaded it or shared a load under way)',
    schema: integer,
  },
  'Cache-Status': {
    description:
      'RFC 9211: `lakebase-api; hit; ttl=N` (stored, N seconds of freshness left), `…; hit; detail=refresh-interval` (a forced refresh ' +
      'answered by an entry loaded within CACHE_REFRESH_INTERVAL), `fwd=uri-miss` / `fwd=request` (loaded; `request`: the request forced it), ' +
      '`collapsed` (shared a load another request had started), `stored` (kept for later requests)',
    schema: { type: 'string' },
    example: 'lakebase-api; fwd=request; collapsed',
  },
};

const retryAfter: HeaderObject = { description: 'Seconds to wait before retrying', required: true, schema: { type: 'integer' } };

export const tooManyRequests: ResponseObject = {
  description:
    "Past one of the caller's limits (CALLER_MAX_IN_FLIGHT requests using the database at once, or CALLER_RATE_PER_SECOND / CALLER_BURST " +
    'scanning reads); `limit` names it. Cache hits never count.',
  headers: {
    'Retry-After': retryAfter,
    'RateLimit-Policy': { $ref: '#/components/headers/RateLimit-Policy' },
    RateLimit: { $ref: '#/components/headers/RateLimit' },
  },
  content: {
    'application/problem+json': {
      schema: problemSchema,
      example: {
        type: '/problems/too-many-requests',
        title: 'Too Many Requests',
        status: 429,
        detail: 'This caller sent more than 2000 database requests a second (bursts of 4000); retry after 1 s',
        limit: 'caller-rate',
      },
    },
  },
};

/** Adds 429 (and makes sure of 503) to an operation that uses the database; cached reads get Age and Cache-Status. */
export function withAdmissionResponses<T extends OperationObject>(operation: T, limited: boolean, cached: boolean): T {
  if (!limited) return operation;
  const responses: ResponsesObject = { ...operation.responses, '429': { $ref: '#/components/responses/TooManyRequests' } };
  responses['503'] ??= { $ref: '#/components/responses/Unavailable' };
  const ok = responses['200'] as ResponseObject | undefined;
  if (cached && ok) {
    responses['200'] = {
      ...ok,
      headers: { ...ok.headers, Age: { $ref: '#/components/headers/Age' }, 'Cache-Status': { $ref: '#/components/headers/Cache-Status' } },
    };
  }
  return { ...operation, responses };
}
