import express, { type Express } from 'express';
import type { Router } from '../router.ts';
import { createNodeHttpHandler } from './nodeHttp.ts';

/** Express as a thin adapter: every request goes to the shared router, which owns all the rules. */
export function createExpressApp(router: Router, options: { maxBodyBytes: number }): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag'); // the router decides about ETags, not Express
  app.set('query parser', false); // the router parses the query string itself

  // Mounted at the root, Express leaves req.url as received: the node:http handler serves it as is.
  app.use(createNodeHttpHandler(router, options));
  return app;
}
