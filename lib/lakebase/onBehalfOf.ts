import type { OnBehalfOfIssuer } from '../db/connectionTarget.ts';
import { credentialSourceFor, type LakebaseResource } from './credentialSources.ts';
import { createUserWorkspaceClient } from './workspaceClient.ts';
import { workspaceTokenIdentifier } from './workspaceIdentity.ts';

/**
 * On-behalf-of credentials (LAKEBASE_ACCESS=user): the same credential API as the service's own
 * (Provisioned or Autoscaling), called with the user's token, so Lakebase mints a Postgres password
 * for the user's role (their e-mail) and only if the user may connect.
 */
export function onBehalfOfIssuer(workspaceHost: string, resource: LakebaseResource, timeoutMs: number): OnBehalfOfIssuer {
  // The SDK's own retries of a 429 / 503 stay short: the request that triggered this is waiting.
  const retryTimeoutSeconds = Math.max(1, Math.ceil(timeoutMs / 1000));
  const kind = resource.mode === 'lakebase-provisioned' ? `instance "${resource.instance}"` : `endpoint "${resource.endpoint}"`;
  return {
    description: `per-user credentials for ${kind}`,
    ...workspaceTokenIdentifier(workspaceHost, timeoutMs),
    mint(userToken, signal) {
      return credentialSourceFor(createUserWorkspaceClient(workspaceHost, userToken, { retryTimeoutSeconds }), resource, timeoutMs).generate(signal);
    },
  };
}
