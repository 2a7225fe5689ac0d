import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { LakebaseSettings } from './lakebaseSettings.ts';
import { StartupError } from './startupError.ts';
import { TokenManager, type CredentialSource } from './tokenManager.ts';
import { classifyWorkspaceError, workspaceAuthHint } from './workspaceClient.ts';

/** The start-up steps a Lakebase primary and its read replica share: errors worth reading, TLS, the first token. */

import type { Env } from '../ground/settingsReaders.ts';

const AUTH_HINT =
  'Configure workspace auth: DATABRICKS_HOST with DATABRICKS_TOKEN (a personal access token), or DATABRICKS_CLIENT_ID and ' +
  'DATABRICKS_CLIENT_SECRET (OAuth M2M, set automatically in a Databricks App), or DATABRICKS_CONFIG_PROFILE';

/** A workspace failure at start-up, turned into one message naming what was being done and the likely fix. */
export function workspaceStartupError(doing: string, err: unknown, env: Env, settings: LakebaseSettings, notFoundHint?: string): StartupError {
  const { kind, message } = classifyWorkspaceError(err);
  const resourceVariable = settings.mode === 'lakebase-provisioned' ? 'DATABRICKS_DATABASE_INSTANCE' : 'LAKEBASE_ENDPOINT';
  const where = env.DATABRICKS_HOST ? ` at ${env.DATABRICKS_HOST}` : '';
  switch (kind) {
    case 'auth-config':
      return new StartupError(`Could not configure Databricks workspace auth while trying to ${doing}: ${message}`, {
        variable: 'DATABRICKS_HOST',
        hint: AUTH_HINT,
        cause: err,
      });
    case 'unauthenticated':
      return new StartupError(`The workspace${where} rejected the credentials in ${workspaceAuthHint(env)} while trying to ${doing}: ${message}`, {
        variable: env.DATABRICKS_CLIENT_ID ? 'DATABRICKS_CLIENT_SECRET' : 'DATABRICKS_TOKEN',
        hint: 'Check that the token or client secret is valid and belongs to this workspace',
        cause: err,
      });
    case 'forbidden':
      return new StartupError(`The identity behind ${workspaceAuthHint(env)} is not allowed to ${doing}: ${message}`, {
        variable: resourceVariable,
        hint:
          'Grant it access: in a Databricks App add the database as an app resource with "Can connect and create" permission; ' +
          'otherwise give the user or service principal CAN_USE on the instance / project',
        cause: err,
      });
    case 'not-found':
      return new StartupError(`Could not ${doing}: not found in the workspace${where} (${message})`, {
        variable: resourceVariable,
        hint: notFoundHint ?? `Check ${resourceVariable}, and that the identity may see it`,
        cause: err,
      });
    case 'unavailable':
    case 'timeout':
      return new StartupError(`The Databricks workspace${where} did not answer while trying to ${doing}: ${message}`, {
        variable: 'DATABRICKS_HOST',
        hint: 'Check DATABRICKS_HOST and the network; start-up fails rather than serve without a database token',
        cause: err,
      });
    default:
      return new StartupError(`Could not ${doing}: ${message}`, { variable: resourceVariable, cause: err });
  }
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/** TLS for Lakebase: require by default; verify-full checks chain and name; disable only on loopback. */
export function lakebaseSsl(settings: Pick<LakebaseSettings, 'sslMode' | 'sslModeVariable' | 'sslRootCertFile'>, host: string): false | ConnectionOptions {
  const variable = settings.sslModeVariable ?? 'PGSSLMODE';
  let ca: string | undefined;
  if (settings.sslRootCertFile && settings.sslMode.startsWith('verify')) {
    try {
      ca = readFileSync(settings.sslRootCertFile, 'utf8');
    } catch (err) {
      throw new StartupError(`PGSSLROOTCERT (${settings.sslRootCertFile}) could not be read: ${(err as Error).message}`, {
        variable: 'PGSSLROOTCERT',
        cause: err,
      });
    }
  }
  switch (settings.sslMode) {
    case 'disable':
      if (!isLoopback(host)) {
        throw new StartupError(`${variable}=disable is not allowed for Lakebase (${host}): TLS is required`, {
          variable,
          hint: 'Use require (the default) or verify-full; disable is accepted only for a loopback host, i.e. the local workspace emulator and tests',
        });
      }
      return false;
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-ca':
      return { rejectUnauthorized: true, checkServerIdentity: () => undefined, ...(ca ? { ca } : {}) };
    case 'verify-full':
      return { rejectUnauthorized: true, servername: host, ...(ca ? { ca } : {}) };
  }
}

/** A token manager holding its first token (failing as the workspace failed), its refresh scheduled. */
export async function startTokenManager(source: CredentialSource, settings: LakebaseSettings, logger: Logger): Promise<TokenManager> {
  const manager = new TokenManager(source, settings.refresh, logger, {
    // At start-up only a workspace that may come back is worth a second try; a 401/403/404 is not.
    isRetryable: (err) => ['unavailable', 'timeout', 'other'].includes(classifyWorkspaceError(err).kind),
  });
  try {
    await manager.start();
  } catch (err) {
    await manager.stop();
    throw err;
  }
  return manager;
}
