import type { NeutralRequest } from '../ground/neutralRequest.ts';
import { readForwardedEmail } from '../userAccess/forwardedIdentity.ts';
import type { UserAccess } from '../userAccess/userAccess.ts';
import type { Caller } from './caller.ts';

/**
 * AUTH_MODE=apps-proxy: the Databricks Apps proxy signed the user in and forwards who they are.
 * With LAKEBASE_ACCESS=user their forwarded token is also verified with the workspace (and their
 * groups come with it); otherwise the proxy's X-Forwarded-Email is taken as it comes, which is
 * only sound behind the proxy (docs/authentication.md).
 */
export function appsProxyCallers(userAccess: UserAccess | null): (headers: NeutralRequest['headers']) => Promise<Caller> {
  if (userAccess) {
    return async (headers) => {
      const user = await userAccess.identify(headers);
      return { email: user.email, groups: user.groups, user: { email: user.email } };
    };
  }
  return async (headers) => ({ email: readForwardedEmail(headers, 'Requests reach this API through the Databricks Apps proxy'), groups: [] });
}
