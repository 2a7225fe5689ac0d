import express, { type Express, type Request, type Response } from 'express';
import type { IncomingMessage } from 'node:http';
import type { NeutralRequest } from '../http.ts';
import type { Router } from '../router.ts';

/**
 * Reads the body up to one byte past the limit: the router answers 413 from the length, and a
 * huge upload is never buffered whole. A body declared larger than the limit is not read at all
 * (the router answers 413 from Content-Length): waiting for it would let a client that declares
 * much and sends little hold the request open.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const declared = req.headers['content-length'];
  if (!req.headers['transfer-encoding'] && (declared === undefined || declared === '0')) return Promise.resolve(undefined);
  if (Number(declared) > limit) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > limit) finish();
    };
    const finish = () => {
      req.off('data', onData);
      req.off('end', finish);
      req.off('error', reject);
      resolve(Buffer.concat(chunks));
    };
    req.on('data', onData);
    req.once('end', finish);
    req.once('error', reject);
  });
}

/** Express as a thin adapter: every request goes to the shared router, which owns all the rules. */
export function createExpressApp(router: Router, options: { maxBodyBytes: number }): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag'); // the router decides about ETags, not Express
  app.set('query parser', false); // the router parses the query string itself

  app.use(async (req: Request, res: Response) => {
    const abort = new AbortController();
    res.once('close', () => { if (!res.writableFinished) abort.abort(); });
    let body: Buffer | undefined;
    try {
      body = await readBody(req, options.maxBodyBytes);
    } catch {
      res.destroy();
      return;
    }
    const neutral: NeutralRequest = { method: req.method, url: req.originalUrl, headers: req.headers, body, signal: abort.signal };
    const response = await router.handle(neutral);
    if (res.headersSent || res.destroyed) return;
    res.status(response.status);
    for (const [name, value] of Object.entries(response.headers)) res.setHeader(name, value);
    // Don't drain a huge upload: close the connection after the answer.
    if ((body && body.length > options.maxBodyBytes) || Number(req.headers['content-length']) > options.maxBodyBytes) res.setHeader('connection', 'close');
    res.end(response.body);
  });
  return app;
}
