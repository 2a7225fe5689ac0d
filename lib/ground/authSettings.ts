import { ConfigError, type Env } from './settingsReaders.ts';

export const AUTH_MODES = ['apps-proxy', 'databricks-token', 'jwt', 'none'] as const;
/**
 * Who checks the caller. `apps-proxy`: the Databricks Apps proxy did (identity from its headers);
 * `databricks-token`: a Databricks OAuth token or PAT, verified with the workspace; `jwt`: a JWT
 * from an OIDC issuer, verified locally; `none`: nobody (local development).
 */
export type AuthMode = (typeof AUTH_MODES)[number];

export interface JwtSettings {
  /** The issuer URL exactly as the tokens' `iss` says it; its discovery document names the JWKS. */
  issuer: string;
  /** Accepted `aud` values (any one). */
  audience: string[];
  emailClaim: string;
  groupsClaim: string;
  /** Tolerance for `exp` / `nbf` against this machine's clock. */
  clockSkewSeconds: number;
  /** A token signed with an unknown `kid` refetches the key set at most once per this many seconds. */
  jwksCooldownSeconds: number;
}

export interface AuthSettings {
  mode: AuthMode;
  /**
   * True when AUTH_MODE was not set and `none` is only the local default: the server refuses it
   * beyond loopback, the Lambda entry always (lib/auth/openByDefault.ts).
   */
  defaulted: boolean;
  /** AUTH_WRITERS: e-mails and group names allowed to write; null = any authenticated caller. */
  writers: string[] | null;
  /** databricks-token without per-user access: the workspace that verifies tokens. */
  workspaceHost: string | null;
  jwt: JwtSettings | null;
}

export const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[?::1\]?)$/i;

function readList(env: Env, name: string): string[] {
  return (env[name] ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
}

function readSeconds(env: Env, name: string, fallback: number, max: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) > max) throw new ConfigError(name, `must be a whole number of seconds from 0 to ${max}, got "${raw}"`);
  return Number(raw);
}

/** https, or http only on loopback (a test or local issuer): keys fetched in clear text could be swapped. */
export function secureOrLoopback(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOST.test(url.hostname));
}

function readJwt(env: Env): JwtSettings {
  const issuer = env.AUTH_JWT_ISSUER?.trim();
  if (!issuer) throw new ConfigError('AUTH_JWT_ISSUER', 'must be set with AUTH_MODE=jwt (the OIDC issuer URL, e.g. https://login.example.com/realms/data)');
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new ConfigError('AUTH_JWT_ISSUER', `must be a URL, got "${issuer}"`);
  }
  if (!secureOrLoopback(url)) throw new ConfigError('AUTH_JWT_ISSUER', `must be an https URL (http only for a loopback issuer), got "${issuer}"`);
  const audience = readList(env, 'AUTH_JWT_AUDIENCE');
  if (audience.length === 0) throw new ConfigError('AUTH_JWT_AUDIENCE', "must be set with AUTH_MODE=jwt (the `aud` this API's tokens carry)");
  return {
    issuer,
    audience,
    emailClaim: env.AUTH_JWT_EMAIL_CLAIM?.trim() || 'email',
    groupsClaim: env.AUTH_JWT_GROUPS_CLAIM?.trim() || 'groups',
    clockSkewSeconds: readSeconds(env, 'AUTH_JWT_CLOCK_SKEW_SECONDS', 30, 300),
    jwksCooldownSeconds: readSeconds(env, 'AUTH_JWT_JWKS_COOLDOWN_SECONDS', 30, 3600),
  };
}

/**
 * AUTH_MODE and its settings. Unset: `apps-proxy` inside a Databricks App (and with
 * LAKEBASE_ACCESS=user, whose forwarded tokens are verified with the workspace), else `none`,
 * marked `defaulted` so an exposed server or the Lambda entry refuses it.
 */
export function readAuthSettings(env: Env, context: { inDatabricksApp: boolean; userAccess: boolean }): AuthSettings {
  const raw = env.AUTH_MODE?.trim().toLowerCase();
  if (raw && !(AUTH_MODES as readonly string[]).includes(raw)) {
    throw new ConfigError('AUTH_MODE', `must be one of ${AUTH_MODES.join(', ')}, got "${env.AUTH_MODE}"`);
  }
  const implied: AuthMode = context.inDatabricksApp || context.userAccess ? 'apps-proxy' : 'none';
  const mode = (raw as AuthMode | undefined) ?? implied;
  if (context.userAccess && (mode === 'jwt' || mode === 'none')) {
    throw new ConfigError(
      'AUTH_MODE',
      `is "${mode}", but LAKEBASE_ACCESS=user logs each caller in to Lakebase with their own Databricks token: use databricks-token or apps-proxy`,
    );
  }
  const writers = readList(env, 'AUTH_WRITERS');
  if (writers.length > 0 && mode === 'none')
    throw new ConfigError('AUTH_WRITERS', 'needs an AUTH_MODE that identifies callers (apps-proxy, databricks-token or jwt)');
  const workspaceHost = env.DATABRICKS_HOST?.trim() || null;
  if (mode === 'databricks-token' && !context.userAccess && !workspaceHost) {
    throw new ConfigError('DATABRICKS_HOST', "must be set with AUTH_MODE=databricks-token (the workspace that verifies callers' tokens)");
  }
  return {
    mode,
    defaulted: !raw && mode === 'none',
    writers: writers.length > 0 ? writers : null,
    workspaceHost,
    jwt: mode === 'jwt' ? readJwt(env) : null,
  };
}
