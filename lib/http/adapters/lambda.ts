import { performance } from 'node:perf_hooks';
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2, APIGatewayProxyResult } from 'aws-lambda';
import type { Logger } from 'pino';
import type { Context, ObservedContext } from '../serviceContext.ts';
import { mapDatabaseError } from '../../db/databaseErrors.ts';
import { BadRequest } from '../../errors.ts';
import { type NeutralRequest, type NeutralResponse, StreamedBody } from '../../ground/neutralRequest.ts';
import { createLogger } from '../../ops/logger.ts';
import { createRouter, problemResponse, requestIdOf, type Router, type ServiceDefinition } from '../router.ts';

/** API Gateway proxy events: HTTP API payload 2.0, and payload 1.0 (REST API, or HTTP API set to 1.0). */
export type LambdaEvent = APIGatewayProxyEvent | APIGatewayProxyEventV2;
/** One result shape satisfies both payload versions. */
export type LambdaResult = APIGatewayProxyResult;

export interface LambdaHandlerOptions {
  /**
   * A path prefix to remove before routing, for a custom domain's API mapping (`/trips-api`) or
   * a proxy resource below the root (`/api/{proxy+}`). The stage is removed without it.
   */
  basePath?: string;
  /** Where a failed cold start is reported; the context's own logger takes over once it exists. */
  logger?: Logger;
  /** The longest an invocation waits for its telemetry to reach the collector (default 2 s). */
  telemetryFlushMs?: number;
}

const TELEMETRY_FLUSH_MS = 2000;

export type LambdaHandler = ((event: LambdaEvent) => Promise<LambdaResult>) & {
  /** Closes the container's context (pool, channels), if one was built; for tests and shutdown hooks. */
  close(): Promise<void>;
};

const isV2 = (event: LambdaEvent): event is APIGatewayProxyEventV2 => (event as APIGatewayProxyEventV2).version === '2.0';

/** HTTP APIs mark their payload 1.0 events with a version; REST APIs send none. */
const fromHttpApi = (event: LambdaEvent): boolean => isV2(event) || (event as { version?: string }).version === '1.0';

/**
 * REST APIs deliver the path still percent-encoded, HTTP APIs decoded. The router matches an
 * encoded path, so escape what can never appear literally in one (a decoded `?`, `#`, space,
 * non-ASCII, a bare `%`); an encoded path passes unchanged, so neither source is double-encoded.
 */
function encodedPath(path: string): string {
  return path.replace(/%(?![0-9A-Fa-f]{2})|[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/gu, (char) => {
    try {
      return encodeURIComponent(char);
    } catch {
      return '%EF%BF%BD'; // a lone surrogate: U+FFFD, as a browser would send it
    }
  });
}

function stripPrefix(path: string, prefix: string): string {
  if (!prefix || prefix === '/') return path;
  const normalised = `/${prefix.replace(/^\/+|\/+$/g, '')}`;
  if (path === normalised) return '/';
  return path.startsWith(`${normalised}/`) ? path.slice(normalised.length) : path;
}

/**
 * The path the spec's routes see. An HTTP API puts a named stage in front of the path (`/prod/trips/42`);
 * a REST API's `path` never has the stage, but does have a custom domain's base path mapping.
 */
function pathOf(event: LambdaEvent, basePath: string | undefined): string {
  let path = isV2(event) ? event.rawPath : event.path;
  const { stage } = event.requestContext;
  if (fromHttpApi(event) && stage && stage !== '$default') path = stripPrefix(path, stage);
  if (basePath) path = stripPrefix(path, basePath);
  return encodedPath(path || '/');
}

function headersOf(single: Record<string, string | undefined> | null | undefined, multi?: Record<string, string[] | undefined> | null): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(single ?? {})) if (value !== undefined) headers[name.toLowerCase()] = value;
  // Payload 1.0 repeats every header in the multi-value map, with all its values: that one wins.
  for (const [name, values] of Object.entries(multi ?? {})) {
    const lower = name.toLowerCase();
    if (values?.length) headers[lower] = values.join(lower === 'cookie' ? '; ' : ', ');
  }
  return headers;
}

function bodyOf(body: string | null | undefined, base64: boolean, limit: number): Buffer | undefined {
  if (body === null || body === undefined || body === '') return undefined;
  const bytes = Buffer.from(body, base64 ? 'base64' : 'utf8');
  // The router answers 413 from the length; keep no more than it needs to see.
  return bytes.length > limit ? bytes.subarray(0, limit + 1) : bytes;
}

/** Payload 1.0: a repeated parameter is only complete in the multi-value map (the single map keeps the last). */
function queryStringV1(event: APIGatewayProxyEvent): string {
  const params = new URLSearchParams();
  if (event.multiValueQueryStringParameters) {
    for (const [name, values] of Object.entries(event.multiValueQueryStringParameters)) for (const v of values ?? []) params.append(name, v);
  } else {
    for (const [name, value] of Object.entries(event.queryStringParameters ?? {})) if (value !== undefined) params.append(name, value);
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

export function toNeutralRequest(event: LambdaEvent, options: { maxBodyBytes: number; basePath?: string }): NeutralRequest {
  const path = pathOf(event, options.basePath);
  if (isV2(event)) {
    const headers = headersOf(event.headers);
    // Payload 2.0 moves cookies out of the headers.
    if (event.cookies?.length) headers.cookie = event.cookies.join('; ');
    return {
      method: event.requestContext.http.method,
      url: `${path}${event.rawQueryString ? `?${event.rawQueryString}` : ''}`,
      headers,
      body: bodyOf(event.body, event.isBase64Encoded, options.maxBodyBytes),
      remoteAddress: event.requestContext.http.sourceIp,
    };
  }
  return {
    method: event.httpMethod,
    url: `${path}${queryStringV1(event)}`,
    headers: headersOf(event.headers, event.multiValueHeaders),
    body: bodyOf(event.body, event.isBase64Encoded, options.maxBodyBytes),
    // API Gateway's own view of the client (it sets X-Forwarded-For too, but anyone can send that).
    remoteAddress: event.requestContext.identity?.sourceIp,
  };
}

/** API Gateway's (and a synchronous invocation's) response payload limit. */
const LAMBDA_RESPONSE_BYTES = 6 * 1024 * 1024;

/**
 * A buffered Lambda result cannot stream: a streamed body is collected here, up to the payload
 * limit. Past it the producer is cancelled (its cursor closed) and the client is told to ask for
 * fewer rows, rather than given a result API Gateway would refuse.
 */
async function collected(response: NeutralResponse): Promise<NeutralResponse> {
  const { body } = response;
  if (!(body instanceof StreamedBody)) return response;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const bytes = Buffer.from(chunk);
    size += bytes.length;
    if (size > LAMBDA_RESPONSE_BYTES) {
      await body.cancel();
      const requestId = response.headers['x-request-id'] ?? '';
      const refusal = problemResponse(
        new BadRequest(`The answer passed Lambda's ${LAMBDA_RESPONSE_BYTES / 1024 / 1024} MB response limit; ask for fewer rows with limit= or Range`, 'limit'),
        requestId,
      );
      return { ...refusal, headers: { ...refusal.headers, 'x-request-id': requestId } };
    }
    chunks.push(bytes);
  }
  return { ...response, body: Buffer.concat(chunks, size) };
}

const TEXTUAL = /^(application\/([a-z.+-]*\+)?json|application\/javascript|text\/)/i;

function toLambdaResult(response: NeutralResponse): LambdaResult {
  const { body } = response;
  const contentType = response.headers['content-type'] ?? '';
  // Binary bodies (the docs' images) travel base64-encoded; text goes as is.
  const binary = Buffer.isBuffer(body) && !TEXTUAL.test(contentType);
  return {
    statusCode: response.status,
    headers: { ...response.headers },
    body: body === undefined || body instanceof StreamedBody ? '' : binary ? (body as Buffer).toString('base64') : body.toString(),
    isBase64Encoded: binary,
  };
}

/** A database that cannot be reached at cold start is the client's 503, not a crashed invocation. */
function coldStartFailure(err: unknown, event: LambdaEvent, started: number, logger: Logger): LambdaResult {
  const error = mapDatabaseError(err);
  if (error.status !== 503 && error.status !== 504) throw err; // configuration or a bug: fail the invocation loudly
  const headers = headersOf(event.headers, isV2(event) ? undefined : event.multiValueHeaders);
  const requestId = requestIdOf({ method: 'GET', url: '/', headers });
  logger.error({ reqId: requestId, err, status: error.status }, `Cold start failed: ${error.message}`);
  const response = problemResponse(error, requestId);
  response.headers['x-request-id'] = requestId;
  response.headers['x-process-time'] = (performance.now() - started).toFixed(2);
  response.headers['x-content-type-options'] = 'nosniff';
  return toLambdaResult(response);
}

type Runtime = ObservedContext & { router: Router };

/**
 * Sends what this invocation traced and logged before it returns: Lambda freezes the sandbox as
 * soon as the handler's promise settles, so the batch processors' timers would not run until the
 * next invocation thaws it (maybe never: an idle container is reclaimed without a signal to the
 * runtime unless an extension is registered). Bounded: a collector that hangs delays an answer
 * by at most `limitMs`; what it has not taken stays queued (bounded, drops counted) for the next.
 */
async function flushBeforeFreeze(runtime: Runtime, limitMs: number): Promise<void> {
  if (!runtime.telemetry) return;
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, limitMs);
  });
  await Promise.race([runtime.telemetry.flush().catch(() => undefined), limit]);
  clearTimeout(timer);
}

/**
 * An AWS Lambda handler for API Gateway proxy events (HTTP API payload 2.0, REST API 1.0).
 * `createContext` runs once per container, on the first invocation; the context (pool, cache,
 * token manager) and the router are reused by every later one. Invocations that arrive during
 * the cold start wait for the same context. A cold start that fails because the database is
 * unreachable answers 503 with Retry-After; any other failure fails the invocation. Either way
 * the next invocation tries again, so one bad moment never poisons the container. When the
 * context comes with telemetry (openObservedContext), each invocation flushes it before returning.
 */
export function createLambdaHandler(
  service: ServiceDefinition,
  createContext: () => Promise<Context | ObservedContext>,
  options: LambdaHandlerOptions = {},
): LambdaHandler {
  let runtime: Promise<Runtime> | undefined;
  let fallbackLogger = options.logger;
  const flushMs = options.telemetryFlushMs ?? TELEMETRY_FLUSH_MS;
  const start = () =>
    createContext().then(
      (opened) => {
        const observed: ObservedContext = 'ctx' in opened ? opened : { ctx: opened, telemetry: null };
        return { ...observed, router: createRouter(service, observed.ctx) };
      },
      (err: unknown) => {
        runtime = undefined;
        throw err;
      },
    );
  const handler = async (event: LambdaEvent): Promise<LambdaResult> => {
    const started = performance.now();
    let current: Runtime;
    try {
      runtime ??= start();
      current = await runtime;
    } catch (err) {
      fallbackLogger ??= createLogger({ level: 'info', pretty: false });
      return coldStartFailure(err, event, started, fallbackLogger);
    }
    const request = toNeutralRequest(event, { maxBodyBytes: current.ctx.config.maxBodyBytes, basePath: options.basePath });
    const result = toLambdaResult(await collected(await current.router.handle(request)));
    await flushBeforeFreeze(current, flushMs);
    return result;
  };
  return Object.assign(handler, {
    async close() {
      const pending = runtime;
      runtime = undefined;
      // A cold start that failed left nothing to close.
      const current = await pending?.catch(() => undefined);
      await current?.ctx.close();
      await current?.telemetry?.shutdown();
    },
  });
}
