import assert from 'node:assert/strict';
import type { RequestListener, Server } from 'node:http';
import http2, { type IncomingHttpHeaders } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { createHttp2StreamHandler, type Http2StreamHandler } from '../../lib/http/adapters/http2.ts';
import { acceptH2c } from '../../lib/http/dualProtocolServer.ts';
import { createHttpServer } from '../../lib/http/httpServer.ts';
import { startTestService, type TestService } from '../support/testService.ts';

/**
 * HTTP/1.1 and h2c with prior knowledge on one port: the Databricks Apps proxy may speak either.
 * Node's own `http2.createServer({ allowHTTP1: true })` cannot do this in cleartext (HTTP/1.1
 * clients fail with HPE_INVALID_CONSTANT), hence the preface sniffing this suite pins down.
 */

interface H2Response {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** One request on an h2c session (prior knowledge: no Upgrade, the preface goes first). */
function h2Request(session: http2.ClientHttp2Session, headers: Record<string, string>, body?: string | Buffer): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'GET', ...headers }, { endStream: body === undefined });
    let status = 0;
    let responseHeaders: IncomingHttpHeaders = {};
    let text = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => {
      responseHeaders = h;
      status = Number(h[':status']);
    });
    stream.on('data', (chunk: string) => {
      text += chunk;
    });
    stream.once('error', reject);
    stream.once('close', () =>
      status ? resolve({ status, headers: responseHeaders, text }) : reject(new Error(`stream closed without a response (rst ${stream.rstCode})`)),
    );
    if (body !== undefined) stream.end(body);
  });
}

function connectH2(port: number): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

/** The server as server.ts builds it: lib/http/httpServer.ts's HTTP/1 server, with h2c accepted too. */
function makeServer(http1: RequestListener, h2: Http2StreamHandler): Server {
  return acceptH2c(createHttpServer(http1, { maxHeaderBytes: 16 * 1024 }), h2, { maxHeaderBytes: 16 * 1024 });
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    }),
  );
}

/**
 * What lib/ops/gracefulShutdown.ts does with the listener, using only http.Server's own methods:
 * close, close idle connections, and after the grace period close all. True when it did not
 * have to force anything.
 */
function shutdown(server: Server, graceMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const force = setTimeout(() => {
      server.closeAllConnections();
      resolve(false);
    }, graceMs);
    server.close(() => {
      clearTimeout(force);
      resolve(true);
    });
    server.closeIdleConnections();
  });
}

function closeSession(session: http2.ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => (session.closed ? resolve() : session.close(() => resolve())));
}

describe('transport: one port, two protocols', { timeout: 30_000 }, () => {
  test('an HTTP/1.1 client and an h2c client reach their own handlers on the same port', async () => {
    const dual = makeServer(
      (req, res) => res.end(`http/${req.httpVersion} ${req.method} ${req.url}`),
      (stream, headers) => {
        stream.respond({ ':status': 200 });
        stream.end(`h2 ${headers[':method']} ${headers[':path']}`);
      },
    );
    const port = await listen(dual);
    try {
      const viaFetch = await fetch(`http://127.0.0.1:${port}/one`);
      assert.equal(await viaFetch.text(), 'http/1.1 GET /one');
      const session = await connectH2(port);
      const [a, b] = await Promise.all([h2Request(session, { ':path': '/two' }), h2Request(session, { ':path': '/three' })]);
      assert.deepEqual([a.text, b.text], ['h2 GET /two', 'h2 GET /three'], 'two concurrent streams on one h2c connection');
      await closeSession(session);
      // A keep-alive HTTP/1.1 connection keeps working after the h2c one.
      const again = await fetch(`http://127.0.0.1:${port}/four`, { method: 'POST', body: 'x'.repeat(100_000) });
      assert.equal(await again.text(), 'http/1.1 POST /four');
    } finally {
      assert.equal(await shutdown(dual, 5_000), true);
    }
  });

  test('shutdown lets in-flight requests on both protocols finish, refuses new connections, and resolves', async () => {
    const release: Array<() => void> = [];
    const started: string[] = [];
    let onStarted: () => void = () => undefined;
    const dual = makeServer(
      (_req, res) => {
        started.push('h1');
        onStarted();
        release.push(() => res.end('h1 done'));
      },
      (stream) => {
        started.push('h2');
        onStarted();
        release.push(() => {
          stream.respond({ ':status': 200 });
          stream.end('h2 done');
        });
      },
    );
    const port = await listen(dual);
    const bothStarted = new Promise<void>((resolve) => {
      onStarted = () => {
        if (started.length === 2) resolve();
      };
    });
    const h1 = fetch(`http://127.0.0.1:${port}/slow`);
    const session = await connectH2(port);
    const h2 = h2Request(session, { ':path': '/slow' });
    await bothStarted;

    const closing = shutdown(dual, 10_000);
    // New connections are refused once shutdown has begun.
    await assert.rejects(fetch(`http://127.0.0.1:${port}/late`));
    for (const finish of release) finish();
    const [r1, r2] = await Promise.all([h1, h2]);
    assert.equal(await r1.text(), 'h1 done');
    assert.equal(r1.headers.get('connection'), 'close', 'the HTTP/1 client is told not to reuse the connection');
    assert.equal(r2.text, 'h2 done');
    assert.equal(await closing, true, 'everything finished within the grace period');
    await closeSession(session);
  });

  test('a connection that never finishes its request is closed when the grace period ends', async () => {
    let arrived: () => void = () => undefined;
    const inHandler = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const dual = makeServer(
      () => arrived(),
      () => undefined,
    );
    const port = await listen(dual);
    const stuck = fetch(`http://127.0.0.1:${port}/never`).catch((err: unknown) => err);
    await inHandler;
    const started = Date.now();
    assert.equal(await shutdown(dual, 300), false, 'reports that it had to close connections');
    assert.ok(Date.now() - started < 5_000);
    assert.ok((await stuck) instanceof Error, 'the stuck client sees its connection closed');
  });
});

describe('h2c through the shared router', { timeout: 60_000 }, () => {
  let service: TestService;
  let dual: Server;
  let port: number;
  let session: http2.ClientHttp2Session;

  before(async () => {
    service = await startTestService({ rows: 500 });
    dual = makeServer(service.app, createHttp2StreamHandler(service.router, { maxBodyBytes: service.ctx.config.maxBodyBytes }));
    port = await listen(dual);
    session = await connectH2(port);
  });
  after(async () => {
    await closeSession(session);
    await shutdown(dual, 5_000);
    await service.close();
  });

  /** An h2c request whose response is checked against the OpenAPI contract, like every ApiClient response. */
  async function h2(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<H2Response> {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const response = await h2Request(
      session,
      { ':method': method, ':path': path, ...(payload === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      payload,
    );
    const plain: Record<string, string | string[] | undefined> = {};
    for (const [name, value] of Object.entries(response.headers)) if (!name.startsWith(':')) plain[name] = value;
    service.contract.check(method, path, { status: response.status, headers: plain, text: response.text });
    return response;
  }

  test('answers exactly as over HTTP/1.1', async () => {
    const overH1 = await fetch(`http://127.0.0.1:${port}/trips/count`);
    const overH2 = await h2('GET', '/trips/count');
    assert.equal(overH2.status, 200);
    assert.deepEqual(JSON.parse(overH2.text), await overH1.json());
    assert.deepEqual(JSON.parse(overH2.text), { total_trips: 500 });
    assert.match(String(overH2.headers['x-request-id']), /\S/);
    assert.equal(overH2.headers['content-type'], 'application/json; charset=utf-8');

    const trip = await h2('GET', '/trips/123');
    assert.equal(trip.status, 200);
    assert.equal(JSON.parse(trip.text).id, 123);
  });

  test('writes, bad input, unknown routes, HEAD and conditional requests', async () => {
    const written = await h2('POST', '/trips/7/vendor', { vendor_id: '2' });
    assert.equal(written.status, 200);
    assert.equal(JSON.parse(written.text).vendor_id, '2');

    const bad = await h2('GET', '/trips/abc');
    assert.equal(bad.status, 400);
    assert.equal(bad.headers['content-type'], 'application/problem+json; charset=utf-8');
    assert.equal(JSON.parse(bad.text).field, 'trip_id');

    assert.equal((await h2('GET', '/no/such/route')).status, 404);

    const head = await h2Request(session, { ':method': 'HEAD', ':path': '/trips/7' });
    assert.equal(head.status, 200);
    assert.equal(head.text, '');

    const first = await h2('GET', '/trips/8');
    const etag = String(first.headers.etag);
    assert.equal((await h2Request(session, { ':path': '/trips/8', 'if-none-match': etag })).status, 304);
  });

  test('a body over MAX_BODY_BYTES gets 413 and the session stays usable', async () => {
    const huge = JSON.stringify({ vendor_id: 'x'.repeat(service.ctx.config.maxBodyBytes) });
    const tooLarge = await h2('POST', '/trips/7/vendor', huge);
    assert.equal(tooLarge.status, 413);
    assert.equal((await h2('GET', '/trips/count')).status, 200);

    // Declared too large: answered at once, without waiting for a body that may never come.
    const declared = session.request(
      { ':method': 'POST', ':path': '/trips/7/vendor', 'content-type': 'application/json', 'content-length': '99999999' },
      { endStream: false },
    );
    declared.write('{');
    const status = await new Promise<number>((resolve, reject) => {
      declared.once('response', (h) => resolve(Number(h[':status'])));
      declared.once('error', reject);
    });
    // Read the 413 problem to its end before giving up on the upload. A client that resets the
    // stream with the response unread leaves it undestroyed on Node 24 (its readable side waits to
    // be consumed), and then session.close() never completes: the server's side closes either way.
    const problem = await new Promise<string>((resolve, reject) => {
      let text = '';
      declared
        .setEncoding('utf8')
        .on('data', (chunk: string) => {
          text += chunk;
        })
        .once('end', () => resolve(text))
        .once('error', reject);
    });
    declared.close();
    assert.equal(status, 413);
    assert.equal(JSON.parse(problem).status, 413);
    assert.equal((await h2('GET', '/trips/count')).status, 200);
  });

  test('the docs are served over h2c too', async () => {
    const docs = await h2Request(session, { ':path': '/docs/' });
    assert.equal(docs.status, 200);
    assert.match(docs.text, /swagger-ui/);
  });
});
