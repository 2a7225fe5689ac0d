import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2 } from 'aws-lambda';
import { createLambdaHandler, toNeutralRequest, type LambdaEvent, type LambdaResult } from '../../lib/http/adapters/lambda.ts';
import { loadConfig } from '../../lib/ground/config.ts';
import { ConfigError } from '../../lib/ground/settingsReaders.ts';
import { createContext } from '../../lib/context.ts';
import type { Context } from '../../lib/http/serviceContext.ts';
import { embeddedTarget } from '../../lib/db/resolveConnectionTarget.ts';
import { APP_VERSION } from '../../lib/version.ts';
import { captureLogs } from '../support/logCapture.ts';
import { startTestDatabase, startTestService, type TestDatabase, type TestService } from '../support/testService.ts';
import { apiService } from '../../functions/index.ts';

const fixture = <T>(name: string): T => JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')) as T;
/** API Gateway HTTP API, payload 2.0, `$default` stage. */
const v2 = fixture<APIGatewayProxyEventV2>('apigw-v2-event.json');
/** API Gateway REST API, payload 1.0, stage `prod`. */
const restV1 = fixture<APIGatewayProxyEvent>('apigw-v1-event.json');
/** API Gateway HTTP API with its integration set to payload 1.0. */
const httpV1 = fixture<APIGatewayProxyEvent>('httpapi-v1-event.json');

let database: TestDatabase;
let service: TestService;
before(async () => {
  database = await startTestDatabase(200);
  service = await startTestService({ database });
});
after(async () => {
  await service?.close();
  await database?.stop();
});

const body = (result: LambdaResult) =>
  JSON.parse(result.isBase64Encoded ? Buffer.from(result.body, 'base64').toString('utf8') : result.body) as Record<string, unknown>;

describe('API Gateway events', () => {
  const handler = () => createLambdaHandler(apiService, async () => service.ctx);

  test('the sample events from the fixtures are answered as they are', async () => {
    const handle = handler();
    for (const event of [v2, restV1, httpV1] as LambdaEvent[]) {
      const result = await handle(event);
      assert.equal(result.statusCode, 200);
      assert.equal(result.isBase64Encoded, false);
      assert.equal(result.headers?.['content-type'], 'application/json; charset=utf-8');
      assert.equal(body(result).id, 42);
    }
  });

  test('base64 bodies, in both payload versions', async () => {
    const handle = handler();
    const encoded = Buffer.from('{"vendor_id":"2"}').toString('base64');
    const viaRest = await handle({
      ...restV1,
      httpMethod: 'POST',
      path: '/trips/31/vendor',
      headers: { 'Content-Type': 'application/json' },
      multiValueHeaders: {},
      body: encoded,
      isBase64Encoded: true,
    });
    assert.equal(viaRest.statusCode, 200);
    assert.equal(body(viaRest).vendor_id, '2');
    const viaHttp = await handle({
      ...v2,
      rawPath: '/trips/32/vendor',
      headers: { 'content-type': 'application/json' },
      requestContext: { ...v2.requestContext, http: { ...v2.requestContext.http, method: 'POST' } },
      body: encoded,
      isBase64Encoded: true,
    });
    assert.equal(viaHttp.statusCode, 200);
    assert.equal(body(viaHttp).vendor_id, '2');
    // Not mistaken for base64 when the flag is off: the raw text is the JSON.
    const plain = await handle({
      ...restV1,
      httpMethod: 'POST',
      path: '/trips/31/vendor',
      headers: { 'Content-Type': 'application/json' },
      multiValueHeaders: {},
      body: '{"vendor_id":"1"}',
    });
    assert.equal(body(plain).vendor_id, '1');
  });

  test('an oversized base64 body is a 413 problem', async () => {
    const big = Buffer.from(JSON.stringify({ vendor_id: 'x'.repeat(100_000) })).toString('base64');
    const result = await handler()({
      ...v2,
      rawPath: '/trips/31/vendor',
      headers: { 'content-type': 'application/json' },
      requestContext: { ...v2.requestContext, http: { ...v2.requestContext.http, method: 'POST' } },
      body: big,
      isBase64Encoded: true,
    });
    assert.equal(result.statusCode, 413);
    assert.equal(body(result).field, 'body');
  });

  test('multi-value query strings: a repeated parameter is a 400 naming it, in both payload versions', async () => {
    const handle = handler();
    // Payload 1.0 keeps only the last value in the single map; the multi-value map has them all.
    const rest = await handle({
      ...restV1,
      path: '/trips/pages',
      queryStringParameters: { page: '2', page_size: '5' },
      multiValueQueryStringParameters: { page: ['1', '2'], page_size: ['5'] },
    });
    assert.equal(rest.statusCode, 400);
    assert.equal(body(rest).field, 'page');
    // Payload 2.0 joins repeats with commas in queryStringParameters; the raw query string is what counts.
    const http = await handle({ ...v2, rawPath: '/trips/pages', rawQueryString: 'page=1&page=2', queryStringParameters: { page: '1,2' } });
    assert.equal(http.statusCode, 400);
    assert.equal(body(http).field, 'page');
    const single = await handle({
      ...restV1,
      path: '/trips/pages',
      queryStringParameters: { page: '2', page_size: '5' },
      multiValueQueryStringParameters: null,
    });
    assert.equal(single.statusCode, 200);
    assert.deepEqual(body(single).pagination, { page: 2, page_size: 5, total_pages: 40, total_count: 200, has_next: true, has_previous: true });
    // Encoded values survive the trip through the maps.
    const encoded = await handle({
      ...restV1,
      path: '/trips/pages',
      queryStringParameters: null,
      multiValueQueryStringParameters: { page: ['1&page_size=1'] },
    });
    assert.equal(encoded.statusCode, 400);
    assert.equal(body(encoded).field, 'page');
  });

  test('a named stage in front of an HTTP API path is removed, and only there', async () => {
    const handle = handler();
    const prod = { ...v2.requestContext, stage: 'prod' };
    assert.equal(body(await handle({ ...v2, rawPath: '/prod/trips/31', requestContext: prod })).id, 31);
    assert.equal((await handle({ ...v2, rawPath: '/prod', requestContext: prod })).statusCode, 200, 'the stage root is the API root');
    assert.equal(body(await handle({ ...v2, rawPath: '/prod', requestContext: prod })).name, 'Lakebase API');
    assert.equal(body(await handle({ ...httpV1, path: '/prod/trips/33', requestContext: { ...httpV1.requestContext, stage: 'prod' } })).id, 33);
    // A REST API's path never has the stage: a stage named like a route must not eat the path.
    const trips = await handle({ ...restV1, path: '/trips/count', requestContext: { ...restV1.requestContext, stage: 'trips' } });
    assert.equal(body(trips).total_trips, 200);
  });

  test('basePath removes a custom domain mapping or a proxy resource below the root', async () => {
    const handle = createLambdaHandler(apiService, async () => service.ctx, { basePath: '/trips-api/' });
    assert.equal(body(await handle({ ...restV1, path: '/trips-api/trips/34' })).id, 34);
    assert.equal(body(await handle({ ...restV1, path: '/trips-api' })).name, 'Lakebase API');
    assert.equal((await handle({ ...restV1, path: '/trips-apix/trips/34' })).statusCode, 404, 'only a whole segment is a prefix');
  });

  test('decoded path characters (HTTP APIs decode the path) are routed as path, never as query or a 500', async () => {
    const handle = handler();
    const question = await handle({ ...v2, rawPath: '/trips/4?2' });
    assert.equal(question.statusCode, 400);
    assert.equal(body(question).field, 'trip_id');
    const percent = await handle({ ...v2, rawPath: '/trips/100%' });
    assert.equal(percent.statusCode, 400);
    assert.equal(body(percent).field, 'trip_id');
    assert.equal((await handle({ ...v2, rawPath: '/trips/ünï côdé' })).statusCode, 400);
    // An encoded path (REST API) is passed on unchanged, not encoded twice.
    assert.equal(body(await handle({ ...restV1, path: '/trips/%34%32' })).id, 42);
  });

  test('headers: lower-cased, multi-value ones joined, cookies moved back into a Cookie header', () => {
    const limits = { maxBodyBytes: 1024 };
    const fromRest = toNeutralRequest(
      {
        ...restV1,
        headers: { Accept: 'text/plain', Cookie: 'b=2' },
        multiValueHeaders: { Accept: ['application/json', 'text/plain'], Cookie: ['a=1', 'b=2'] },
      },
      limits,
    );
    assert.equal(fromRest.headers.accept, 'application/json, text/plain');
    assert.equal(fromRest.headers.cookie, 'a=1; b=2');
    assert.equal(toNeutralRequest(v2, limits).headers.cookie, 'session=abc');
    assert.equal(toNeutralRequest(httpV1, limits).headers['x-forwarded-proto'], 'https');
  });

  test("the client address is API Gateway's sourceIp, in both payload versions", () => {
    const limits = { maxBodyBytes: 1024 };
    assert.equal(toNeutralRequest(v2, limits).remoteAddress, v2.requestContext.http.sourceIp);
    assert.equal(toNeutralRequest(restV1, limits).remoteAddress, restV1.requestContext.identity.sourceIp);
    assert.ok(toNeutralRequest(v2, limits).remoteAddress);
  });

  test('text answers go as text, binary ones (the docs favicon) base64-encoded', async () => {
    const handle = handler();
    const icon = await handle({ ...v2, rawPath: '/docs/favicon-32x32.png' });
    assert.equal(icon.statusCode, 200);
    assert.equal(icon.isBase64Encoded, true);
    assert.deepEqual([...Buffer.from(icon.body, 'base64').subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]); // \x89PNG
    const script = await handle({ ...v2, rawPath: '/docs/init.js' });
    assert.equal(script.isBase64Encoded, false);
    assert.match(script.body, /SwaggerUIBundle/);
    const head = await handle({ ...v2, requestContext: { ...v2.requestContext, http: { ...v2.requestContext.http, method: 'HEAD' } } });
    assert.equal(head.statusCode, 200);
    assert.equal(head.body, '');
  });
});

describe('the context per container', () => {
  test('is created once across many invocations, including those that arrive during the cold start', async () => {
    let created = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const handle = createLambdaHandler(apiService, async () => {
      created++;
      await gate; // every invocation below arrives while this cold start is still under way
      return service.ctx;
    });
    const during = Array.from({ length: 10 }, () => handle(v2));
    release();
    for (const result of await Promise.all(during)) assert.equal(result.statusCode, 200);
    for (let i = 0; i < 10; i++) assert.equal((await handle(i % 2 ? restV1 : httpV1)).statusCode, 200);
    assert.equal(created, 1, 'one context for 20 invocations');
  });

  test('an unreachable database at cold start answers 503 with Retry-After, and the next invocation tries again', async () => {
    let created = 0;
    const logs = captureLogs();
    const handle = createLambdaHandler(
      apiService,
      async (): Promise<Context> => {
        created++;
        if (created > 1) return service.ctx;
        // A real cold start against a port where nothing listens: the pool's warm-up fails.
        return createContext({
          config: loadConfig({ DB_POOL_SIZE: '1', DB_POOL_TIMEOUT: '2' }),
          logger: logs.logger,
          version: APP_VERSION,
          target: { ...embeddedTarget(database.server, async () => undefined), port: 1 },
        });
      },
      { logger: logs.logger },
    );
    const failed = await handle({ ...v2, headers: { ...v2.headers, 'x-request-id': 'cold-1' } });
    assert.equal(failed.statusCode, 503);
    assert.equal(failed.headers?.['retry-after'], '5');
    assert.equal(failed.headers?.['content-type'], 'application/problem+json; charset=utf-8');
    assert.equal(failed.headers?.['x-request-id'], 'cold-1');
    assert.match(String(failed.headers?.['x-process-time']), /^\d+\.\d{2}$/);
    const problem = body(failed);
    assert.equal(problem.status, 503);
    assert.equal(problem.request_id, 'cold-1');
    assert.doesNotMatch(failed.body, /ECONNREFUSED|127\.0\.0\.1/);
    assert.ok(
      logs.lines.some((line) => line.includes('Cold start failed') && line.includes('ECONNREFUSED')),
      'the cause is in the log',
    );

    assert.equal((await handle(v2)).statusCode, 200);
    assert.equal((await handle(restV1)).statusCode, 200);
    assert.equal(created, 2, 'one failed cold start, then one context');
  });

  test('a configuration error fails the invocation loudly, and is retried too', async () => {
    let created = 0;
    const handle = createLambdaHandler(apiService, async () => {
      created++;
      if (created === 1) loadConfig({ DB_POOL_SIZE: 'many' });
      return service.ctx;
    });
    await assert.rejects(handle(v2), (err: unknown) => err instanceof ConfigError && /DB_POOL_SIZE/.test(err.message));
    assert.equal((await handle(v2)).statusCode, 200);
    assert.equal(created, 2);
  });

  test('close() closes the context the container built', async () => {
    const ctx = await createContext({
      config: loadConfig({ DB_POOL_SIZE: '1' }),
      logger: captureLogs().logger,
      version: APP_VERSION,
      target: embeddedTarget(database.server, async () => undefined),
    });
    const handle = createLambdaHandler(apiService, async () => ctx);
    assert.equal((await handle(v2)).statusCode, 200);
    await handle.close();
    assert.equal(ctx.pool.ended, true);
    await handle.close(); // idempotent, and fine before any invocation
    await createLambdaHandler(apiService, async () => ctx).close();
  });
});
