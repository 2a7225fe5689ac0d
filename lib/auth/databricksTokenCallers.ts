import type { Logger } from 'pino';
import { ConfigError } from '../ground/settingsReaders.ts';
import type { NeutralRequest } from '../ground/neutralRequest.ts';
import type { UserAccess } from '../userAccess/userAccess.ts';
import { WorkspaceTokens, type TokenSource } from '../userAccess/workspaceTokens.ts';
import { AUTHORIZATION, readBearerToken } from './bearerToken.ts';
import type { Caller } from './caller.ts';

const BEARER: TokenSource = { field: AUTHORIZATION, label: 'the bearer token' };
const WORKSPACE_TIMEOUT_MS = 10_000;

/**
 * AUTH_MODE=databricks-token: `Authorization: Bearer` with a Databricks OAuth token or PAT, checked
 * with the workspace as per-user access checks the proxy's forwarded token (SCIM Me, cached per
 * token hash, one call per token at a time). With LAKEBASE_ACCESS=user the same token mints the
 * caller's own Postgres login; otherwise `workspaceHost` (DATABRICKS_HOST) answers who it is.
 */
export async function databricksTokenCallers(deps: {
  userAccess: UserAccess | null;
  workspaceHost: string | null;
  logger: Logger;
}): Promise<(headers: NeutralRequest['headers']) => Promise<Caller>> {
  const { userAccess } = deps;
  if (userAccess) {
    return async (headers) => {
      const user = await userAccess.verifyToken(readBearerToken(headers, 'databricks-token'), BEARER);
      return { email: user.email, groups: user.groups, user: { email: user.email } };
    };
  }
  if (!deps.workspaceHost) throw new ConfigError('DATABRICKS_HOST', 'must be set with AUTH_MODE=databricks-token');
  // The SDK is loaded only where a workspace is used (lib/openContext.ts explains why).
  const { workspaceTokenIdentifier } = await import('../lakebase/workspaceIdentity.ts');
  const tokens = new WorkspaceTokens(workspaceTokenIdentifier(deps.workspaceHost, WORKSPACE_TIMEOUT_MS), deps.logger);
  return async (headers) => {
    const identity = await tokens.verify(readBearerToken(headers, 'databricks-token'), BEARER);
    return { email: identity.userName, groups: identity.groups };
  };
}
