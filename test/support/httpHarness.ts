import type { RequestListener, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpServer } from '../../lib/httpServer.ts';

export interface RunningHttpServer {
  server: Server;
  port: number;
  baseUrl: string;
  close(): Promise<void>;
}

/** The service behind the same HTTP server `npm start` uses, on a free loopback port. */
export async function listenOnLoopback(listener: RequestListener, options: { maxHeaderBytes: number }): Promise<RunningHttpServer> {
  const server = createHttpServer(listener, options);
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
