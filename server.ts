/**
 * The Express adapter's entry point: configuration, start-up, listen, graceful shutdown. All
 * request handling lives in the shared router (lib/http/router.ts) and the handlers (functions/).
 */
import dotenv from 'dotenv';
import type { Server } from 'node:http';
import { refuseOpenByDefault } from './lib/auth/openByDefault.ts';
import { loadConfig } from './lib/ground/config.ts';
import { ConfigError } from './lib/ground/settingsReaders.ts';
import { shutDownGracefully } from './lib/ops/gracefulShutdown.ts';
import { createRouter } from './lib/http/router.ts';
import { createServiceServer } from './lib/http/serviceServer.ts';
import { openObservedContext } from './lib/observedContext.ts';
import { apiService } from './functions/index.ts';

const SHUTDOWN_GRACE_MS = 10_000;

dotenv.config({ quiet: true });

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  refuseOpenByDefault(config, 'server');
  // OpenTelemetry export when the platform asks for it (OTEL_EXPORTER_OTLP_ENDPOINT); else nothing is loaded.
  const { ctx, telemetry } = await openObservedContext(config, process.env);
  const { logger } = ctx;
  const router = createRouter(apiService, ctx);
  // One port for HTTP/1.1 (Express) and h2c (HTTP/2 streams straight into the same router).
  const server: Server = createServiceServer(router, config);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info(
    { host: config.host, port, protocols: ['http/1.1', 'h2c'] },
    `Application startup complete: listening on http://${config.host}:${port} (docs at /docs)`,
  );

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    void shutDownGracefully({ server, ctx, drainSeconds: config.operations.shutdownDrainSeconds, graceMs: SHUTDOWN_GRACE_MS }, signal).then(async () => {
      await telemetry?.shutdown();
      logger.info('Shutdown complete');
      // Everything is closed, so the process exits by itself once stdout has taken the queued log
      // lines (process.exit now could write the last ones out of order); a stray handle cannot hold it.
      setTimeout(() => process.exit(0), 3000).unref();
    });
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
