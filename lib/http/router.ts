import { performance } from 'node:perf_hooks';
import type { OpenAPIObject } from 'openapi3-ts/oas31';
import { handlers as defaultHandlers } from '../../functions/index.ts';
import { buildOpenApiDocument } from '../../openapi/document.ts';
import type { Context } from '../context.ts';
import { MethodNotAllowed, NotFound, PayloadTooLarge, toApiError, UriTooLong } from '../errors.ts';
import type { Handler } from '../handler.ts';
import { inRequestScope } from '../ops/requestScope.ts';
import { type RequestSpan, tracing } from '../telemetry/tracing.ts';
import type { VerifiedUser } from '../userAccess/userAccess.ts';
import { headerValue, type NeutralRequest, type NeutralResponse } from './neutralRequest.ts';
import { createBuiltInRoutes } from './routing/builtInRoutes.ts';
import { createCachedRead } from './routing/cachedRead.ts';
import { type CompiledOperation, compileOperations } from './routing/compiledOperation.ts';
import { createCorsPolicy } from './routing/cors.ts';
import { createRequestLog, newTrace, type RequestTrace, requestIdOf } from './routing/requestLog.ts';
import { JSON_TYPE, problemResponse, serializeBody, shortPath } from './routing/responses.ts';
import { RouteTable } from './routing/routeTable.ts';
import { createOperationRunner } from './routing/runOperation.ts';
import { createWriteInvalidation } from './routing/writeInvalidation.ts';
import { addSecurityHeaders } from './securityHeaders.ts';

export type { CompiledOperation } from './routing/compiledOperation.ts';
export { requestIdOf } from './routing/requestLog.ts';
export { problemResponse } from './routing/responses.ts';

export interface Router {
  readonly document: OpenAPIObject;
  readonly operations: readonly CompiledOperation[];
  handle(request: NeutralRequest): Promise<NeutralResponse>;
}

export interface RouterOptions {
  document?: OpenAPIObject;
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
export function createRouter(ctx: Context, options: RouterOptions = {}): Router {
  const document = options.document ?? buildOpenApiDocument(ctx.version, { access: ctx.config.access.mode, auth: ctx.config.auth.mode });
  const operations = compileOperations(document, options.handlers ?? defaultHandlers);
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
  const cachedRead = createCachedRead(ctx, { run, cacheScope: options.cacheScope ?? ((user) => user.email), identityHeader: authenticator?.identityHeader });
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
    const declaredLength = Number(headerValue(request.headers, 'content-length'));
    if ((request.body && request.body.length > maxBodyBytes) || declaredLength > maxBodyBytes) throw new PayloadTooLarge(maxBodyBytes);
    // Who is calling comes before what they ask: no input feedback to an unidentified caller.
    // (A guarded operation always has an authenticator: createRouter refuses to start otherwise.)
    const caller = operation.guarded && authenticator ? await authenticator.identify(request.headers) : undefined;
    trace.user = caller?.email;
    if (caller && authenticator) authenticator.authorize(caller, operation);
    const user = caller?.user;

    const validated = operation.validator.validate({
      params: match.params,
      query: new URLSearchParams(search),
      contentType: headerValue(request.headers, 'content-type'),
      body: request.body,
      headers: request.headers,
    });
    const read = method === 'GET' || method === 'HEAD';
    const cacheable = operation.cacheTtlSeconds > 0 && read;
    // A result shared through the cache must be finished even if this caller leaves; an unshared
    // read may stop its statements when its caller goes away. Writes always run to the end. The
    // signal is read only when it is used: the node adapters make it on demand.
    const signal = read && !(cacheable && ctx.cache) ? request.signal : undefined;
    const input = signal ? { ...validated, signal } : validated;
    if (cacheable) {
      const { response, cache } = await cachedRead(request, operation, input, user);
      trace.cache = cache;
      return response;
    }
    const result = await run(operation, input, user);
    if (operation.invalidates.length > 0) await invalidate(operation, input.params);
    // A 204 (a generated DELETE), or a write answered with Prefer: return=minimal, has no body, so no content type either.
    const noContent = result.status === 204 || result.body === undefined;
    return {
      status: result.status ?? 200,
      headers: { ...(noContent ? {} : { 'content-type': JSON_TYPE }), 'cache-control': 'no-store', ...result.headers },
      body: noContent ? undefined : serializeBody(result.body),
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
      if (error.status >= 500) {
        ctx.logger.error({ reqId: requestId, err: error.cause ?? error, status: error.status }, `${method} ${path} failed: ${error.message}`);
      }
      response = problemResponse(error, requestId);
    }

    if (method === 'HEAD') response = { ...response, body: undefined };
    const ms = performance.now() - started;
    response.headers['x-request-id'] = requestId;
    response.headers['x-process-time'] = ms.toFixed(2);
    addSecurityHeaders(response.headers);
    if (method !== 'OPTIONS') Object.assign(response.headers, cors.responseHeaders(request));
    record({ request, requestId, method, path, status: response.status, ms, trace }, span);
    return response;
  }

  return { document, operations, handle };
}
