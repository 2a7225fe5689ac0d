import { performance } from 'node:perf_hooks';
import type { OpenAPIObject } from 'openapi3-ts/oas31';
import type { Context } from './serviceContext.ts';
import { MethodNotAllowed, NotFound, Overloaded, PayloadTooLarge, TooManyRequests, toApiError, UriTooLong } from '../errors.ts';
import type { Handler } from './handler.ts';
import { inRequestScope } from '../ground/requestScope.ts';
import { type RequestSpan, tracing } from '../telemetry/tracing.ts';
import type { VerifiedUser } from '../userAccess/userAccess.ts';
import { headerValue, type NeutralRequest, type NeutralResponse, StreamedBody } from '../ground/neutralRequest.ts';
import { streamsAnswer } from '../postgrest/dialectInput.ts';
import { createAdmission, type Requester } from './routing/admission.ts';
import { createBuiltInRoutes } from './routing/builtInRoutes.ts';
import { createCachedRead } from './routing/cachedRead.ts';
import { type CompiledOperation, compileOperations } from './routing/compiledOperation.ts';
import { addCorsHeaders, createCorsPolicy } from './routing/cors.ts';
import { createRequestLog, newTrace, type RequestTrace, requestIdOf } from './routing/requestLog.ts';
import { JSON_TYPE, problemResponse, serializeBody, shortPath } from './routing/responses.ts';
import { RouteTable } from './routing/routeTable.ts';
import { createOperationRunner } from './routing/runOperation.ts';
import { createWriteInvalidation } from './routing/writeInvalidation.ts';
import { addSecurityHeaders } from './securityHeaders.ts';

export { requestIdOf } from './routing/requestLog.ts';
export { problemResponse } from './routing/responses.ts';

export interface Router {
  readonly document: OpenAPIObject;
  readonly operations: readonly CompiledOperation[];
  handle(request: NeutralRequest): Promise<NeutralResponse>;
}

/**
 * What a service serves: its handlers (functions/) and its contract (openapi/). The composition on
 * top (server.ts, examples/, tests) hands it to the router, which knows neither folder.
 */
export interface ServiceDefinition {
  handlers: Readonly<Record<string, Handler>>;
  /** The OpenAPI document for this context's settings (access and auth modes change its security). */
  document(ctx: Context): OpenAPIObject;
}

export interface RouterOptions {
  /** Replaces the service's document (tests). */
  document?: OpenAPIObject;
  /** Replaces the service's handlers (tests). */
  handlers?: Readonly<Record<string, Handler>>;
  /**
   * The cache scope of a user's results (default: their e-mail, so one user's answer is never
   * served to another). Tests replace it to show what an unscoped key would leak.
   */
  cacheScope?: (user: VerifiedUser) => string;
}

/**
 * The router every adapter shares, built once per context. One request goes through:
 * - `respond`: request id, the URL length bound, the request scope; any error becomes a problem
 *   response; then the common headers and the request log (routing/requestLog.ts);
 * - `dispatch`: the built-in answers (routing/builtInRoutes.ts), else match, size bound,
 *   authenticate and validate the operation's input;
 * - then either the cached-read path (routing/cachedRead.ts) or a direct call of the handler
 *   (routing/runOperation.ts), followed for writes by invalidation (routing/writeInvalidation.ts).
 */
export function createRouter(service: ServiceDefinition, ctx: Context, options: RouterOptions = {}): Router {
  const document = options.document ?? service.document(ctx);
  const operations = compileOperations(document, options.handlers ?? service.handlers);
  const { authenticator } = ctx;
  const guarded = operations.find((op) => op.guarded);
  // A declared security requirement nobody enforces would be worse than none.
  if (guarded && !authenticator) throw new Error(`Operation ${guarded.operationId} declares security, which AUTH_MODE=none does not enforce`);
  const routes = new RouteTable<CompiledOperation>();
  for (const op of operations) routes.add(op.template, op.method, op);
  const { maxBodyBytes, maxUrlLength } = ctx.config;
  const cors = createCorsPolicy(ctx.config.corsOrigins);

  const builtIn = createBuiltInRoutes(ctx, document, routes, cors);
  const run = createOperationRunner(ctx);
  const admission = createAdmission(ctx);
  const cachedRead = createCachedRead(ctx, {
    run,
    cacheScope: options.cacheScope ?? ((user) => user.email),
    identityHeader: authenticator?.identityHeader,
    admission,
  });
  const invalidate = createWriteInvalidation(ctx);
  const record = createRequestLog(ctx);

  /** Finds what answers the request and runs it; fills `trace` with the route, cache outcome and caller. */
  async function dispatch(request: NeutralRequest, method: string, path: string, search: string, trace: RequestTrace): Promise<NeutralResponse> {
    const answered = builtIn(request, method, path);
    if (answered) {
      const { route, response } = await answered;
      trace.route = route;
      return response;
    }

    const match = routes.match(path);
    if (!match) throw new NotFound(`No route for ${shortPath(path)}`);
    const operation = match.methods.get(method === 'HEAD' ? 'GET' : method);
    if (!operation) throw new MethodNotAllowed(method, [...match.methods.keys()]);
    trace.route = match.template;
    trace.operation = operation.operationId;
    const declaredLength = Number(headerValue(request.headers, 'content-length'));
    if ((request.body && request.body.length > maxBodyBytes) || declaredLength > maxBodyBytes) throw new PayloadTooLarge(maxBodyBytes);
    // Who is calling comes before what they ask: no input feedback to an unidentified caller.
    // (A guarded operation always has an authenticator: createRouter refuses to start otherwise.)
    const caller = operation.guarded && authenticator ? await authenticator.identify(request.headers) : undefined;
    trace.user = caller?.email;
    if (caller && authenticator) authenticator.authorize(caller, operation);
    const user = caller?.user;
    const callerKey = admission.callerKey(request, caller);
    const turn = admission.turn(operation, callerKey);
    const leave = turn instanceof Promise ? await turn : turn;
    const who: Requester = { key: callerKey, waiting: () => leave?.() };
    try {
      return await serve(request, method, operation, match.params, search, user, who, trace);
    } finally {
      leave?.();
    }
  }

  /** Validates the input, then answers through the cache or by running the operation (then invalidating for a write). */
  async function serve(
    request: NeutralRequest,
    method: string,
    operation: CompiledOperation,
    params: Record<string, string>,
    search: string,
    user: VerifiedUser | undefined,
    who: Requester,
    trace: RequestTrace,
  ): Promise<NeutralResponse> {
    const validated = operation.validator.validate({
      params,
      query: new URLSearchParams(search),
      contentType: headerValue(request.headers, 'content-type'),
      body: request.body,
      headers: request.headers,
    });
    const read = method === 'GET' || method === 'HEAD';
    // A large export (CSV, or a JSON page past a buffered answer's size) streams: never cached.
    const stream = method === 'GET' && operation.validator.dialect && streamsAnswer(validated.query, ctx.config.dbMaxRows);
    const cacheable = operation.cacheTtlSeconds > 0 && read && !stream;
    // A result shared through the cache must be finished even if this caller leaves; an unshared
    // read may stop its statements when its caller goes away. Writes always run to the end. The
    // signal is read only when it is used: the node adapters make it on demand.
    const signal = read && !(cacheable && ctx.cache) ? request.signal : undefined;
    const input = { ...validated, ...(signal ? { signal } : {}), ...(stream ? { stream } : {}) };
    if (cacheable) {
      const { response, cache } = await cachedRead(request, operation, input, user, who);
      trace.cache = cache;
      return response;
    }
    const end = admission.enter(operation, who.key);
    let result: Awaited<ReturnType<typeof run>>;
    try {
      result = await run(operation, input, user, who);
    } finally {
      end?.();
    }
    if (operation.invalidates.length > 0) await invalidate(operation, input.params);
    // A 204 (a generated DELETE), or a write answered with Prefer: return=minimal, has no body, so no content type either.
    const noContent = result.status === 204 || result.body === undefined;
    return {
      status: result.status ?? 200,
      headers: { ...(noContent ? {} : { 'content-type': JSON_TYPE }), 'cache-control': 'no-store', ...result.headers },
      body: noContent ? undefined : result.body instanceof StreamedBody ? result.body : serializeBody(result.body),
    };
  }

  /** One request, in a server span when telemetry is on (lib/telemetry/tracing.ts). */
  function handle(request: NeutralRequest): Promise<NeutralResponse> {
    const requestTracing = tracing();
    if (!requestTracing.enabled) return respond(request, undefined);
    return requestTracing.serve(request.method.toUpperCase(), request.headers, (span) => respond(request, span));
  }

  async function respond(request: NeutralRequest, span: RequestSpan | undefined): Promise<NeutralResponse> {
    const started = performance.now();
    const requestId = requestIdOf(request);
    const method = request.method.toUpperCase();
    const queryStart = request.url.indexOf('?');
    const path = queryStart === -1 ? request.url : request.url.slice(0, queryStart);
    const search = queryStart === -1 ? '' : request.url.slice(queryStart + 1);

    let response: NeutralResponse;
    const trace = newTrace();
    try {
      if (request.url.length > maxUrlLength) throw new UriTooLong(maxUrlLength);
      response = await inRequestScope(requestId, () => dispatch(request, method, path, search, trace));
    } catch (err) {
      // Name the route a failed request matched too (a 400, 503 or 499 on /trips/{trip_id}), so errors count per route.
      trace.route = routes.match(path)?.template ?? trace.route;
      const error = toApiError(err);
      // Refused to keep shares fair: counted by operation and limit (never by caller), and logged with why.
      if (error instanceof TooManyRequests || error instanceof Overloaded) {
        trace.refused = error.limit;
        ctx.metrics?.refused(trace.operation ?? 'unmatched', error.limit);
      } else if (error.status >= 500) {
        ctx.logger.error({ reqId: requestId, err: error.cause ?? error, status: error.status }, `${method} ${path} failed: ${error.message}`);
      }
      response = problemResponse(error, requestId);
    }

    if (method === 'HEAD') {
      if (response.body instanceof StreamedBody) await response.body.cancel();
      response = { ...response, body: undefined };
    }
    const ms = performance.now() - started;
    response.headers['x-request-id'] = requestId;
    response.headers['x-process-time'] = ms.toFixed(2);
    addSecurityHeaders(response.headers);
    if (method !== 'OPTIONS') addCorsHeaders(response.headers, cors.responseHeaders(request));
    record({ request, requestId, method, path, status: response.status, ms, trace }, span);
    return response;
  }

  return { document, operations, handle };
}
