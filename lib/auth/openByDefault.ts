import type { Config } from '../ground/config.ts';
import { ConfigError } from '../ground/settingsReaders.ts';
import { AUTH_MODES, LOOPBACK_HOST } from '../ground/authSettings.ts';

/**
 * Secure by default: with AUTH_MODE unset outside Databricks Apps the service is open (`none`),
 * which is right for `npm start` on loopback and wrong anywhere else. A server bound beyond
 * loopback, and the Lambda entry (always reachable through API Gateway), refuse to start, in one
 * line that names AUTH_MODE and its choices. Setting AUTH_MODE=none says "open" on purpose.
 */
export function refuseOpenByDefault(config: Pick<Config, 'auth' | 'host'>, runtime: 'server' | 'lambda'): void {
  if (!config.auth.defaulted) return;
  if (runtime === 'server' && LOOPBACK_HOST.test(config.host)) return;
  const where = runtime === 'lambda' ? 'on AWS Lambda' : `for a server bound to ${config.host} (beyond loopback)`;
  throw new ConfigError(
    'AUTH_MODE',
    `must be set ${where}, or anyone who reaches the API may call it: one of ${AUTH_MODES.join(', ')} (see docs/authentication.md)`,
  );
}
