import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';

/**
 * An OIDC issuer for tests: key pairs generated here, OIDC discovery and the JWKS served on
 * loopback, tokens signed on demand. Counts key-set fetches, so a suite can see jose's refresh rules.
 */
export interface TestIssuer {
  /** The issuer URL (`iss`). */
  issuer: string;
  /** How many times the JWKS was fetched. */
  jwksFetches(): number;
  /** A JWT with `claims` over sensible defaults (iss, aud, exp in an hour), signed with `kid`'s key. */
  sign(claims: JWTPayload, options?: { kid?: string; expiresAt?: number; notBefore?: number }): Promise<string>;
  /** A key pair that is not in the JWKS (an unknown kid). */
  signWithUnpublishedKey(claims: JWTPayload): Promise<string>;
  /** The PEM of a published public key: what an HS256 forger would use as the "secret". */
  publicKeyPem(kid: string): Promise<string>;
  close(): Promise<void>;
}

export const TEST_AUDIENCE = 'lakebase-api';

interface KeyPair {
  alg: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

export async function startTestIssuer(): Promise<TestIssuer> {
  const keys = new Map<string, KeyPair>();
  for (const [kid, alg] of [
    ['rsa-1', 'RS256'],
    ['ec-1', 'ES256'],
  ] as const)
    keys.set(kid, { alg, ...(await generateKeyPair(alg, { extractable: true })) });
  const unpublished: KeyPair = { alg: 'RS256', ...(await generateKeyPair('RS256')) };
  const jwks = { keys: await Promise.all([...keys].map(async ([kid, pair]) => ({ ...(await exportJWK(pair.publicKey)), kid, alg: pair.alg, use: 'sig' }))) };
  let fetches = 0;
  let issuer = '';
  const server = createServer((req, res) => {
    if (req.url === '/.well-known/openid-configuration') {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks`, id_token_signing_alg_values_supported: ['RS256', 'ES256'] }));
    } else if (req.url === '/jwks') {
      fetches += 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const signWith = (pair: KeyPair, kid: string, claims: JWTPayload, options: { expiresAt?: number; notBefore?: number } = {}) => {
    const now = Math.floor(Date.now() / 1000);
    const jwt = new SignJWT({
      iss: issuer,
      aud: TEST_AUDIENCE,
      sub: 'subject-1',
      iat: now,
      exp: options.expiresAt ?? now + 3600,
      ...claims,
    }).setProtectedHeader({ alg: pair.alg, kid, typ: 'JWT' });
    if (options.notBefore !== undefined) jwt.setNotBefore(options.notBefore);
    return jwt.sign(pair.privateKey);
  };

  return {
    issuer,
    jwksFetches: () => fetches,
    sign: (claims, options = {}) => signWith(keys.get(options.kid ?? 'rsa-1')!, options.kid ?? 'rsa-1', claims, options),
    signWithUnpublishedKey: (claims) => signWith(unpublished, 'rotated-away', claims),
    publicKeyPem: (kid) => exportSPKI(keys.get(kid)!.publicKey),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
