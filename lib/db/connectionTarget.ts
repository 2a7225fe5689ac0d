import type { ConnectionOptions } from 'node:tls';

/** How the service reaches Postgres; only where the host and the password come from differs. */
type ConnectionMode = 'embedded' | 'postgres' | 'lakebase-provisioned' | 'lakebase-autoscaling';

/** The state of an OAuth token source, reported by /health and metrics. Never holds the token. */
export interface TokenState {
  valid: boolean;
  expiresAt: Date | null;
  secondsToExpiry: number | null;
  ageSeconds: number | null;
  lastRefreshAt: Date | null;
  lastError: string | null;
  refreshCount: number;
  refreshFailures: number;
}

/** A source of short-lived passwords (a Lakebase token manager). */
export interface PasswordSource {
  /** The current password; fast (no I/O) unless no valid token is held. */
  getPassword(): Promise<string>;
  /**
   * Force a refresh (e.g. after a 28P01 login failure); concurrent callers share one refresh.
   * `refusedPasswordTakenAt` (when the refused login took its password) lets the source skip the
   * refresh when a newer token already exists.
   */
  refresh(reason: string, options?: { refusedPasswordTakenAt?: number }): Promise<void>;
  state(): TokenState;
  stop(): Promise<void>;
}

/** Who a Databricks token belongs to, as the workspace says (SCIM Me). */
export interface WorkspaceIdentity {
  /** SCIM userName: the user's e-mail, their Postgres role. */
  userName: string;
  /** Display names of the workspace groups the user is in. */
  groups: string[];
}

/** Asks the workspace who a Databricks token (OAuth or PAT) belongs to. */
export interface TokenIdentifier {
  identify(userToken: string): Promise<WorkspaceIdentity>;
  /** What kind of failure a workspace error is, in words safe to log. */
  classify(err: unknown): { kind: 'auth-config' | 'unauthenticated' | 'forbidden' | 'not-found' | 'unavailable' | 'timeout' | 'other'; message: string };
}

/**
 * Lakebase only: Postgres credentials for the signed-in users (LAKEBASE_ACCESS=user), minted with
 * each user's own workspace token.
 */
export interface OnBehalfOfIssuer extends TokenIdentifier {
  /** Safe to log. */
  readonly description: string;
  /** A Postgres password for the token's identity. */
  mint(userToken: string, signal: AbortSignal): Promise<{ token: string; expiresAt: Date }>;
}

/** Everything needed to open a connection, resolved once at start-up. */
export interface ConnectionTarget {
  mode: ConnectionMode;
  host: string;
  port: number;
  database: string;
  user: string;
  /** A fixed password, or a source of fresh tokens for each new connection. */
  password: string | PasswordSource;
  /** false = no TLS (embedded / local); otherwise TLS options for pg. */
  ssl: false | ConnectionOptions;
  /** Safe to log: no secrets. */
  description: string;
  /**
   * A read replica of this database (LAKEBASE_READ_ENDPOINT, LAKEBASE_READ_REPLICAS, PGHOST_READ,
   * DATABASE_URL_READ): reads declared `x-read-from: replica` go there (lib/replicas/).
   */
  replica?: ConnectionTarget;
  /** Lakebase targets: mints credentials for other identities from their tokens. */
  onBehalfOf?: OnBehalfOfIssuer;
  /** Release what resolving the target started (embedded server, token refresh job). */
  close(): Promise<void>;
}
