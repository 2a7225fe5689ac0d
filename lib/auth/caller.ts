import type { VerifiedUser } from '../userAccess/userAccess.ts';

/** Who made a request, as the active AUTH_MODE established it. */
export interface Caller {
  /** Their e-mail (or the identity claim): the audit name in every log line, matched against AUTH_WRITERS. */
  email: string;
  /** Group names, matched against AUTH_WRITERS. */
  groups: readonly string[];
  /** LAKEBASE_ACCESS=user: the verified user Postgres sees, on their own connections. */
  user?: VerifiedUser;
}
