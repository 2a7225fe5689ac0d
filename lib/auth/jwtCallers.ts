import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Logger } from 'pino';
import { type ApiError, Unauthorized, Unavailable } from '../errors.ts';
import type { NeutralRequest } from '../ground/neutralRequest.ts';
import { secureOrLoopback, type JwtSettings } from '../ground/authSettings.ts';
import { AUTHORIZATION, readBearerToken } from './bearerToken.ts';
import type { Caller } from './caller.ts';
import { VerifiedTokenCache } from '../cache/verifiedTokenCache.ts';

/** Asymmetric signatures only: never `none`, never an HMAC whose "secret" could be the public key. */
const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
const ISSUER_TIMEOUT_MS = 5000;
/** A verified token is kept at most this long (and never past its `exp`), so the hot path skips the signature. */
const VERIFIED_TOKEN_TTL_MS = 5 * 60 * 1000;
const MAX_VERIFIED_TOKENS = 10_000;
/** The issuer's key set is refetched at least this often even when every kid is known (key revocation). */
const JWKS_MAX_AGE_MS = 10 * 60 * 1000;
/** jose codes that mean the issuer's keys could not be had (down, slow, garbage): an outage, not a bad token. */
const ISSUER_FAILURES = new Set(['ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID', 'ERR_JOSE_GENERIC']);
const MAX_GROUPS = 1000;

class IssuerUnavailable extends Error {}

/** OIDC discovery: the issuer's own document names its key set; the `issuer` in it must be ours, exactly. */
async function discoverKeySet(settings: JwtSettings): Promise<JWTVerifyGetKey> {
  const url = `${settings.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  let metadata: { issuer?: unknown; jwks_uri?: unknown };
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(ISSUER_TIMEOUT_MS), headers: { accept: 'application/json' } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    metadata = (await response.json()) as typeof metadata;
  } catch (err) {
    throw new IssuerUnavailable(`${url} did not answer with a discovery document (${(err as Error).message})`, { cause: err });
  }
  if (metadata.issuer !== settings.issuer) throw new IssuerUnavailable(`the discovery document at ${url} names another issuer`);
  let jwksUri: URL;
  try {
    jwksUri = new URL(String(metadata.jwks_uri));
  } catch {
    throw new IssuerUnavailable(`the discovery document at ${url} has no valid jwks_uri`);
  }
  if (!secureOrLoopback(jwksUri)) throw new IssuerUnavailable(`the issuer's jwks_uri must be https (http only on loopback): ${jwksUri.href}`);
  return createRemoteJWKSet(jwksUri, {
    timeoutDuration: ISSUER_TIMEOUT_MS,
    cooldownDuration: settings.jwksCooldownSeconds * 1000,
    cacheMaxAge: JWKS_MAX_AGE_MS,
  });
}

/** Why a token was refused, in words that help its owner and reveal nothing of it. */
function refusal(err: InstanceType<typeof errors.JOSEError>): string {
  if (err instanceof errors.JWTExpired) return 'the token has expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return 'the token is not valid yet';
    if (err.claim === 'iss') return 'the token was issued by another issuer';
    if (err.claim === 'aud') return 'the token is for another audience';
    return `the token's ${err.claim} claim is not accepted`;
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return 'the token is not signed with an accepted (asymmetric) algorithm';
  if (err instanceof errors.JWKSNoMatchingKey) return "no key of the issuer matches the token's key id";
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'the token signature is invalid';
  return 'the token is not a well-formed signed JWT';
}

function groupsOf(payload: JWTPayload, claim: string): string[] {
  const value = payload[claim];
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value)) return [];
  return value.filter((group): group is string => typeof group === 'string').slice(0, MAX_GROUPS);
}

/**
 * AUTH_MODE=jwt: a bearer JWT from the configured OIDC issuer, verified here with jose (signature
 * with the issuer's published keys, `iss`, `aud`, `exp` / `nbf` within the clock skew).
 * The issuer is discovered on first use, so a cold start never waits on it; a failed discovery
 * is retried by the next request.
 */
export function jwtCallers(settings: JwtSettings, logger: Logger): (headers: NeutralRequest['headers']) => Promise<Caller> {
  let keySet: Promise<JWTVerifyGetKey> | undefined;
  const keys = () =>
    (keySet ??= discoverKeySet(settings).catch((err: unknown) => {
      keySet = undefined;
      throw err;
    }));

  function failure(err: unknown): ApiError {
    if (err instanceof errors.JOSEError && !ISSUER_FAILURES.has(err.code)) {
      return new Unauthorized(`The bearer token was refused: ${refusal(err)}`, AUTHORIZATION, { error: 'invalid_token' });
    }
    if (err instanceof Unauthorized) return err;
    logger.warn({ issuer: settings.issuer, error: (err as Error).message }, "Could not get the JWT issuer's signing keys");
    return new Unavailable('The token issuer could not be reached to verify the token; retry shortly', { cause: err });
  }

  const verified = new VerifiedTokenCache<Caller>({
    max: MAX_VERIFIED_TOKENS,
    ttlMs: VERIFIED_TOKEN_TTL_MS,
    async verify(token) {
      const { payload } = await jwtVerify(token, await keys(), {
        issuer: settings.issuer,
        audience: settings.audience,
        algorithms: ASYMMETRIC_ALGORITHMS,
        clockTolerance: settings.clockSkewSeconds,
        requiredClaims: ['exp'],
      });
      const email = payload[settings.emailClaim];
      if (typeof email !== 'string' || email === '' || email.length > 320) {
        throw new Unauthorized(`The bearer token has no ${settings.emailClaim} claim (AUTH_JWT_EMAIL_CLAIM) to identify the caller`, AUTHORIZATION, {
          error: 'invalid_token',
        });
      }
      // jwtVerify's requiredClaims has checked that exp is there; the type does not say so.
      if (payload.exp === undefined) throw new Unauthorized('The bearer token has no exp claim', AUTHORIZATION, { error: 'invalid_token' });
      return { value: { email, groups: groupsOf(payload, settings.groupsClaim) }, ttlMs: payload.exp * 1000 - Date.now() };
    },
  });

  return async (headers) => {
    const token = readBearerToken(headers, 'jwt');
    try {
      return await verified.get(token);
    } catch (err) {
      throw failure(err);
    }
  };
}
