/**
 * The Express adapter's entry point: configuration, start-up, listen, graceful shutdown. All
 * request handling lives in the shared router (lib/router.ts) and the handlers (functions/).
 */
import dotenv from 'dotenv';
import type { Server } from 'node:http';
import { createExpressApp } from './lib/adapters/express.ts';
import { ConfigError, loadConfig } from './lib/config.ts';
import { createHttpServer } from './lib/httpServer.ts';
import { createLogger } from './lib/logger.ts';
import { openContext } from './lib/openContext.ts';
import { createRouter } from './lib/router.ts';

const SHUTDOWN_GRACE_MS = 10_000;

dotenv.config({ quiet: true });

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = createLogger({ level: config.logLevel });
  const ctx = await openContext(config, process.env, logger);
  const router = createRouter(ctx);
  const app = createExpressApp(router, { maxBodyBytes: config.maxBodyBytes });

  const server: Server = createHttpServer(app, { maxHeaderBytes: config.maxHeaderBytes });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info({ host: config.host, port }, `Application startup complete: listening on http://${config.host}:${port} (docs at /docs)`);

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'Shutting down: no new connections, finishing in-flight requests');
    const force = setTimeout(() => {
      logger.warn('In-flight requests did not finish in time; closing connections');
      server.closeAllConnections();
    }, SHUTDOWN_GRACE_MS);
    force.unref();
    server.close(async () => {
      clearTimeout(force);
      await ctx.close().catch((err: unknown) => logger.error({ err }, 'Error while closing the database'));
      logger.info('Shutdown complete');
      process.exit(0);
    });
    server.closeIdleConnections();
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  const message = err instanceof ConfigError || (err instanceof Error && err.name === 'StartupError') ? err.message : undefined;
  // A configuration or start-up problem gets one clear line; anything else its stack.
  console.error(message ? `Start-up failed: ${message}` : err);
  process.exit(1);
});
