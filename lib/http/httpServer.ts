import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ApiError, HeaderFieldsTooLarge } from '../errors.ts';
import { SECURITY_HEADERS } from './securityHeaders.ts';

export interface HttpServerOptions {
  /** Largest request line plus headers node parses (`maxHeaderSize`); beyond it, 431. */
  maxHeaderBytes: number;
}

/** What node's parser reports, mapped as its default handler does, but with a problem body. */
function problemFor(err: Error & { code?: string }, maxHeaderBytes: number): ApiError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new HeaderFieldsTooLarge(maxHeaderBytes);
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new ApiError(413, 'Payload Too Large', 'The chunk extensions are too large');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new ApiError(408, 'Request Timeout', 'The request was not received in time');
    default:
      return new ApiError(400, 'Bad Request', 'The request is not valid HTTP/1.1');
  }
}

function problemHeaders(body: string): Record<string, string> {
  return {
    'content-type': 'application/problem+json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
    ...SECURITY_HEADERS,
    connection: 'close',
  };
}

/** Answers on a bare socket (no request object exists yet) and closes it. */
function answerOnSocket(socket: Duplex, problem: ApiError): void {
  const body = JSON.stringify(problem.toProblem());
  const head = Object.entries({ ...problemHeaders(body), ...problem.headers })
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.end(`HTTP/1.1 ${problem.status} ${problem.title}\r\n${head}\r\n${body}`);
}

function answer(res: ServerResponse, problem: ApiError): void {
  const body = JSON.stringify(problem.toProblem());
  res.writeHead(problem.status, problemHeaders(body)).end(body);
}

/**
 * The node HTTP server every long-running adapter listens with. Some requests never reach the
 * router because node answers them itself, with an empty body: HTTP it cannot parse (an unknown
 * method, a bad request line, headers past `maxHeaderBytes`), CONNECT, an Expect it does not know,
 * an HTTP/1.1 request without Host. Those are answered here as problems like every other error.
 */
export function createHttpServer(listener: RequestListener, options: HttpServerOptions): Server {
  /**
   * The request each connection is answering (or last answered), so bytes arriving after it cannot
   * cut its answer off. No listener per request to forget it (that cost every request measurably):
   * an answered one is recognised by its finished response.
   */
  const latest = new WeakMap<object, { req: IncomingMessage; res: ServerResponse }>();
  const server = createServer({ maxHeaderSize: options.maxHeaderBytes, requireHostHeader: false }, (req, res) => {
    latest.set(req.socket, { req, res });
    // RFC 9112 §3.2: a server must answer 400 to an HTTP/1.1 request without a Host header.
    if (req.httpVersion === '1.1' && req.headers.host === undefined) {
      answer(res, new ApiError(400, 'Bad Request', 'An HTTP/1.1 request needs a Host header'));
      return;
    }
    listener(req, res);
  });
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const last = latest.get(socket);
    const pending = last && !last.res.writableFinished ? last : undefined;
    // Garbage after a complete request (a body longer than its Content-Length): finish answering
    // that request, then close; node's default would cut its answer off.
    if (pending?.req.complete && !pending.res.writableFinished) {
      if (!pending.res.headersSent) pending.res.setHeader('connection', 'close');
      pending.res.once('finish', () => socket.end());
      return;
    }
    // Nothing more to say once an answer has started on this connection.
    if (pending?.res.headersSent) {
      socket.destroy();
      return;
    }
    answerOnSocket(socket, problemFor(err, options.maxHeaderBytes));
  });
  // Without these listeners node closes a CONNECT without a word, and answers an unknown Expect with an empty 417.
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => undefined);
    answerOnSocket(
      socket,
      new ApiError(405, 'Method Not Allowed', `${req.method} is not allowed here: this is not a proxy`, { headers: { allow: 'GET, HEAD, POST, OPTIONS' } }),
    );
  });
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    answer(res, new ApiError(417, 'Expectation Failed', `Expect: ${String(req.headers.expect).slice(0, 100)} is not supported`));
  });
  return server;
}
