import type { Logger } from 'pino';
import { ConfigError } from '../ground/settingsReaders.ts';
import { Forbidden } from '../errors.ts';
import type { NeutralRequest } from '../ground/neutralRequest.ts';
import type { UserAccess } from '../userAccess/userAccess.ts';
import { appsProxyCallers } from './appsProxyCallers.ts';
import type { AuthMode, AuthSettings } from '../ground/authSettings.ts';
import type { Caller } from './caller.ts';
import { databricksTokenCallers } from './databricksTokenCallers.ts';
import { jwtCallers } from './jwtCallers.ts';

/** What the authenticate step needs to know of the operation it guards. */
interface GuardedOperation {
  operationId: string;
  /** Changes data: needs a caller in AUTH_WRITERS when it is set. */
  write: boolean;
}

/**
 * The authenticate step the router runs for every operation the OpenAPI document marks with
 * `security`, before it looks at the input: who is calling (401 otherwise), then, for a write,
 * whether they may (403 naming the operation otherwise).
 */
export interface Authenticator {
  readonly mode: Exclude<AuthMode, 'none'>;
  /** The request header a per-user (LAKEBASE_ACCESS=user) answer varies by, for `Vary`. */
  readonly identityHeader: string;
  identify(headers: NeutralRequest['headers']): Promise<Caller>;
  authorize(caller: Caller, operation: GuardedOperation): void;
}

/** AUTH_WRITERS: e-mails match case-insensitively, group names exactly. */
function writersCheck(writers: readonly string[] | null): (caller: Caller) => boolean {
  if (!writers) return () => true;
  const emails = new Set(writers.map((entry) => entry.toLowerCase()));
  const groups = new Set(writers);
  return (caller) => emails.has(caller.email.toLowerCase()) || caller.groups.some((group) => groups.has(group));
}

/** The authenticator of AUTH_MODE; null for `none` (nothing is checked). */
export async function createAuthenticator(settings: AuthSettings, deps: { userAccess: UserAccess | null; logger: Logger }): Promise<Authenticator | null> {
  const { mode } = settings;
  if (mode === 'none') return null;
  if (mode === 'jwt' && !settings.jwt) throw new ConfigError('AUTH_JWT_ISSUER', 'must be set with AUTH_MODE=jwt');
  const identify =
    mode === 'jwt' && settings.jwt
      ? jwtCallers(settings.jwt, deps.logger)
      : mode === 'databricks-token'
        ? await databricksTokenCallers({ ...deps, workspaceHost: settings.workspaceHost })
        : appsProxyCallers(deps.userAccess);
  const mayWrite = writersCheck(settings.writers);
  return {
    mode,
    identityHeader: mode === 'apps-proxy' ? 'X-Forwarded-Email' : 'Authorization',
    identify,
    authorize(caller, operation) {
      if (operation.write && !mayWrite(caller)) {
        throw new Forbidden(`${caller.email} may not run ${operation.operationId}: writes are limited to AUTH_WRITERS`, operation.operationId);
      }
    },
  };
}
