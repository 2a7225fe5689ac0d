import type { Server } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';

export interface GracefulShutdownOptions {
  server: Server;
  /** The service's context: marked as shutting down (readiness answers 503), then closed. */
  ctx: { logger: Logger; shuttingDown: boolean; close(): Promise<void> };
  /** How long readiness answers 503 while the listener still serves (SHUTDOWN_DRAIN_SECONDS). */
  drainSeconds: number;
  /** After this, connections still busy are closed so the process can exit. */
  graceMs: number;
}

/**
 * Shutdown in the order a load balancer needs, each step logged: readiness turns 503 first (so
 * traffic moves elsewhere during the drain), then the listener closes and in-flight requests
 * finish, then the pool closes. Resolves when the database connections are gone.
 */
export async function shutDownGracefully(options: GracefulShutdownOptions, signal: string): Promise<void> {
  const { server, ctx, drainSeconds, graceMs } = options;
  const { logger } = ctx;
  ctx.shuttingDown = true;
  logger.info({ signal, drainSeconds }, 'Shutting down: readiness now answers 503');
  if (drainSeconds > 0) await delay(drainSeconds * 1000);

  logger.info('Listener closed to new connections; finishing in-flight requests');
  await new Promise<void>((resolve) => {
    const force = setTimeout(() => {
      logger.warn({ graceMs }, 'In-flight requests did not finish in time; closing their connections');
      server.closeAllConnections();
    }, graceMs);
    force.unref();
    server.close(() => {
      clearTimeout(force);
      resolve();
    });
    server.closeIdleConnections();
  });

  logger.info('In-flight requests finished; closing the database pool');
  try {
    await ctx.close();
    logger.info('Database pool closed');
  } catch (err) {
    logger.error({ err }, 'Error while closing the database');
  }
}
