import { createServer, type RequestListener, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { ApiError, HeaderFieldsTooLarge } from './errors.ts';
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

/**
 * The node HTTP server every long-running adapter listens with. A request that breaks HTTP itself
 * (an unknown method, a bad request line, headers past `maxHeaderBytes`) never reaches the router;
 * node would answer it with an empty body, so it is answered here as a problem like every other
 * error, then the connection is closed (the parser cannot find the next request).
 */
export function createHttpServer(listener: RequestListener, options: HttpServerOptions): Server {
  const server = createServer({ maxHeaderSize: options.maxHeaderBytes }, listener);
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex & { bytesWritten?: number }) => {
    // Nothing to answer on a reset socket, or once a response has started on it.
    if (err.code === 'ECONNRESET' || !socket.writable || (socket.bytesWritten ?? 0) > 0) {
      socket.destroy();
      return;
    }
    const problem = problemFor(err, options.maxHeaderBytes);
    const body = JSON.stringify(problem.toProblem());
    const headers = {
      'content-type': 'application/problem+json; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
      'cache-control': 'no-store',
      ...SECURITY_HEADERS,
      connection: 'close',
    };
    const head = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
    socket.end(`HTTP/1.1 ${problem.status} ${problem.title}\r\n${head}\r\n${body}`);
  });
  return server;
}
