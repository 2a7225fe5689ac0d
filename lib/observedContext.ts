import type { Config } from './ground/config.ts';
import type { ObservedContext } from './http/serviceContext.ts';
import { openContext } from './openContext.ts';
import { createLogger } from './ops/logger.ts';
import { APP_VERSION } from './version.ts';
import { startTelemetryIfConfigured } from './telemetry/startTelemetry.ts';

import type { Env } from './ground/settingsReaders.ts';

/**
 * The start-up every runtime shares (server.ts, the fetch example, the Lambda handler): telemetry
 * first when OTEL_EXPORTER_OTLP_ENDPOINT asks for it (the logger writes through its destination, so
 * log lines become log records), then the context, then the context's instruments exported. With
 * the variable unset no OpenTelemetry module is loaded: startTelemetryIfConfigured imports the SDK
 * only when it is set.
 */
export async function openObservedContext(config: Config, env: Env, options: { pretty?: boolean } = {}): Promise<ObservedContext> {
  const telemetry = await startTelemetryIfConfigured(env, { version: APP_VERSION });
  try {
    const logger = createLogger({ level: config.logLevel, pretty: options.pretty, destination: telemetry?.logDestination() });
    const ctx = await openContext(config, env, logger);
    if (telemetry && ctx.metrics) await telemetry.exportMetrics(ctx.metrics);
    return { ctx, telemetry };
  } catch (err) {
    await telemetry?.shutdown();
    throw err;
  }
}
