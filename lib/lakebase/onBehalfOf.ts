import { Config, WorkspaceClient } from '@databricks/sdk-experimental';
import type { OnBehalfOfIssuer } from '../db/connectionTarget.ts';
import type { CredentialSource } from '../tokenManager.ts';
import { autoscalingCredentialSource, provisionedCredentialSource } from './credentialSources.ts';
import { callWorkspace, classifyWorkspaceError } from './workspaceClient.ts';

export interface OnBehalfOfResource {
  mode: 'lakebase-provisioned' | 'lakebase-autoscaling';
  instance?: string | null;
  endpoint?: string | null;
}

/**
 * A workspace client that is the signed-in user: authenticated with the access token the Databricks
 * Apps proxy forwards, and nothing else. Its environment is empty on purpose: the app's own
 * DATABRICKS_CLIENT_ID / _SECRET must never be picked up and used in the user's place.
 */
function userWorkspaceClient(host: string, userToken: string, retryTimeoutSeconds: number): WorkspaceClient {
  const config = new Config({ host, token: userToken, authType: 'pat', env: {} as NodeJS.ProcessEnv, retryTimeoutSeconds });
  return new WorkspaceClient(config, { product: 'lakebase-api', productVersion: '0.1.0' });
}

/**
 * On-behalf-of credentials (LAKEBASE_ACCESS=user): the same credential API as the service's own
 * (Provisioned or Autoscaling), called with the user's token, so Lakebase mints a Postgres password
 * for the user's role (their e-mail) and only if the user may connect.
 */
export function onBehalfOfIssuer(workspaceHost: string, resource: OnBehalfOfResource, timeoutMs: number): OnBehalfOfIssuer {
  // The SDK's own retries of a 429 / 503 stay short: the request that triggered this is waiting.
  const retryTimeoutSeconds = Math.max(1, Math.ceil(timeoutMs / 1000));
  const sourceFor = (w: WorkspaceClient): CredentialSource =>
    resource.mode === 'lakebase-provisioned'
      ? provisionedCredentialSource(w, resource.instance!, timeoutMs)
      : autoscalingCredentialSource(w, resource.endpoint!, timeoutMs);
  const kind = resource.mode === 'lakebase-provisioned' ? `instance "${resource.instance}"` : `endpoint "${resource.endpoint}"`;
  return {
    description: `per-user credentials for ${kind}`,
    async identify(userToken) {
      const w = userWorkspaceClient(workspaceHost, userToken, retryTimeoutSeconds);
      const me = await callWorkspace('GET /api/2.0/preview/scim/v2/Me', timeoutMs, (context) => w.currentUser.me(context));
      if (!me.userName) throw new Error('the workspace identity of the forwarded token has no userName');
      return me.userName;
    },
    mint(userToken, signal) {
      return sourceFor(userWorkspaceClient(workspaceHost, userToken, retryTimeoutSeconds)).generate(signal);
    },
    classify: classifyWorkspaceError,
  };
}
