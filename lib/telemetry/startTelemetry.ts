import { readTelemetrySettings, type Telemetry } from './telemetrySettings.ts';

import type { Env } from '../ground/settingsReaders.ts';

/**
 * Starts exporting traces, metrics and logs when the platform asks for it. The OpenTelemetry SDK
 * is imported only then: without OTEL_EXPORTER_OTLP_ENDPOINT no OpenTelemetry module is loaded.
 */
export async function startTelemetryIfConfigured(env: Env, resource: { version: string }): Promise<Telemetry | null> {
  const settings = readTelemetrySettings(env);
  if (!settings) return null;
  const { startOtlpTelemetry } = await import('./otlpTelemetry.ts');
  return startOtlpTelemetry(settings, { env, version: resource.version });
}
