import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { OpenAPIObject, OperationObject, PathItemObject } from 'openapi3-ts/oas31';
import { handlers as defaultHandlers } from '../../functions/index.ts';
import { buildOpenApiDocument, CACHE_INVALIDATES_EXTENSION, CACHE_TTL_EXTENSION, READ_FROM_EXTENSION, type ReadFrom } from '../../openapi/document.ts';
import { cacheKey, etagOf, invalidationPrefixes, type CacheOutcome } from '../cache/resultsCache.ts';
import type { Context } from '../context.ts';
import { serveDocs } from './docs.ts';
import { ApiError, Forbidden, MethodNotAllowed, NotFound, PayloadTooLarge, toApiError, UriTooLong } from '../errors.ts';
import { JsonText, type Handler } from '../handler.ts';
import { headerValue, type NeutralRequest, type NeutralResponse } from './neutralRequest.ts';
import { callerLogFields } from '../ops/callerIdentity.ts';
import { inRequestScope } from '../ops/requestScope.ts';
import { createCorsPolicy } from './routing/cors.ts';
import { InputValidator, type ValidatedInput } from './routing/inputValidator.ts';
import { RouteTable } from './routing/routeTable.ts';
import { createSchemaCompiler } from './routing/schemaCompiler.ts';
import { addSecurityHeaders } from './securityHeaders.ts';
import { tracing, type RequestSpan } from '../telemetry/tracing.ts';
import type { VerifiedUser } from '../userAccess/userAccess.ts';

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head'] as const;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const JSON_TYPE = 'application/json; charset=utf-8';
const PROBLEM_TYPE = 'application/problem+json; charset=utf-8';
/** Prometheus' conventional path; operational, so not in the OpenAPI document (see README, Operations). */
const METRICS_PATH = '/metrics';

export interface CompiledOperation {
  operationId: string;
  method: string;
  template: string;
  handler: Handler;
  validator: InputValidator;
  cacheTtlSeconds: number;
  /** Cache key prefix templates a successful call of this (write) operation makes stale. */
  invalidates: readonly string[];
  /**
   * Declares `security`: the authenticate step (lib/auth/) identifies the caller first, and with
   * LAKEBASE_ACCESS=user the handler runs as them, on their own connections.
   */
  guarded: boolean;
  /** Changes data (not GET / HEAD): AUTH_WRITERS applies. */
  write: boolean;
  /** `x-read-from`: whether a read replica, when configured, may answer it. */
  readFrom: ReadFrom;
}

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

/** Filled in while a request is dispatched, for its log line even when it fails. */
interface RequestTrace {
  user?: string;
}

/** Pairs every operation in the document with its handler; a missing pair is a start-up error. */
function compileOperations(document: OpenAPIObject, handlers: Readonly<Record<string, Handler>>): CompiledOperation[] {
  const compiler = createSchemaCompiler(document);
  const compiled: CompiledOperation[] = [];
  for (const [template, item] of Object.entries(document.paths ?? {}) as Array<[string, PathItemObject]>) {
    for (const method of HTTP_METHODS) {
      const operation = item[method] as (OperationObject & Record<string, unknown>) | undefined;
      if (!operation) continue;
      const operationId = operation.operationId;
      if (!operationId) throw new Error(`${method.toUpperCase()} ${template} has no operationId`);
      const handler = handlers[operationId];
      if (!handler) throw new Error(`No handler in functions/ for operation ${operationId}`);
      compiled.push({
        operationId,
        method: method.toUpperCase(),
        template,
        handler,
        validator: new InputValidator(operation, compiler),
        cacheTtlSeconds: Number(operation[CACHE_TTL_EXTENSION] ?? 0),
        invalidates: (operation[CACHE_INVALIDATES_EXTENSION] as string[] | undefined) ?? [],
        guarded: Array.isArray(operation.security) && operation.security.length > 0,
        write: method !== 'get' && method !== 'head',
        readFrom: readFromOf(operation, method, template),
      });
    }
  }
  const described = new Set(compiled.map((op) => op.operationId));
  const orphan = Object.keys(handlers).find((id) => !described.has(id));
  if (orphan) throw new Error(`Handler ${orphan} has no operation in the OpenAPI document`);
  return compiled;
}

/** `x-read-from`, checked: only a GET may be sent to a read-only server. */
function readFromOf(operation: Record<string, unknown>, method: string, template: string): ReadFrom {
  const declared = operation[READ_FROM_EXTENSION] ?? 'primary';
  if (declared !== 'replica' && declared !== 'primary')
    throw new Error(`${method.toUpperCase()} ${template}: ${READ_FROM_EXTENSION} must be replica or primary`);
  if (declared === 'replica' && method !== 'get')
    throw new Error(`${method.toUpperCase()} ${template}: only a GET may declare ${READ_FROM_EXTENSION}: replica`);
  return declared;
}

/** The caller's request id when it is a sane one, else a fresh one. */
export function requestIdOf(request: NeutralRequest): string {
  const incoming = headerValue(request.headers, 'x-request-id');
  return incoming !== undefined && REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/** RFC 9110: If-None-Match is a list of entity tags, or `*`; weak comparison. */
function ifNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

/**
 * A body the cache will keep, in memory of its own. A small Buffer.from() is a slice of a shared
 * 8 KB pool slab, and one slice kept in the cache keeps its whole slab alive: 5,000 cached trips
 * (1.9 MB counted against CACHE_MAX_BYTES) pinned 6.4 MB of slabs.
 */
function ownBytes(text: string): Buffer {
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text));
  bytes.write(text);
  return bytes;
}

/** A handler's body as JSON text: already serialised (JsonText) or stringified here. */
const serializeBody = (body: unknown): string => (body instanceof JsonText ? body.text : JSON.stringify(body));

export function problemResponse(error: ApiError, requestId: string): NeutralResponse {
  const headers: Record<string, string> = { 'content-type': PROBLEM_TYPE, 'cache-control': 'no-store', ...error.headers };
  if (error.retryAfterSeconds !== undefined) headers['retry-after'] = String(error.retryAfterSeconds);
  return { status: error.status, headers, body: JSON.stringify(error.toProblem(requestId)) };
}

/**
 * The router every adapter shares: matching, validation, handler call, serialisation, errors and
 * the per-request log line. Built once per context.
 */
export function createRouter(ctx: Context, options: RouterOptions = {}): Router {
  const document = options.document ?? buildOpenApiDocument(ctx.version, { access: ctx.config.access.mode, auth: ctx.config.auth.mode });
  const operations = compileOperations(document, options.handlers ?? defaultHandlers);
  const { userAccess, authenticator } = ctx;
  const guarded = operations.find((op) => op.guarded);
  // A declared security requirement nobody enforces would be worse than none.
  if (guarded && !authenticator) throw new Error(`Operation ${guarded.operationId} declares security, which AUTH_MODE=none does not enforce`);
  const cacheScope = options.cacheScope ?? ((user: VerifiedUser) => user.email);
  const routes = new RouteTable<CompiledOperation>();
  for (const op of operations) routes.add(op.template, op.method, op);
  const documentJson = JSON.stringify(document);
  const maxBodyBytes = ctx.config.maxBodyBytes;
  const maxUrlLength = ctx.config.maxUrlLength;
  const cors = createCorsPolicy(ctx.config.corsOrigins);
  // The per-request line holds only fields the router sets (validated request id, method, route
  // template, status, timing, cache outcome, the caller's bounded email/user and, in user mode,
  // the verified user's e-mail), never a credential:
  // key-based redaction, which walks every key of every line, would be most of the router's cost
  // on a cache hit. Error lines keep the redacting logger.
  const requestLog = ctx.logger.child({}, { redact: [] });

  /** The methods a path answers (HEAD wherever GET is), or undefined for an unknown path. */
  function methodsFor(path: string): string[] | undefined {
    if (path === '/openapi.json' || serveDocs(path)) return ['GET', 'HEAD'];
    const match = routes.match(path);
    if (!match) return undefined;
    const methods = [...match.methods.keys()];
    return methods.includes('GET') ? [...methods, 'HEAD'] : methods;
  }

  async function dispatch(
    request: NeutralRequest,
    method: string,
    path: string,
    search: string,
    trace: RequestTrace,
  ): Promise<{ response: NeutralResponse; route: string; cache?: CacheOutcome }> {
    if (method === 'OPTIONS') {
      // RFC 9110 OPTIONS, and the CORS preflight when CORS_ORIGINS is set.
      const methods = methodsFor(path);
      if (!methods) throw new NotFound(`No route for ${path.length > 200 ? `${path.slice(0, 200)}…` : path}`);
      const headers = { allow: [...methods, 'OPTIONS'].join(', '), 'cache-control': 'no-store', ...cors.preflightHeaders(request, methods) };
      const route = routes.match(path)?.template ?? (path.startsWith('/docs') ? '/docs' : path);
      return { route, response: { status: 204, headers, body: undefined } };
    }
    if (path === '/openapi.json' && (method === 'GET' || method === 'HEAD')) {
      return { route: path, response: { status: 200, headers: { 'content-type': JSON_TYPE, 'cache-control': 'no-cache' }, body: documentJson } };
    }
    if (path === METRICS_PATH && ctx.metrics && (method === 'GET' || method === 'HEAD')) {
      const { contentType, body } = await ctx.metrics.exposition();
      return { route: path, response: { status: 200, headers: { 'content-type': contentType, 'cache-control': 'no-store' }, body } };
    }
    if (path === '/docs' || path.startsWith('/docs/')) {
      const docs = method === 'GET' || method === 'HEAD' ? serveDocs(path) : undefined;
      if (docs) return { route: '/docs', response: docs };
    }

    const match = routes.match(path);
    if (!match) throw new NotFound(`No route for ${path.length > 200 ? `${path.slice(0, 200)}…` : path}`);
    const operation = match.methods.get(method === 'HEAD' ? 'GET' : method);
    if (!operation) throw new MethodNotAllowed(method, [...match.methods.keys()]);
    const declaredLength = Number(headerValue(request.headers, 'content-length'));
    if ((request.body && request.body.length > maxBodyBytes) || declaredLength > maxBodyBytes) throw new PayloadTooLarge(maxBodyBytes);
    // Who is calling comes before what they ask: no input feedback to an unidentified caller.
    const caller = operation.guarded ? await authenticator!.identify(request.headers) : undefined;
    trace.user = caller?.email;
    if (caller) authenticator!.authorize(caller, operation);
    const user = caller?.user;

    const validated = operation.validator.validate({
      params: match.params,
      query: new URLSearchParams(search),
      contentType: headerValue(request.headers, 'content-type'),
      body: request.body,
    });
    const read = method === 'GET' || method === 'HEAD';
    const cacheable = operation.cacheTtlSeconds > 0 && read;
    // A result shared through the cache must be finished even if this caller leaves; an unshared
    // read may stop its statements when its caller goes away. Writes always run to the end. The
    // signal is read only when it is used: the node adapters make it on demand.
    const signal = read && !(cacheable && ctx.cache) ? request.signal : undefined;
    const input = signal ? { ...validated, signal } : validated;
    if (cacheable) return { route: match.template, ...(await cachedResponse(request, operation, input, user)) };
    const result = await run(operation, input, user);
    if (operation.invalidates.length > 0) await invalidate(operation, input.params);
    // A 204 (a generated DELETE) has no body, so no content type either.
    const noContent = result.status === 204;
    return {
      route: match.template,
      response: {
        status: result.status ?? 200,
        headers: { ...(noContent ? {} : { 'content-type': JSON_TYPE }), 'cache-control': 'no-store', ...result.headers },
        body: noContent ? undefined : serializeBody(result.body),
      },
    };
  }

  /**
   * Cacheable reads: served from the results cache as stored bytes, with a strong ETag, 304 for a
   * matching If-None-Match, and `Cache-Control: no-cache` from the client forcing a fresh query.
   */
  async function cachedResponse(
    request: NeutralRequest,
    operation: CompiledOperation,
    input: ValidatedInput,
    user: VerifiedUser | undefined,
  ): Promise<{ response: NeutralResponse; cache?: CacheOutcome }> {
    const runAndStore = async () => {
      const result = await run(operation, input, user);
      return { status: result.status ?? 200, body: ownBytes(serializeBody(result.body)) };
    };
    // With telemetry on, filling the cache is a span of its own (a hit is only the server span's cache outcome).
    const spans = tracing();
    const load = spans.enabled ? () => spans.inSpan('cache.load', { 'cache.operation': operation.operationId }, runAndStore) : runAndStore;
    let status: number;
    let body: Buffer;
    let etag: string;
    let cache: CacheOutcome | undefined;
    const headers: Record<string, string> = { 'content-type': JSON_TYPE };
    if (ctx.cache) {
      const refresh = /\bno-cache\b/i.test(headerValue(request.headers, 'cache-control') ?? '');
      const key = cacheKey(operation.operationId, input, user ? cacheScope(user) : '');
      const { response, outcome } = await ctx.cache.getOrLoad(key, operation.cacheTtlSeconds, load, refresh);
      ({ status, body, etag } = response);
      cache = outcome;
      headers['cache-control'] = `private, max-age=${operation.cacheTtlSeconds}`;
      headers['x-cache'] = outcome === 'HIT' || outcome === 'COALESCED' ? 'HIT' : 'MISS';
    } else {
      ({ status, body } = await load());
      etag = etagOf(body);
      headers['cache-control'] = 'no-cache';
    }
    headers.etag = etag;
    // Per-user answers: a browser cache must not hand one user's answer to the next on the same machine.
    if (user) headers.vary = authenticator!.identityHeader;
    if (ifNoneMatch(headerValue(request.headers, 'if-none-match'), etag)) return { cache, response: { status: 304, headers, body: undefined } };
    return { cache, response: { status, headers, body } };
  }

  /**
   * Calls the handler: as the verified user on their own connections when the operation runs as
   * the caller. A permission refusal names the operation (and the user).
   */
  async function run(operation: CompiledOperation, input: ValidatedInput, user: VerifiedUser | undefined) {
    try {
      if (!user) {
        const { readRouting } = ctx;
        if (operation.readFrom === 'replica' && readRouting) {
          return await readRouting.run(operation.operationId, input, (db) => operation.handler(input, { ...ctx, db }));
        }
        return await operation.handler(input, ctx);
      }
      return await userAccess!.withDatabase(user, (db) => operation.handler(input, { ...ctx, db }));
    } catch (err) {
      if (err instanceof Forbidden && err.operation === undefined) throw err.forOperation(operation.operationId, user?.email);
      throw err;
    }
  }

  async function invalidate(operation: CompiledOperation, params: Record<string, unknown>): Promise<void> {
    const prefixes = invalidationPrefixes(operation.invalidates, params);
    // Read-your-writes: before the caller hears of the write, the reads it made stale stop going to
    // a replica that has not replayed it.
    await ctx.readRouting?.fenceWrite(prefixes);
    ctx.cache?.invalidate(prefixes);
    if (ctx.publishInvalidation) {
      // The write has succeeded; a failed broadcast only delays other instances until their TTL.
      await ctx.publishInvalidation(prefixes).catch((err: unknown) => ctx.logger.warn({ err }, 'Could not broadcast a cache invalidation'));
    }
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
    let route = 'unmatched';
    let cache: CacheOutcome | undefined;
    const trace: RequestTrace = {};
    try {
      if (request.url.length > maxUrlLength) throw new UriTooLong(maxUrlLength);
      ({ response, route, cache } = await inRequestScope(requestId, () => dispatch(request, method, path, search, trace)));
    } catch (err) {
      // Failures of a matched route (400, 404, 503...) are logged and counted under its template.
      route = routes.match(path)?.template ?? route;
      const error = toApiError(err);
      // Name the route a failed request matched too (a 400, 503 or 499 on /trips/{trip_id}), so errors count per route.
      if (error.status !== 414) route = routes.match(path)?.template ?? route;
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
    requestLog.info(
      {
        reqId: requestId,
        method,
        route,
        status: response.status,
        ms: Math.round(ms * 100) / 100,
        ...(cache ? { cache } : {}),
        ...callerLogFields(request.headers),
        // The authenticated caller (and, with LAKEBASE_ACCESS=user, who Postgres saw): the audit trail.
        ...(trace.user ? { user: trace.user } : {}),
      },
      `${method} ${path.length > 200 ? `${path.slice(0, 200)}…` : path} ${response.status} ${ms.toFixed(1)}ms`,
    );
    ctx.metrics?.observeRequest(method, route, response.status, ms / 1000);
    span?.finish({ route: route === 'unmatched' ? undefined : route, status: response.status, requestId, user: trace.user, cache });
    return response;
  }

  return { document, operations, handle };
}
