import type { Logger } from 'pino';
import { VerifiedTokenCache } from '../cache/verifiedTokenCache.ts';
import type { TokenIdentifier, WorkspaceIdentity } from '../db/connectionTarget.ts';
import { type ApiError, Unauthorized, Unavailable } from '../errors.ts';

/** A verified token is trusted for this long before the workspace is asked again. */
const VERIFIED_TOKEN_TTL_MS = 5 * 60 * 1000;
const MAX_VERIFIED_TOKENS = 10_000;

/** Where a token came from, for the 401 that refuses it. */
export interface TokenSource {
  /** The header, lower case (the problem's `field`). */
  field: string;
  /** How messages name it: `X-Forwarded-Access-Token`, `the bearer token`. */
  label: string;
}

/**
 * Databricks tokens (OAuth or PAT) checked with the workspace (SCIM Me), cached per token hash,
 * one workspace call for concurrent requests with the same token. Used by per-user access (the
 * proxy's forwarded token) and by AUTH_MODE=databricks-token (the caller's bearer token).
 */
export class WorkspaceTokens {
  private readonly verified: VerifiedTokenCache<WorkspaceIdentity>;

  constructor(
    private readonly identifier: TokenIdentifier,
    private readonly logger: Logger,
  ) {
    this.verified = new VerifiedTokenCache({
      max: MAX_VERIFIED_TOKENS,
      ttlMs: VERIFIED_TOKEN_TTL_MS,
      verify: async (token) => ({ value: await identifier.identify(token) }),
    });
  }

  /** The token's owner: 401 when the workspace refuses it, 503 when the workspace cannot answer. */
  async verify(token: string, source: TokenSource): Promise<WorkspaceIdentity> {
    try {
      return await this.verified.get(token);
    } catch (err) {
      throw this.failure(err, source);
    }
  }

  private failure(err: unknown, source: TokenSource): ApiError {
    const { kind, message } = this.identifier.classify(err);
    if (kind === 'unauthenticated' || kind === 'forbidden') {
      return new Unauthorized(`The workspace did not accept ${source.label} (${message})`, source.field, { cause: err, error: 'invalid_token' });
    }
    this.logger.warn({ kind, error: message }, 'Could not verify a Databricks token with the workspace');
    return new Unavailable('The Databricks workspace could not verify the token; retry shortly', { cause: err });
  }
}
