import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { createNodeHttpHandler } from '../../lib/http/adapters/nodeHttp.ts';
import { NodeNeutralRequest } from '../../lib/http/adapters/nodeMessages.ts';
import { ApiClient, type ApiResponse } from '../support/api.ts';
import { startTestService, type TestService } from '../support/testService.ts';

/** The router behind bare node:http answers exactly as it does behind Express. */
let service: TestService;
let viaNode: ApiClient;

before(async () => {
  service = await startTestService({ rows: 500 });
  viaNode = new ApiClient(createNodeHttpHandler(service.router, { maxBodyBytes: service.ctx.config.maxBodyBytes }), service.contract);
});
after(async () => {
  await service?.close();
});

/** What must match between adapters: status, body bytes and the headers the router sets. */
function comparable(res: ApiResponse) {
  // Per request (ids, timings) or per call order (the second call of a cacheable read is a hit).
  const {
    'x-request-id': _id,
    'x-process-time': _time,
    'x-cache': _cache,
    'cache-status': _status,
    age: _age,
    date: _date,
    connection: _c,
    'keep-alive': _k,
    ...headers
  } = res.headers;
  return { status: res.status, text: res.text, headers };
}

for (const [method, url, body] of [
  ['GET', '/trips/7', undefined],
  ['GET', '/trips/count', undefined],
  ['HEAD', '/trips/count', undefined],
  ['GET', '/trips/stream?cursor=10&page_size=3', undefined],
  ['GET', '/trips/abc', undefined],
  ['GET', '/trips/pages?page=0', undefined],
  ['GET', '/nowhere', undefined],
  ['DELETE', '/trips/7', undefined],
  ['POST', '/trips/9/vendor', { vendor_id: '2' }],
  ['POST', '/trips/9/vendor', '{"vendor_id":'],
] as const) {
  test(`${method} ${url} answers the same through node:http and Express`, async () => {
    const viaExpress = await service.api.send(method, url, { body });
    const direct = await viaNode.send(method, url, { body });
    assert.deepEqual(comparable(direct), comparable(viaExpress));
    assert.match(direct.headers['x-request-id']!, /^[0-9a-f-]{36}$/);
  });
}

test('a matching If-None-Match is a 304 without a body through both', async () => {
  const first = await service.api.get('/trips/stream?cursor=0&page_size=2');
  const headers = { 'if-none-match': first.headers.etag! };
  const viaExpress = await service.api.send('GET', '/trips/stream?cursor=0&page_size=2', { headers });
  const direct = await viaNode.send('GET', '/trips/stream?cursor=0&page_size=2', { headers });
  assert.equal(direct.status, 304);
  assert.deepEqual(comparable(direct), comparable(viaExpress));
});

test('a body over the limit is refused with 413 and the connection closed', async () => {
  const res = await viaNode.send('POST', '/trips/9/vendor', { body: JSON.stringify({ vendor_id: 'x'.repeat(service.ctx.config.maxBodyBytes) }) });
  assert.equal(res.status, 413);
  assert.equal(res.headers.connection, 'close');
});

test('HEAD answers with the headers of GET and no body', async () => {
  const res = await viaNode.send('HEAD', '/trips/count');
  assert.equal(res.status, 200);
  assert.equal(res.text, '');
  assert.match(res.headers.etag!, /^"/);
});

/** A server whose handler never answers; the client leaves once the handler has its request. */
async function abandonedRequest(askFirst: boolean): Promise<AbortSignal> {
  let leave: () => void = () => undefined;
  let server: Server | undefined;
  try {
    const signal = new Promise<AbortSignal>((resolve) => {
      server = createServer((req, res) => {
        const neutral = new NodeNeutralRequest(req.method!, req.url!, req, undefined, res);
        if (askFirst) {
          const early = neutral.signal;
          early.addEventListener('abort', () => resolve(early));
        } else {
          res.once('close', () => resolve(neutral.signal)); // asked only after the client left
        }
        leave();
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const client = request({ port: (server!.address() as AddressInfo).port, path: '/trips/1' });
    client.on('error', () => undefined);
    leave = () => client.destroy();
    client.end();
    return await signal;
  } finally {
    server?.closeAllConnections();
    server?.close();
  }
}

test('the abort signal fires when the client goes away', async () => {
  assert.equal((await abandonedRequest(true)).aborted, true);
});

test('the abort signal asked for after the client went away is already aborted', async () => {
  assert.equal((await abandonedRequest(false)).aborted, true);
});

test('the abort signal of an answered request never fires', async () => {
  const neutralSeen = new Promise<NodeNeutralRequest>((resolve) => {
    const server = createServer((req, res) => {
      const neutral = new NodeNeutralRequest(req.method!, req.url!, req, undefined, res);
      res.end('ok', () => {
        resolve(neutral);
        server.close();
      });
    });
    server.listen(0, '127.0.0.1', () => {
      request({ port: (server.address() as AddressInfo).port }, (res) => res.resume()).end();
    });
  });
  const neutral = await neutralSeen;
  assert.equal(neutral.signal.aborted, false);
});
