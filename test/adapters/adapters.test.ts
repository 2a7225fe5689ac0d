import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../lib/ground/config.ts';
import { createContext } from '../../lib/context.ts';
import type { Context } from '../../lib/http/serviceContext.ts';
import { embeddedTarget } from '../../lib/db/resolveConnectionTarget.ts';
import { APP_VERSION } from '../../lib/version.ts';
import { ContractChecker } from '../support/contract.ts';
import { captureLogs } from '../support/logCapture.ts';
import { startTestDatabase, startTestService, type TestDatabase, type TestService } from '../support/testService.ts';
import {
  expressTransport,
  fetchTransport,
  lambdaV1Transport,
  lambdaV2Transport,
  type Exchange,
  type SendOptions,
  type Transport,
} from '../support/transports.ts';

/**
 * One behaviour suite, run through every runtime adapter: the same request must give the same
 * status, body and headers in Express, a fetch host and both Lambda payload versions, and every
 * answer must match the OpenAPI contract.
 */
const COMPARED_HEADERS = [
  'content-type',
  'etag',
  'cache-control',
  'x-cache',
  'retry-after',
  'allow',
  'location',
  'content-security-policy',
  'x-content-type-options',
];
const makers = [expressTransport, fetchTransport, lambdaV2Transport, lambdaV1Transport];

let database: TestDatabase;
const services: TestService[] = [];
let transports: Transport[];
/** The same adapters over a context whose database cannot be reached. */
let unreachable: { ctx: Context; transports: Transport[] };
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
  const ctx = await createContext({
    config: loadConfig({ DB_POOL_TIMEOUT: '2' }),
    logger: captureLogs().logger,
    version: APP_VERSION,
    warm: false,
    target: { ...embeddedTarget(database.server, async () => undefined), port: 1 }, // nothing listens on port 1
  });
  unreachable = { ctx, transports: makers.map((make) => make(ctx)) };
});
after(async () => {
  await unreachable?.ctx.close();
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

interface EverywhereOptions {
  /** Compare only the body's keys (a random sample). */
  volatileBody?: boolean;
  through?: Transport[];
}

/** Sends the same request through every adapter; checks the contract and that all agree with Express. */
async function everywhere(
  method: string,
  url: string,
  options: SendOptions = {},
  { volatileBody = false, through = transports }: EverywhereOptions = {},
): Promise<Exchange> {
  const results: Exchange[] = [];
  for (const transport of through) {
    const exchange = await transport.send(method, url, options);
    assert.ok(exchange.headers['x-request-id'], `${transport.name}: X-Request-Id`);
    assert.match(exchange.headers['x-process-time'] ?? '', /^\d+\.\d{2}$/, `${transport.name}: X-Process-Time`);
    if (!url.startsWith('/docs')) contract.check(method, url, exchange);
    results.push(exchange);
  }
  const reference = comparable(results[0]!, volatileBody);
  results.slice(1).forEach((exchange, i) => {
    assert.deepEqual(comparable(exchange, volatileBody), reference, `${through[i + 1]!.name} differs from ${through[0]!.name} for ${method} ${url}`);
  });
  return results[0]!;
}

const json = (body: unknown): SendOptions => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const problem = (exchange: Exchange) => JSON.parse(exchange.text) as { status: number; title: string; field?: string; request_id?: string };

describe('every operation behaves the same in every runtime', () => {
  test('reads', async () => {
    assert.equal((await everywhere('GET', '/')).status, 200);
    assert.equal((await everywhere('GET', '/health')).status, 200);
    assert.equal((await everywhere('GET', '/trips/count')).text, '{"total_trips":500}');
    assert.equal(JSON.parse((await everywhere('GET', '/trips/42')).text).id, 42);
    assert.equal((await everywhere('GET', '/trips/analytics')).status, 200);
    assert.equal(JSON.parse((await everywhere('GET', '/trips/pages?page=2&page_size=3')).text).trips.length, 3);
    assert.equal((await everywhere('GET', '/trips/pages?page_size=3&page=2&include_count=false')).status, 200);
    assert.equal(JSON.parse((await everywhere('GET', '/trips/stream?cursor=10&page_size=2')).text).trips[0].id, 11);
    assert.equal((await everywhere('GET', '/trips/sample', {}, { volatileBody: true })).status, 200);
    assert.equal((await everywhere('GET', '/openapi.json')).status, 200);
  });

  test('HEAD answers the headers of GET without a body', async () => {
    const head = await everywhere('HEAD', '/trips/43');
    assert.equal(head.status, 200);
    assert.equal(head.text, '');
    assert.ok(head.headers.etag);
    const get = await everywhere('GET', '/trips/43');
    assert.equal(get.headers.etag, head.headers.etag);
    assert.equal(get.headers['x-cache'], 'HIT', 'HEAD filled the cache like GET');
    const bad = await everywhere('HEAD', '/trips/abc');
    assert.equal(bad.status, 400);
    assert.equal(bad.text, '');
  });

  test('the cache: MISS, HIT, and 304 for a matching If-None-Match', async () => {
    const first = await everywhere('GET', '/trips/stream?cursor=100&page_size=5');
    assert.equal(first.headers['x-cache'], 'MISS');
    assert.equal(first.headers['cache-control'], 'private, max-age=10');
    const second = await everywhere('GET', '/trips/stream?page_size=5&cursor=100');
    assert.equal(second.headers['x-cache'], 'HIT');
    assert.equal(second.headers.etag, first.headers.etag);
    const notModified = await everywhere('GET', '/trips/stream?cursor=100&page_size=5', { headers: { 'if-none-match': first.headers.etag! } });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.text, '');
    assert.equal(notModified.headers.etag, first.headers.etag);
    const changed = await everywhere('GET', '/trips/stream?cursor=100&page_size=5', { headers: { 'if-none-match': '"something-else"' } });
    assert.equal(changed.status, 200);
  });

  test('errors: 400, 404, 405, 413, 415 and duplicate parameters, as problem bodies naming the field', async () => {
    const bad = await everywhere('GET', '/trips/abc');
    assert.equal(bad.status, 400);
    assert.equal(bad.headers['content-type'], 'application/problem+json; charset=utf-8');
    assert.equal(problem(bad).field, 'trip_id');
    assert.equal(problem(await everywhere('GET', '/trips/pages?page_size=100000')).field, 'page_size');
    assert.equal(problem(await everywhere('GET', '/trips/pages?colour=red')).status, 400);
    assert.equal((await everywhere('GET', '/trips/99999')).status, 404);
    assert.equal((await everywhere('GET', '/no/such/route')).status, 404);
    const duplicate = await everywhere('GET', '/trips/pages?page=1&page=2');
    assert.equal(duplicate.status, 400);
    assert.equal(problem(duplicate).field, 'page');
    const wrongMethod = await everywhere('DELETE', '/trips/1');
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.allow, 'GET');
    const unsupported = await everywhere('POST', '/trips/7/vendor', { headers: { 'content-type': 'text/plain' }, body: 'vendor 1' });
    assert.equal(unsupported.status, 415);
    assert.equal(problem(unsupported).field, 'content-type');
    const tooLarge = await everywhere('POST', '/trips/7/vendor', json({ vendor_id: 'x'.repeat(20_000) }));
    assert.equal(tooLarge.status, 413);
    assert.equal(problem(tooLarge).field, 'body');
    assert.equal((await everywhere('POST', '/trips/7/vendor', { headers: { 'content-type': 'application/json' }, body: '{"vendor_id":' })).status, 400);
    assert.equal((await everywhere('POST', '/trips/7/vendor', json({ vendor_id: '1', extra: true }))).status, 400);
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

  test('an unreachable database is a 503 with Retry-After everywhere, without internals', async () => {
    const down = await everywhere('GET', '/trips/7', {}, { through: unreachable.transports });
    assert.equal(down.status, 503);
    assert.equal(down.headers['retry-after'], '5');
    assert.ok(problem(down).request_id, '5xx problems carry the request id');
    assert.doesNotMatch(down.text, /ECONNREFUSED|127\.0\.0\.1/);
    assert.equal((await everywhere('POST', '/trips/7/vendor', json({ vendor_id: '1' }), { through: unreachable.transports })).status, 503);
  });

  test('a supplied request id is echoed and the docs are served', async () => {
    for (const transport of transports) {
      const res = await transport.send('GET', '/health', { headers: { 'x-request-id': 'req-42' } });
      assert.equal(res.headers['x-request-id'], 'req-42', transport.name);
      const invalid = await transport.send('GET', '/health', { headers: { 'x-request-id': 'not valid!' } });
      assert.notEqual(invalid.headers['x-request-id'], 'not valid!', transport.name);
    }
    assert.equal((await everywhere('GET', '/docs')).status, 308);
    assert.match((await everywhere('GET', '/docs/')).text, /swagger-ui-bundle\.js/);
  });
});
