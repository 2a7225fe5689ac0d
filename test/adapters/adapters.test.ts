import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2 } from 'aws-lambda';
import { readFileSync } from 'node:fs';
import { createLambdaHandler } from '../../lib/adapters/lambda.ts';
import type { Context } from '../../lib/context.ts';
import { ContractChecker } from '../support/contract.ts';
import { startTestDatabase, startTestService, type TestDatabase, type TestService } from '../support/testService.ts';
import {
  expressTransport, fetchTransport, lambdaV1Transport, lambdaV2Transport, type Exchange, type SendOptions, type Transport,
} from '../support/transports.ts';

/**
 * One behaviour suite, run through every runtime adapter: the same request must give the same
 * status, body and headers in Express, a fetch host and both Lambda payload versions.
 */
const COMPARED_HEADERS = ['content-type', 'etag', 'cache-control', 'x-cache', 'retry-after', 'allow', 'location', 'content-security-policy', 'x-content-type-options'];
const makers = [expressTransport, fetchTransport, lambdaV2Transport, lambdaV1Transport];

let database: TestDatabase;
const services: TestService[] = [];
let transports: Transport[];
let contract: ContractChecker;

before(async () => {
  database = await startTestDatabase(500);
  transports = [];
  for (const make of makers) {
    // Each runtime gets its own context (and so its own cache), as separate deployments would.
    const service = await startTestService({ database });
    services.push(service);
    transports.push(make(service.ctx));
  }
  contract = new ContractChecker(services[0]!.router.document);
});
after(async () => {
  for (const service of services) await service.close();
  await database?.stop();
});

function comparable(exchange: Exchange, volatileBody: boolean): object {
  const headers = Object.fromEntries(COMPARED_HEADERS.filter((h) => exchange.headers[h] !== undefined).map((h) => [h, exchange.headers[h]]));
  let body: unknown = exchange.text;
  if (/json/.test(exchange.headers['content-type'] ?? '') && exchange.text) {
    const parsed = JSON.parse(exchange.text) as Record<string, unknown>;
    delete parsed.request_id; // differs per request by design
    if ('uptime_seconds' in parsed) parsed.uptime_seconds = 'volatile';
    body = volatileBody ? Object.keys(parsed) : parsed;
  }
  return { status: exchange.status, headers, body };
}

/** Sends the same request through every adapter; checks the contract and that all agree. */
async function everywhere(method: string, url: string, options: SendOptions = {}, volatileBody = false): Promise<Exchange> {
  const results: Exchange[] = [];
  for (const transport of transports) {
    const exchange = await transport.send(method, url, options);
    assert.ok(exchange.headers['x-request-id'], `${transport.name}: X-Request-Id`);
    assert.match(exchange.headers['x-process-time'] ?? '', /^\d+\.\d{2}$/, `${transport.name}: X-Process-Time`);
    if (!url.startsWith('/docs')) contract.check(method, url, exchange);
    results.push(exchange);
  }
  const reference = comparable(results[0]!, volatileBody);
  results.slice(1).forEach((exchange, i) => {
    assert.deepEqual(comparable(exchange, volatileBody), reference, `${transports[i + 1]!.name} differs from express for ${method} ${url}`);
  });
  return results[0]!;
}

const json = (body: unknown): SendOptions => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('every operation behaves the same in every runtime', () => {
  test('reads', async () => {
    assert.equal((await everywhere('GET', '/')).status, 200);
    assert.equal((await everywhere('GET', '/health')).status, 200);
    assert.equal((await everywhere('GET', '/trips/count')).text, '{"total_trips":500}');
    assert.equal((await everywhere('GET', '/trips/42')).status, 200);
    assert.equal((await everywhere('GET', '/trips/analytics')).status, 200);
    assert.equal((await everywhere('GET', '/trips/pages?page=2&page_size=3')).status, 200);
    assert.equal((await everywhere('GET', '/trips/pages?page_size=3&page=2&include_count=false')).status, 200);
    assert.equal((await everywhere('GET', '/trips/stream?cursor=10&page_size=2')).status, 200);
    assert.equal((await everywhere('GET', '/trips/sample', {}, true)).status, 200);
    assert.equal((await everywhere('GET', '/openapi.json')).status, 200);
  });

  test('the cache: MISS, HIT, and 304 for a matching If-None-Match', async () => {
    const first = await everywhere('GET', '/trips/stream?cursor=100&page_size=5');
    assert.equal(first.headers['x-cache'], 'MISS');
    const second = await everywhere('GET', '/trips/stream?page_size=5&cursor=100');
    assert.equal(second.headers['x-cache'], 'HIT');
    const notModified = await everywhere('GET', '/trips/stream?cursor=100&page_size=5', { headers: { 'if-none-match': first.headers.etag! } });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.text, '');
  });

  test('errors: 400, 404, 405, 413, 415 and duplicate parameters', async () => {
    const bad = await everywhere('GET', '/trips/abc');
    assert.equal(bad.status, 400);
    assert.equal(JSON.parse(bad.text).field, 'trip_id');
    assert.equal((await everywhere('GET', '/trips/99999')).status, 404);
    assert.equal((await everywhere('GET', '/no/such/route')).status, 404);
    const duplicate = await everywhere('GET', '/trips/pages?page=1&page=2');
    assert.equal(duplicate.status, 400);
    assert.equal(JSON.parse(duplicate.text).field, 'page');
    const wrongMethod = await everywhere('DELETE', '/trips/1');
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.allow, 'GET');
    assert.equal((await everywhere('POST', '/trips/7/vendor', { headers: { 'content-type': 'text/plain' }, body: 'vendor 1' })).status, 415);
    assert.equal((await everywhere('POST', '/trips/7/vendor', json({ vendor_id: 'x'.repeat(20_000) }))).status, 413);
    assert.equal((await everywhere('POST', '/trips/7/vendor', { headers: { 'content-type': 'application/json' }, body: '{"vendor_id":' })).status, 400);
  });

  test('a write followed by a read', async () => {
    for (const vendor of ['1', '2']) {
      const written = await everywhere('POST', '/trips/30/vendor', json({ vendor_id: vendor }));
      assert.equal(written.status, 200);
      assert.equal(JSON.parse(written.text).vendor_id, vendor);
      const read = await everywhere('GET', '/trips/30');
      assert.equal(JSON.parse(read.text).vendor_id, vendor);
    }
  });

  test('a supplied request id is echoed and the docs are served', async () => {
    for (const transport of transports) {
      const res = await transport.send('GET', '/health', { headers: { 'x-request-id': 'req-42' } });
      assert.equal(res.headers['x-request-id'], 'req-42', transport.name);
    }
    assert.equal((await everywhere('GET', '/docs')).status, 308);
    assert.match((await everywhere('GET', '/docs/')).text, /swagger-ui-bundle\.js/);
  });
});

describe('AWS Lambda specifics', () => {
  const v2 = JSON.parse(readFileSync(new URL('./fixtures/apigw-v2-event.json', import.meta.url), 'utf8')) as APIGatewayProxyEventV2;
  const v1 = JSON.parse(readFileSync(new URL('./fixtures/apigw-v1-event.json', import.meta.url), 'utf8')) as APIGatewayProxyEventV2 & APIGatewayProxyEvent;

  test('the sample events from the fixtures are answered as they are', async () => {
    const handler = createLambdaHandler(async () => services[2]!.ctx);
    for (const event of [v2, v1]) {
      const result = await handler(event);
      assert.ok(typeof result === 'object');
      assert.equal(result.statusCode, 200);
      assert.equal(JSON.parse(result.body!).id, 42);
    }
  });

  test('a base64 JSON body (payload 1.0) and a stage prefix (payload 2.0)', async () => {
    const handler = createLambdaHandler(async () => services[3]!.ctx);
    const post = await handler({
      ...v1, httpMethod: 'POST', path: '/trips/31/vendor', headers: { 'Content-Type': 'application/json' }, multiValueHeaders: {},
      body: Buffer.from('{"vendor_id":"2"}').toString('base64'), isBase64Encoded: true,
    });
    assert.ok(typeof post === 'object');
    assert.equal(post.statusCode, 200);
    assert.equal(JSON.parse(post.body!).vendor_id, '2');
    const staged = await handler({ ...v2, rawPath: '/prod/trips/31', requestContext: { ...v2.requestContext, stage: 'prod' } });
    assert.ok(typeof staged === 'object');
    assert.equal(JSON.parse(staged.body!).vendor_id, '2');
  });

  test('the context is created once per container, and a failed cold start is retried', async () => {
    let created = 0;
    let failNext = true;
    const handler = createLambdaHandler(async (): Promise<Context> => {
      created++;
      if (failNext) {
        failNext = false;
        throw new Error('database not reachable yet');
      }
      return services[2]!.ctx;
    });
    await assert.rejects(handler(v2), /not reachable/);
    const results = await Promise.all(Array.from({ length: 10 }, () => handler(v2)));
    for (const result of results) assert.equal(typeof result === 'object' && result.statusCode, 200);
    for (let i = 0; i < 5; i++) await handler(v1);
    assert.equal(created, 2, 'one failed cold start, then one context for 15 invocations');
  });
});
