import type { RequestListener, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttp2StreamHandler } from '../../lib/http/adapters/http2.ts';
import type { Config } from '../../lib/ground/config.ts';
import { acceptH2c } from '../../lib/http/dualProtocolServer.ts';
import { createHttpServer } from '../../lib/http/httpServer.ts';
import type { Router } from '../../lib/http/router.ts';

export interface RunningHttpServer {
  server: Server;
  port: number;
  baseUrl: string;
  close(): Promise<void>;
}

/**
 * The service behind the server `npm start` builds (server.ts): the HTTP/1.1 server of
 * lib/http/httpServer.ts with h2c accepted on the same port, here on a free loopback port.
 */
export async function listenOnLoopback(service: {
  app: RequestListener;
  router: Router;
  ctx: { config: Pick<Config, 'maxHeaderBytes' | 'maxBodyBytes'> };
}): Promise<RunningHttpServer> {
  const { maxHeaderBytes, maxBodyBytes } = service.ctx.config;
  const server = acceptH2c(createHttpServer(service.app, { maxHeaderBytes }), createHttp2StreamHandler(service.router, { maxBodyBytes }), { maxHeaderBytes });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
