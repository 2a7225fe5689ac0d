import type { ConnectionOptions } from 'node:tls';
import { ConfigError } from '../ground/settingsReaders.ts';

/** libpq's sslmode values mapped onto node-postgres' `ssl` option. */
export function sslFromMode(mode: string | undefined, host: string, variable = 'PGSSLMODE'): false | ConnectionOptions {
  switch ((mode ?? 'disable').trim().toLowerCase()) {
    case '':
    case 'disable':
    case 'allow':
      return false;
    case 'prefer':
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-ca':
      // The chain is verified; the name is not (libpq semantics).
      return { rejectUnauthorized: true, checkServerIdentity: () => undefined };
    case 'verify-full':
      return { rejectUnauthorized: true, servername: host };
    default:
      throw new ConfigError(variable, `must be one of disable, allow, prefer, require, verify-ca, verify-full; got "${mode}"`);
  }
}
