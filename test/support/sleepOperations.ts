import type { OpenAPIObject } from 'openapi3-ts/oas31';
import { handlers } from '../../functions/index.ts';
import type { Handler, HandlerInput } from '../../lib/http/handler.ts';
import { CACHE_TTL_EXTENSION } from '../../lib/http/routing/operationExtensions.ts';
import { buildOpenApiDocument } from '../../openapi/document.ts';

/**
 * Test-only operations that hold a connection in pg_sleep, as a long query would: one uncached
 * (its result is this caller's alone), one cached (its result is shared through the cache).
 */
const sleep: Handler<HandlerInput<object, { seconds: number }>> = async ({ query, signal }, ctx) => {
  await ctx.db.query({ text: 'SELECT pg_sleep($1)', values: [query.seconds] }, { signal });
  return { body: { slept: query.seconds } };
};

export const sleepHandlers: Readonly<Record<string, Handler>> = { ...handlers, sleepForTest: sleep, sleepCachedForTest: sleep };

export function documentWithSleep(version = 'test'): OpenAPIObject {
  const document = buildOpenApiDocument(version);
  const countResponses = document.paths!['/trips/count']!.get!.responses;
  const operation = (operationId: string) => ({
    operationId,
    parameters: [{ name: 'seconds', in: 'query' as const, required: true, schema: { type: 'number' as const, minimum: 0, maximum: 60 } }],
    responses: { ...countResponses, '200': { description: 'slept', content: { 'application/json': { schema: { type: 'object' as const } } } } },
  });
  document.paths!['/test/sleep'] = { get: operation('sleepForTest') };
  document.paths!['/test/sleep-cached'] = { get: { ...operation('sleepCachedForTest'), [CACHE_TTL_EXTENSION]: 30 } };
  return document;
}
