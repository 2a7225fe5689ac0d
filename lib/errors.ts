/**
 * Typed errors that map to RFC 9457 problem responses. Handlers throw these; the router turns them
 * into `application/problem+json`. Anything else becomes a generic 500 (details only in the log).
 */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  field?: string;
  request_id?: string;
  [extension: string]: unknown;
}

export class ApiError extends Error {
  readonly status: number;
  readonly title: string;
  readonly field?: string;
  /** Seconds for a `Retry-After` header (503/504). */
  readonly retryAfterSeconds?: number;
  readonly headers?: Record<string, string>;

  constructor(
    status: number,
    title: string,
    detail: string,
    options: { field?: string; retryAfterSeconds?: number; cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(detail, { cause: options.cause });
    this.name = new.target.name;
    this.status = status;
    this.title = title;
    this.field = options.field;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.headers = options.headers;
  }

  /** A stable, documented problem type URI (relative: resolves against the API's own origin). */
  get type(): string {
    return `/problems/${this.title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  }

  toProblem(requestId?: string): ProblemBody {
    const body: ProblemBody = { type: this.type, title: this.title, status: this.status, detail: this.message };
    if (this.field !== undefined) body.field = this.field;
    // 5xx bodies carry the request id so a user can quote it to whoever reads the logs.
    if (requestId !== undefined && this.status >= 500) body.request_id = requestId;
    return body;
  }
}

export class BadRequest extends ApiError {
  constructor(detail: string, field?: string) {
    super(400, 'Bad Request', detail, { field });
  }
}

/** RFC 6750 §3.1 error codes; none at all when the request carried no credentials. */
export type BearerError = 'invalid_request' | 'invalid_token';

/** RFC 6750 §3: error_description is quoted text without `"` or `\`, printable ASCII only. */
function quotable(text: string): string {
  const plain = text.replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, "'");
  return plain.length > 200 ? `${plain.slice(0, 197)}...` : plain;
}

/**
 * The request does not say who is calling (no credentials, or headers missing), or the token it
 * carries is malformed, expired or forged. `field` names the header. The challenge follows RFC 6750:
 * `error` / `error_description` only when a credential was sent.
 */
export class Unauthorized extends ApiError {
  constructor(detail: string, field: string, options: { cause?: unknown; error?: BearerError } = {}) {
    const challenge = options.error
      ? `Bearer realm="lakebase-api", error="${options.error}", error_description="${quotable(detail)}"`
      : 'Bearer realm="lakebase-api"';
    super(401, 'Unauthorized', detail, { field, cause: options.cause, headers: { 'www-authenticate': challenge } });
  }
}

/**
 * Postgres (or the workspace) refused the caller: a missing grant, a row-level policy that denies
 * the write, no role for the user. `operation` names what was refused.
 */
export class Forbidden extends ApiError {
  /** Extension members of the problem body (a PostgREST-dialect refusal's `code`, `message`, `details`, `hint`). */
  readonly extensions?: Readonly<Record<string, unknown>>;

  constructor(
    detail: string,
    readonly operation?: string,
    options: { cause?: unknown; extensions?: Readonly<Record<string, unknown>> } = {},
  ) {
    super(403, 'Forbidden', detail, { cause: options.cause });
    this.extensions = options.extensions;
  }

  /** The same refusal, now knowing which operation it stopped. */
  forOperation(operation: string, who?: string): Forbidden {
    const subject = who ? `${who} may not run ${operation}` : `Not allowed to run ${operation}`;
    return new Forbidden(`${subject}: ${this.message}`, operation, { cause: this.cause, extensions: this.extensions });
  }

  override toProblem(requestId?: string) {
    const body = { ...this.extensions, ...super.toProblem(requestId) };
    if (this.operation !== undefined) body.operation = this.operation;
    return body;
  }
}

export class NotFound extends ApiError {
  constructor(detail: string) {
    super(404, 'Not Found', detail);
  }
}

export class MethodNotAllowed extends ApiError {
  constructor(method: string, allowed: readonly string[]) {
    super(405, 'Method Not Allowed', `${method} is not allowed here; use ${allowed.join(', ')}`, {
      headers: { allow: allowed.join(', ') },
    });
  }
}

export class PayloadTooLarge extends ApiError {
  constructor(limitBytes: number) {
    super(413, 'Payload Too Large', `The request body exceeds ${limitBytes} bytes`, { field: 'body' });
  }
}

export class UriTooLong extends ApiError {
  constructor(limit: number) {
    super(414, 'URI Too Long', `The path and query string exceed ${limit} characters`);
  }
}

/** Raised by the HTTP server itself, before a request reaches the router. */
export class HeaderFieldsTooLarge extends ApiError {
  constructor(limitBytes: number) {
    super(431, 'Request Header Fields Too Large', `The request line and headers exceed ${limitBytes} bytes`);
  }
}

/** The client went away before the answer was ready; logged, never sent (nginx's 499). */
export class ClientClosedRequest extends ApiError {
  constructor() {
    super(499, 'Client Closed Request', 'The client closed the connection before the response was ready');
  }
}

export class UnsupportedMediaType extends ApiError {
  constructor(detail: string) {
    super(415, 'Unsupported Media Type', detail, { field: 'content-type' });
  }
}

/** The database (or the workspace that issues its credentials) cannot be reached right now. */
export class Unavailable extends ApiError {
  constructor(detail: string, options: { retryAfterSeconds?: number; cause?: unknown } = {}) {
    super(503, 'Service Unavailable', detail, { retryAfterSeconds: options.retryAfterSeconds ?? 5, cause: options.cause });
  }
}

/** The database cancelled a statement that ran past the command timeout. */
export class Timeout extends ApiError {
  constructor(detail: string, options: { retryAfterSeconds?: number; cause?: unknown } = {}) {
    super(504, 'Gateway Timeout', detail, { retryAfterSeconds: options.retryAfterSeconds ?? 5, cause: options.cause });
  }
}

export class InternalError extends ApiError {
  constructor(cause?: unknown) {
    super(500, 'Internal Server Error', 'An unexpected error occurred; the request id identifies it in the logs', { cause });
  }
}

export function toApiError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new InternalError(err);
}

/** The database refused a row because it clashes with another (a unique key, a foreign key). */
export class Conflict extends ApiError {
  constructor(detail: string, field?: string) {
    super(409, 'Conflict', detail, { field });
  }
}

/**
 * A per-caller limit refused the request (429). `limit` names it in the problem body; the headers
 * carry `RateLimit-Policy` / `RateLimit` (draft-ietf-httpapi-ratelimit-headers) from lib/admission/.
 */
export class TooManyRequests extends ApiError {
  constructor(
    detail: string,
    readonly limit: string,
    options: { retryAfterSeconds: number; headers?: Record<string, string> },
  ) {
    super(429, 'Too Many Requests', detail, options);
  }

  override toProblem(requestId?: string) {
    const body = super.toProblem(requestId);
    body.limit = this.limit;
    return body;
  }
}

/**
 * The database is busy and the request was shed rather than queued (503): no connection, or no share
 * of them for scanning reads, within the wait budget. `limit` names the budget that ran out.
 */
export class Overloaded extends ApiError {
  constructor(
    detail: string,
    readonly limit: string,
    options: { retryAfterSeconds?: number } = {},
  ) {
    // Not an Unavailable: nothing is down, so a replica shedding a read must not be marked as failed.
    super(503, 'Service Unavailable', detail, { retryAfterSeconds: options.retryAfterSeconds ?? 1 });
  }

  override toProblem(requestId?: string) {
    const body = super.toProblem(requestId);
    body.limit = this.limit;
    return body;
  }
}
