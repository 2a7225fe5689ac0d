import { Unauthorized } from '../errors.ts';
import { headerValue, type NeutralRequest } from '../ground/neutralRequest.ts';

export const ACCESS_TOKEN_HEADER = 'x-forwarded-access-token';
export const EMAIL_HEADER = 'x-forwarded-email';

/** What the Databricks Apps proxy says about the caller; the token is verified before use. */
export interface ForwardedIdentity {
  email: string;
  token: string;
}

/** Bounds what a forged header can make the service hash, send or log. */
const MAX_TOKEN_LENGTH = 8192;
const MAX_EMAIL_LENGTH = 320;
/** An OAuth access token is one opaque run of token68 characters (RFC 6750). */
const TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
/** Printable, no spaces or control characters: good enough to compare with the workspace's answer. */
const EMAIL = /^[^\s@]+@[^\s@]+$/;

/**
 * The user identity headers of a request in LAKEBASE_ACCESS=user mode. Missing or malformed → 401
 * naming the header: never a silent fall-back to the service principal.
 */
export function readForwardedIdentity(headers: NeutralRequest['headers']): ForwardedIdentity {
  const repeated = headers[ACCESS_TOKEN_HEADER];
  if (Array.isArray(repeated) && repeated.length > 1)
    throw new Unauthorized(`${ACCESS_TOKEN_HEADER} was sent more than once`, ACCESS_TOKEN_HEADER, { error: 'invalid_request' });
  const token = headerValue(headers, ACCESS_TOKEN_HEADER)?.trim();
  if (!token) {
    throw new Unauthorized(
      'This API runs each request as the signed-in Databricks user: the X-Forwarded-Access-Token header is missing ' +
        '(is user authorization enabled for the app, and is the request coming through the Databricks Apps proxy?)',
      ACCESS_TOKEN_HEADER,
    );
  }
  if (token.length > MAX_TOKEN_LENGTH || !TOKEN.test(token))
    throw new Unauthorized('X-Forwarded-Access-Token is not a well-formed access token', ACCESS_TOKEN_HEADER, { error: 'invalid_token' });
  return { email: readForwardedEmail(headers, 'This API runs each request as the signed-in Databricks user'), token };
}

/** The signed-in user's e-mail the Databricks Apps proxy forwards: 401 naming the header when missing or malformed. */
export function readForwardedEmail(headers: NeutralRequest['headers'], why: string): string {
  const value = headers[EMAIL_HEADER];
  if (Array.isArray(value) && value.length > 1) throw new Unauthorized(`${EMAIL_HEADER} was sent more than once`, EMAIL_HEADER, { error: 'invalid_request' });
  const email = headerValue(headers, EMAIL_HEADER)?.trim();
  if (!email) throw new Unauthorized(`${why}: the X-Forwarded-Email header is missing`, EMAIL_HEADER);
  if (email.length > MAX_EMAIL_LENGTH || !EMAIL.test(email))
    throw new Unauthorized('X-Forwarded-Email is not an e-mail address', EMAIL_HEADER, { error: 'invalid_request' });
  return email;
}
