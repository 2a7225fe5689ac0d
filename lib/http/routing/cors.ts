import { headerValue, type NeutralRequest } from '../../ground/neutralRequest.ts';

/**
 * Request headers a browser page may send cross-origin (beyond the CORS-safelisted ones): ours, and
 * those PostgREST clients send (postgrest-js sets Prefer for counts and writes, Range for pages, the
 * Profile headers for a schema; supabase-js adds apikey and X-Client-Info).
 */
const ALLOWED_REQUEST_HEADERS =
  'Authorization, Cache-Control, Content-Type, If-None-Match, X-Request-Id, Prefer, Range, Accept-Profile, Content-Profile, apikey, X-Client-Info';
/** Response headers a cross-origin page may read: postgrest-js reads Content-Range for counts. */
const EXPOSED_HEADERS =
  'ETag, Retry-After, X-Cache, X-Process-Time, X-Request-Id, Content-Range, Location, Link, Preference-Applied, Age, Cache-Status, RateLimit, RateLimit-Policy';
const PREFLIGHT_MAX_AGE_SECONDS = 600;
const PREFLIGHT_VARY = 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers';

export interface CorsPolicy {
  /** Headers for the answer to an ordinary request (none when CORS is off). */
  responseHeaders(request: NeutralRequest): Record<string, string>;
  /** Headers for an OPTIONS request to a resource that allows `methods`. */
  preflightHeaders(request: NeutralRequest, methods: readonly string[]): Record<string, string>;
}

/**
 * CORS for an explicit list of origins (CORS_ORIGINS), applied by the shared router so every
 * adapter behaves the same; off when the list is empty. The allowed origin is echoed back, never
 * `*`, and credentials (cookies) are never allowed. A refused preflight simply lacks the
 * Access-Control-Allow-* headers: the browser then blocks the call.
 */
export function createCorsPolicy(origins: readonly string[]): CorsPolicy {
  const allowed = new Set(origins);
  const allowedOrigin = (request: NeutralRequest) => {
    const origin = headerValue(request.headers, 'origin');
    return origin !== undefined && allowed.has(origin) ? origin : undefined;
  };
  return {
    responseHeaders(request): Record<string, string> {
      // The router adds them to the answer's own Vary (addCorsHeaders).
      if (allowed.size === 0) return {};
      const origin = allowedOrigin(request);
      // Vary even when refusing: a shared cache must not hand one origin's answer to another.
      if (!origin) return { vary: 'Origin' };
      return { vary: 'Origin', 'access-control-allow-origin': origin, 'access-control-expose-headers': EXPOSED_HEADERS };
    },
    preflightHeaders(request, methods): Record<string, string> {
      if (allowed.size === 0) return {};
      const origin = allowedOrigin(request);
      const method = headerValue(request.headers, 'access-control-request-method');
      if (!origin || !method || !methods.includes(method)) return { vary: PREFLIGHT_VARY };
      return {
        vary: PREFLIGHT_VARY,
        'access-control-allow-origin': origin,
        'access-control-allow-methods': methods.join(', '),
        'access-control-allow-headers': ALLOWED_REQUEST_HEADERS,
        'access-control-max-age': String(PREFLIGHT_MAX_AGE_SECONDS),
      };
    },
  };
}

/**
 * Adds an answer's CORS headers (`cors`, from responseHeaders) to its `headers`, merging `Vary`:
 * the answer's own entries (a dialect answer varies by Accept, Prefer and Range) stay, Origin joins.
 */
export function addCorsHeaders(headers: Record<string, string>, cors: Record<string, string>): void {
  const { vary, ...rest } = cors;
  Object.assign(headers, rest);
  if (!vary) return;
  const entries = (headers.vary ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  for (const entry of vary.split(',').map((e) => e.trim())) {
    if (!entries.some((known) => known.toLowerCase() === entry.toLowerCase())) entries.push(entry);
  }
  headers.vary = entries.join(', ');
}
