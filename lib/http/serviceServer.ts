import type { Server } from 'node:http';
import { createExpressApp } from './adapters/express.ts';
import { createHttp2StreamHandler } from './adapters/http2.ts';
import type { Config } from '../ground/config.ts';
import { acceptH2c } from './dualProtocolServer.ts';
import { createHttpServer } from './httpServer.ts';
import type { Router } from './router.ts';

/**
 * The server `npm start` listens with: HTTP/1.1 through the Express adapter and h2c (HTTP/2
 * streams straight into the same router) on one port, behind lib/http/httpServer.ts's error answers.
 * Built here so server.ts and the benchmark (bench/servers/service.ts) run the very same thing.
 */
export function createServiceServer(router: Router, config: Pick<Config, 'maxBodyBytes' | 'maxHeaderBytes'>): Server {
  const app = createExpressApp(router, { maxBodyBytes: config.maxBodyBytes });
  return acceptH2c(createHttpServer(app, { maxHeaderBytes: config.maxHeaderBytes }), createHttp2StreamHandler(router, { maxBodyBytes: config.maxBodyBytes }), {
    maxHeaderBytes: config.maxHeaderBytes,
  });
}
