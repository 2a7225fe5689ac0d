import { Unauthorized } from '../errors.ts';
import type { NeutralRequest } from '../ground/neutralRequest.ts';

export const AUTHORIZATION = 'authorization';

/** Bounds what a hostile header can make the service hash, parse or verify. */
const MAX_TOKEN_LENGTH = 8192;
/** RFC 6750 §2.1: `Bearer` then one token68 (a JWT's dots included). */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/**
 * The bearer token of a request. Missing → 401 without an error code (RFC 6750 §3.1: the caller
 * has not tried); several, another scheme, or not a token68 → `invalid_request`; too long →
 * `invalid_token`. Never echoes any of it.
 */
export function readBearerToken(headers: NeutralRequest['headers'], mode: string): string {
  const value = headers[AUTHORIZATION];
  if (value === undefined || value === '') {
    throw new Unauthorized(`This API needs a bearer token (AUTH_MODE=${mode}): send Authorization: Bearer <token>`, AUTHORIZATION);
  }
  if (Array.isArray(value)) throw new Unauthorized('Authorization was sent more than once', AUTHORIZATION, { error: 'invalid_request' });
  if (value.length > MAX_TOKEN_LENGTH + 16)
    throw new Unauthorized(`The bearer token is longer than ${MAX_TOKEN_LENGTH} characters`, AUTHORIZATION, { error: 'invalid_token' });
  const token = BEARER.exec(value)?.[1];
  if (!token) throw new Unauthorized('Authorization must be "Bearer <token>" with one well-formed token', AUTHORIZATION, { error: 'invalid_request' });
  return token;
}
