import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { NeutralRequest, NeutralResponse } from '../http.ts';
import type { Router } from '../router.ts';
import { readBody } from './express.ts';

/**
 * Writes a neutral response in one `writeHead`: one header object handed over at once, rather
 * than a validated `setHeader` call per header. The length is set here because `writeHead`
 * commits the headers before `end` could compute it (it would fall back to chunked encoding).
 */
export function writeResponse(res: ServerResponse, response: NeutralResponse, closeConnection = false): void {
  const { headers, body } = response;
  if (body !== undefined && headers['content-length'] === undefined) {
    headers['content-length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.length);
  }
  if (closeConnection) headers.connection = 'close';
  res.writeHead(response.status, headers);
  res.end(body);
}

/**
 * The router behind bare `node:http`, without Express: same rules, same bytes. It exists so the
 * benchmark can show what Express itself costs, and for hosts that want no framework at all.
 */
export function createNodeHttpHandler(router: Router, options: { maxBodyBytes: number }): RequestListener {
  return async (req: IncomingMessage, res: ServerResponse) => {
    const abort = new AbortController();
    res.once('close', () => { if (!res.writableFinished) abort.abort(); });
    let body: Buffer | undefined;
    try {
      body = await readBody(req, options.maxBodyBytes);
    } catch {
      res.destroy();
      return;
    }
    const neutral: NeutralRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body, signal: abort.signal };
    const response = await router.handle(neutral);
    if (res.headersSent || res.destroyed) return;
    // Don't drain a huge upload.
    writeResponse(res, response, body !== undefined && body.length > options.maxBodyBytes);
  };
}
