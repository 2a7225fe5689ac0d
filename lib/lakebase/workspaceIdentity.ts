import type { TokenIdentifier } from '../db/connectionTarget.ts';
import { callWorkspace, classifyWorkspaceError, createUserWorkspaceClient } from './workspaceClient.ts';

/**
 * Who a Databricks token belongs to: SCIM Me called with the token itself, on a client that knows
 * nothing but the workspace host and that token.
 */
export function workspaceTokenIdentifier(workspaceHost: string, timeoutMs: number): TokenIdentifier {
  // The SDK's own retries of a 429 / 503 stay short: the request that triggered this is waiting.
  const retryTimeoutSeconds = Math.max(1, Math.ceil(timeoutMs / 1000));
  return {
    async identify(userToken) {
      const w = createUserWorkspaceClient(workspaceHost, userToken, { retryTimeoutSeconds });
      const me = await callWorkspace('GET /api/2.0/preview/scim/v2/Me', timeoutMs, (context) => w.currentUser.me(context));
      if (!me.userName) throw new Error('the workspace identity of the token has no userName');
      const groups = (me.groups ?? []).map((group) => group.display).filter((name): name is string => typeof name === 'string' && name !== '');
      return { userName: me.userName, groups };
    },
    classify: classifyWorkspaceError,
  };
}
