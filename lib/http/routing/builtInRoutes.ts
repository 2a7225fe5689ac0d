import type { OpenAPIObject } from 'openapi3-ts/oas31';
import type { Context } from '../serviceContext.ts';
import { NotFound } from '../../errors.ts';
import type { Metrics } from '../../ops/metrics.ts';
import { serveDocs } from '../docs.ts';
import type { NeutralRequest, NeutralResponse } from '../../ground/neutralRequest.ts';
import type { CompiledOperation } from './compiledOperation.ts';
import type { CorsPolicy } from './cors.ts';
import { JSON_TYPE, shortPath } from './responses.ts';
import type { RouteTable } from './routeTable.ts';

/** Prometheus' conventional path; operational, so not in the OpenAPI document (see docs/operations.md). */
const METRICS_PATH = '/metrics';

/** A response and the route it is logged and counted under. */
interface Answered {
  response: NeutralResponse;
  route: string;
}

/**
 * The answers that are not operations of the document: OPTIONS (and the CORS preflight), the
 * document itself, the metrics exposition and the interactive docs. Returns undefined for every
 * other request, without waiting, so an operation's request pays a few string comparisons only.
 */
export type BuiltInRoutes = (request: NeutralRequest, method: string, path: string) => Answered | Promise<Answered> | undefined;

export function createBuiltInRoutes(ctx: Context, document: OpenAPIObject, routes: RouteTable<CompiledOperation>, cors: CorsPolicy): BuiltInRoutes {
  const documentJson = JSON.stringify(document);

  /** The methods a path answers (HEAD wherever GET is), or undefined for an unknown path. */
  function methodsFor(path: string): string[] | undefined {
    if (path === '/openapi.json' || serveDocs(path)) return ['GET', 'HEAD'];
    const match = routes.match(path);
    if (!match) return undefined;
    const methods = [...match.methods.keys()];
    return methods.includes('GET') ? [...methods, 'HEAD'] : methods;
  }

  async function metricsExposition(metrics: Metrics, path: string): Promise<Answered> {
    const { contentType, body } = await metrics.exposition();
    return { route: path, response: { status: 200, headers: { 'content-type': contentType, 'cache-control': 'no-store' }, body } };
  }

  return function builtIn(request, method, path) {
    if (method === 'OPTIONS') {
      // RFC 9110 OPTIONS, and the CORS preflight when CORS_ORIGINS is set.
      const methods = methodsFor(path);
      if (!methods) throw new NotFound(`No route for ${shortPath(path)}`);
      const headers = { allow: [...methods, 'OPTIONS'].join(', '), 'cache-control': 'no-store', ...cors.preflightHeaders(request, methods) };
      const route = routes.match(path)?.template ?? (path.startsWith('/docs') ? '/docs' : path);
      return { route, response: { status: 204, headers, body: undefined } };
    }
    const read = method === 'GET' || method === 'HEAD';
    if (path === '/openapi.json' && read) {
      return { route: path, response: { status: 200, headers: { 'content-type': JSON_TYPE, 'cache-control': 'no-cache' }, body: documentJson } };
    }
    if (path === METRICS_PATH && ctx.metrics && read) return metricsExposition(ctx.metrics, path);
    if (read && (path === '/docs' || path.startsWith('/docs/'))) {
      const docs = serveDocs(path);
      if (docs) return { route: '/docs', response: docs };
    }
    return undefined;
  };
}
