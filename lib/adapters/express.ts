import express, { type Express, type Request, type Response } from 'express';
import type { Router } from '../router.ts';
import { NodeNeutralRequest, readBody, uploadTooLarge, writeResponse } from './nodeMessages.ts';

/** Express as a thin adapter: every request goes to the shared router, which owns all the rules. */
export function createExpressApp(router: Router, options: { maxBodyBytes: number }): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag'); // the router decides about ETags, not Express
  app.set('query parser', false); // the router parses the query string itself

  app.use(async (req: Request, res: Response) => {
    let body: Buffer | undefined;
    try {
      body = await readBody(req, options.maxBodyBytes);
    } catch {
      res.destroy();
      return;
    }
    const response = await router.handle(new NodeNeutralRequest(req.method, req.originalUrl, req, body, res));
    if (res.headersSent || res.destroyed) return;
    // Don't drain a huge upload: close the connection after the answer.
    writeResponse(res, response, uploadTooLarge(req, body, options.maxBodyBytes));
  });
  return app;
}
