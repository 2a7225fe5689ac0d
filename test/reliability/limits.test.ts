import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { createFetchHandler } from '../../lib/http/adapters/fetch.ts';
import { createLambdaHandler } from '../../lib/http/adapters/lambda.ts';
import { MAX_SAFE_ID } from '../../openapi/document.ts';
import { reportFigures } from '../support/figures.ts';
import { listenOnLoopback, type RunningHttpServer } from '../support/httpHarness.ts';
import { rawRequest, sendRaw, type RawResponse } from '../support/rawHttp.ts';
import { credentialsToSend, SecretScanner } from '../support/secretScan.ts';
import { startTestDatabase, startTestService, type TestDatabase, type TestService } from '../support/testService.ts';
import { apiService } from '../../functions/index.ts';

/**
 * The limits a caller meets, each at its edge: body, header and URL size; page_size, page, cursor
 * and id bounds; the security headers on every kind of answer; CORS off by default and exact when
 * configured, the same in every adapter.
 */
let database: TestDatabase;
let service: TestService;
let http: RunningHttpServer;
const sent = credentialsToSend();
const seen: Array<{ where: string; headers: Record<string, string>; body: string }> = [];

before(async () => {
  database = await startTestDatabase(2000);
  service = await startTestService({ database });
  http = await listenOnLoopback(service);
});
after(async () => {
  await http?.close();
  await service?.close();
  await database?.stop();
});

/** Sends over a real socket, with the credentials a Databricks App request carries, and keeps the answer for the secret scan. */
async function send(method: string, target: string, headers: Record<string, string> = {}, body?: string): Promise<RawResponse> {
  const res = await sendRaw(http.port, rawRequest(method, target, { ...sent.headers, ...headers }, body), 10_000);
  seen.push({ where: `${method} ${target.slice(0, 80)}`, headers: res.headers, body: res.body });
  return res;
}

function assertProblem(res: RawResponse, status: number, field?: string): Record<string, unknown> {
  assert.equal(res.status, status, res.body.slice(0, 300));
  assert.match(res.headers['content-type'] ?? '', /^application\/problem\+json/);
  const problem = JSON.parse(res.body) as Record<string, unknown>;
  assert.equal(problem.status, status);
  if (field !== undefined) assert.equal(problem.field, field);
  return problem;
}

describe('size caps', () => {
  test('a body of exactly MAX_BODY_BYTES is accepted; one byte more is a 413, declared or chunked, answered at once', async () => {
    const cap = service.ctx.config.maxBodyBytes;
    const json = { 'content-type': 'application/json' };
    const exact = '{"vendor_id":"1"}'.padEnd(cap, ' ');
    assert.equal((await send('POST', '/trips/9/vendor', json, exact)).status, 200);
    const over = assertProblem(await send('POST', '/trips/9/vendor', json, `${exact} `), 413, 'body');
    assert.match(String(over.detail), new RegExp(String(cap)));
    const chunked = await send(
      'POST',
      '/trips/9/vendor',
      { ...json, 'transfer-encoding': 'chunked' },
      `${(cap * 4).toString(16)}\r\n${'x'.repeat(cap * 4)}\r\n0\r\n\r\n`,
    );
    assertProblem(chunked, 413, 'body');
    // Declares far more than it sends: refused from the header, without waiting for the body.
    const lying = await send('POST', '/trips/9/vendor', { ...json, 'content-length': String(cap * 100) }, '{"vendor_id":"1"}');
    assertProblem(lying, 413, 'body');
    assert.ok(lying.ms < 2000, `answered in ${lying.ms.toFixed(0)} ms`);
    assert.equal(lying.headers.connection, 'close', 'the rest of the upload is not read');
    reportFigures('body cap', {
      max_body_bytes: cap,
      at_cap: 200,
      one_byte_over: over.status as number,
      chunked_4x: chunked.status,
      declared_100x_sent_17_bytes: lying.status,
      declared_answered_in_ms: Math.round(lying.ms),
    });
  });

  test('request line and headers past MAX_HEADER_BYTES: a 431 problem; just under: served', async () => {
    const cap = service.ctx.config.maxHeaderBytes;
    assert.equal((await send('GET', '/trips/1', { 'x-padding': 'a'.repeat(cap - 1024) })).status, 200);
    assertProblem(await send('GET', '/trips/1', { 'x-padding': 'a'.repeat(cap) }), 431);
    assertProblem(await send('GET', `/trips/pages?page=${'0'.repeat(cap)}1`), 431);
    reportFigures('header cap', { max_header_bytes: cap, just_under: 200, header_over: 431, request_line_over: 431 });
  });

  test('a URL of exactly MAX_URL_LENGTH is served; one character more is a 414 problem, in every adapter', async () => {
    const cap = service.ctx.config.maxUrlLength;
    const prefix = '/trips/pages?page_size=1&page=';
    const exact = `${prefix}${'0'.repeat(cap - prefix.length - 1)}1`; // leading zeros: still page 1
    assert.equal(exact.length, cap);
    assert.equal((await send('GET', exact)).status, 200);
    assertProblem(await send('GET', `${exact}0`), 414);

    const fetchHandler = createFetchHandler(apiService, service.ctx);
    assert.equal((await fetchHandler(new Request(`http://api.test${exact}0`))).status, 414);
    const lambda = createLambdaHandler(apiService, async () => service.ctx);
    const event = {
      version: '2.0',
      rawPath: '/trips/pages',
      rawQueryString: `${exact.split('?')[1]}0`,
      headers: {},
      isBase64Encoded: false,
      requestContext: { http: { method: 'GET' }, stage: '$default' },
    } as unknown as APIGatewayProxyEventV2;
    assert.equal(((await lambda(event)) as { statusCode: number }).statusCode, 414);
    reportFigures('URL cap', { max_url_length: cap, at_cap: 200, one_over_express: 414, one_over_fetch: 414, one_over_lambda: 414 });
  });
});

describe('parameter bounds', () => {
  const cases: Array<[string, number, string?]> = [
    ['/trips/pages?page_size=0', 400, 'page_size'],
    ['/trips/pages?page_size=-1', 400, 'page_size'],
    ['/trips/pages?page_size=1001', 400, 'page_size'],
    ['/trips/pages?page_size=1', 200],
    ['/trips/pages?page_size=1000&include_count=false', 200],
    ['/trips/pages?page=0', 400, 'page'],
    ['/trips/pages?page=10000000&page_size=1000', 200],
    ['/trips/pages?page=10000001', 400, 'page'],
    ['/trips/stream?cursor=-1', 400, 'cursor'],
    ['/trips/stream?page_size=1001', 400, 'page_size'],
    [`/trips/stream?cursor=${MAX_SAFE_ID}`, 200],
    [`/trips/stream?cursor=${MAX_SAFE_ID + 2}`, 400, 'cursor'],
    ['/trips/stream?cursor=1e3', 400, 'cursor'],
    ['/trips/0', 400, 'trip_id'],
    [`/trips/${MAX_SAFE_ID}`, 404],
    [`/trips/${MAX_SAFE_ID + 2}`, 400, 'trip_id'],
  ];
  for (const [url, status, field] of cases) {
    test(`${url} → ${status}${field ? ` naming ${field}` : ''}`, async () => {
      const res = await service.api.get(url);
      assert.equal(res.status, status, res.text.slice(0, 200));
      if (field) assert.equal(res.body.field, field);
      if (url.includes('page=10000000') || url.includes(`cursor=${MAX_SAFE_ID}`))
        assert.deepEqual(res.body.trips, [], 'past the end: an empty page, not an error');
    });
  }
});

describe('security headers', () => {
  test('every kind of answer carries them, none says X-Powered-By or Server', async () => {
    const etag = (await send('GET', '/trips/2')).headers.etag!;
    const answers: Array<[string, RawResponse]> = [
      ['200 JSON', await send('GET', '/trips/2')],
      ['304', await send('GET', '/trips/2', { 'if-none-match': etag })],
      ['HEAD', await send('HEAD', '/trips/2')],
      ['400', await send('GET', '/trips/abc')],
      ['404', await send('GET', '/nope')],
      ['405', await send('DELETE', '/trips/2')],
      ['413', await send('POST', '/trips/2/vendor', { 'content-type': 'application/json' }, 'x'.repeat(service.ctx.config.maxBodyBytes + 1))],
      ['414', await send('GET', `/trips/2?${'a'.repeat(service.ctx.config.maxUrlLength)}`)],
      ['415', await send('POST', '/trips/2/vendor', { 'content-type': 'text/plain' }, '{"vendor_id":"1"}')],
      ['431 (node parser)', await send('GET', '/trips/2', { 'x-big': 'a'.repeat(service.ctx.config.maxHeaderBytes) })],
      ['400 (node parser)', await sendRaw(http.port, 'GET /trips/2 HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n')],
      ['204 OPTIONS', await send('OPTIONS', '/trips/2')],
      ['/openapi.json', await send('GET', '/openapi.json')],
      ['/docs redirect', await send('GET', '/docs')],
      ['/docs/', await send('GET', '/docs/')],
      ['/docs asset', await send('GET', '/docs/swagger-ui.css')],
    ];
    for (const [what, res] of answers) {
      assert.ok(res.status > 0, `${what}: answered`);
      assert.equal(res.headers['x-content-type-options'], 'nosniff', what);
      assert.equal(res.headers['referrer-policy'], 'no-referrer', what);
      assert.equal(res.headers['x-powered-by'], undefined, what);
      assert.equal(res.headers.server, undefined, what);
      const docsPage = what === '/docs/' || what === '/docs asset';
      assert.equal(res.headers['x-frame-options'], docsPage ? 'SAMEORIGIN' : 'DENY', what);
      if (!docsPage) assert.equal(res.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'", what);
    }
    const csp = answers.find(([w]) => w === '/docs/')![1].headers['content-security-policy']!;
    const directives = new Map(
      csp
        .split(';')
        .map((d) => d.trim().split(/\s+/))
        .map(([name, ...values]) => [name!, values]),
    );
    assert.deepEqual(directives.get('default-src'), ["'self'"]);
    assert.deepEqual(directives.get('script-src'), ["'self'"], 'no inline or eval script on /docs');
    assert.deepEqual(directives.get('object-src'), ["'none'"]);
    assert.deepEqual(directives.get('frame-ancestors'), ["'self'"]);
    assert.deepEqual(directives.get('base-uri'), ["'self'"]);
    assert.ok(!csp.includes('unsafe-eval') && !csp.includes('http:') && !csp.includes('https:') && !csp.includes('*'), csp);
    reportFigures('security headers', { kinds_of_answer_checked: answers.length, docs_csp_directives: directives.size });
  });
});

describe('CORS', () => {
  test('off by default: no Access-Control-* header for any origin, OPTIONS answered with Allow only', async () => {
    const res = await send('GET', '/trips/1', { origin: 'https://app.example.com' });
    assert.equal(res.status, 200);
    assert.deepEqual(
      Object.keys(res.headers).filter((h) => h.startsWith('access-control-')),
      [],
    );
    const preflight = await send('OPTIONS', '/trips/1/vendor', { origin: 'https://app.example.com', 'access-control-request-method': 'POST' });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.allow, 'POST, OPTIONS');
    assert.deepEqual(
      Object.keys(preflight.headers).filter((h) => h.startsWith('access-control-')),
      [],
    );
  });

  test('with CORS_ORIGINS: exact origins echoed, preflight per route, never a wildcard or credentials, the same in every adapter', async () => {
    const cors = await startTestService({ database, env: { CORS_ORIGINS: 'https://app.example.com,http://localhost:3000' } });
    try {
      const fetchHandler = createFetchHandler(apiService, cors.ctx);
      const lambda = createLambdaHandler(apiService, async () => cors.ctx);
      type Answer = { status: number; headers: Record<string, string> };
      const adapters: Record<string, (method: string, path: string, headers: Record<string, string>) => Promise<Answer>> = {
        express: async (method, path, headers) => {
          const res = await cors.api.send(method, path, { headers });
          return { status: res.status, headers: res.headers };
        },
        fetch: async (method, path, headers) => {
          const res = await fetchHandler(new Request(`http://api.test${path}`, { method, headers }));
          return { status: res.status, headers: Object.fromEntries(res.headers) };
        },
        lambda: async (method, path, headers) => {
          const [rawPath, rawQueryString = ''] = path.split('?');
          const event = { version: '2.0', rawPath, rawQueryString, headers, isBase64Encoded: false, requestContext: { http: { method }, stage: '$default' } };
          const res = (await lambda(event as unknown as APIGatewayProxyEventV2)) as { statusCode: number; headers: Record<string, string> };
          return { status: res.statusCode, headers: res.headers };
        },
      };
      for (const [name, call] of Object.entries(adapters)) {
        const allowed = await call('GET', '/trips/1', { origin: 'https://app.example.com' });
        assert.equal(allowed.status, 200, name);
        assert.equal(allowed.headers['access-control-allow-origin'], 'https://app.example.com', name);
        assert.match(allowed.headers.vary!, /Origin/, name);
        assert.match(allowed.headers['access-control-expose-headers']!, /ETag/, name);

        const other = await call('GET', '/trips/1', { origin: 'https://evil.example' });
        assert.equal(other.headers['access-control-allow-origin'], undefined, name);
        assert.match(other.headers.vary!, /Origin/, `${name}: a shared cache must not mix origins`);

        const preflight = await call('OPTIONS', '/trips/1/vendor', {
          origin: 'http://localhost:3000',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type',
        });
        assert.equal(preflight.status, 204, name);
        assert.equal(preflight.headers['access-control-allow-origin'], 'http://localhost:3000', name);
        assert.equal(preflight.headers['access-control-allow-methods'], 'POST', name);
        assert.match(preflight.headers['access-control-allow-headers']!, /Content-Type/, name);
        assert.ok(Number(preflight.headers['access-control-max-age']) > 0, name);

        // A PostgREST client's page: its own Vary stays, Origin joins; its headers may be sent and read.
        const dialect = await call('GET', '/rides?id=lte.3', { origin: 'https://app.example.com', prefer: 'count=exact', range: '0-1' });
        assert.equal(dialect.status, 206, name);
        assert.deepEqual(
          dialect.headers.vary!.split(',').map((entry) => entry.trim()),
          ['Accept', 'Prefer', 'Range', 'Origin'],
          name,
        );
        assert.match(dialect.headers['access-control-expose-headers']!, /Content-Range/, `${name}: postgrest-js reads the count there`);
        const clientPreflight = await call('OPTIONS', '/rides', {
          origin: 'https://app.example.com',
          'access-control-request-method': 'GET',
          'access-control-request-headers': 'prefer, range, accept-profile, apikey, x-client-info',
        });
        assert.equal(clientPreflight.headers['access-control-allow-origin'], 'https://app.example.com', name);
        for (const header of ['Prefer', 'Range', 'Accept-Profile', 'apikey', 'X-Client-Info']) {
          assert.ok(clientPreflight.headers['access-control-allow-headers']!.split(', ').includes(header), `${name}: ${header}`);
        }

        const wrongMethod = await call('OPTIONS', '/trips/1', { origin: 'http://localhost:3000', 'access-control-request-method': 'DELETE' });
        assert.equal(wrongMethod.status, 204, name);
        assert.equal(wrongMethod.headers['access-control-allow-origin'], undefined, `${name}: a method the route lacks is refused`);
        const wrongOrigin = await call('OPTIONS', '/trips/1', { origin: 'https://evil.example', 'access-control-request-method': 'GET' });
        assert.equal(wrongOrigin.headers['access-control-allow-origin'], undefined, name);
        assert.equal((await call('OPTIONS', '/nope', { origin: 'https://app.example.com', 'access-control-request-method': 'GET' })).status, 404, name);

        for (const answer of [allowed, other, preflight, wrongMethod, wrongOrigin]) {
          assert.notEqual(answer.headers['access-control-allow-origin'], '*', name);
          assert.equal(answer.headers['access-control-allow-credentials'], undefined, name);
        }
      }
      reportFigures('CORS', { adapters_checked: Object.keys(adapters).length, wildcard_or_credentials_seen: false });
    } finally {
      await cors.close();
    }
  });
});

test('no credential in any response or log line of this suite', () => {
  const scanner = new SecretScanner({ ...sent.secrets, 'database password': database.server.password });
  for (const answer of seen) scanner.scanResponse(answer.where, answer.headers, answer.body);
  for (const line of service.logs.lines) scanner.scan('log', line);
  assert.ok(scanner.textsScanned > 20);
  assert.deepEqual(scanner.hits, []);
});
