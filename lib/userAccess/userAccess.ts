import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { Config } from '../ground/config.ts';
import type { ConnectionTarget, OnBehalfOfIssuer, WorkspaceIdentity } from '../db/connectionTarget.ts';
import { createPool } from '../db/createPool.ts';
import { Database } from '../db/database.ts';
import { UserPools, type UserPool, type UserPoolStats } from '../db/userPools.ts';
import { ApiError, Forbidden, Unauthorized, Unavailable } from '../errors.ts';
import type { NeutralRequest } from '../ground/neutralRequest.ts';
import { ACCESS_TOKEN_HEADER, EMAIL_HEADER, readForwardedIdentity } from './forwardedIdentity.ts';
import { UserPassword } from './userPassword.ts';
import { WorkspaceTokens, type TokenSource } from './workspaceTokens.ts';

/** A caller whose forwarded token the workspace has confirmed belongs to them. */
export interface VerifiedUser {
  /** The workspace userName (their e-mail): the Postgres role, the cache scope, the audit name. */
  email: string;
}

const FORWARDED_TOKEN: TokenSource = { field: ACCESS_TOKEN_HEADER, label: 'X-Forwarded-Access-Token' };
const MAX_PASSWORDS = 10_000;

interface UserConnections extends UserPool {
  db: Database;
}

/** Postgres' "role does not exist" and friends: the user has no login in this database. */
const NO_ROLE_SQLSTATES = new Set(['28000']);

/**
 * On-behalf-of access (LAKEBASE_ACCESS=user): who the caller is, and a database handle that logs
 * in as them. The proxy's headers are checked against the workspace (SCIM Me with the forwarded
 * token, cached per token), so a forged X-Forwarded-Email cannot borrow another user's pool.
 */
export class UserAccess {
  private readonly tokens: WorkspaceTokens;
  private readonly passwords: LRUCache<string, UserPassword>;
  private readonly pools: UserPools<UserConnections>;

  constructor(
    private readonly issuer: OnBehalfOfIssuer,
    target: ConnectionTarget,
    config: Config,
    private readonly logger: Logger,
  ) {
    this.tokens = new WorkspaceTokens(issuer, logger);
    this.passwords = new LRUCache({ max: MAX_PASSWORDS });
    const poolConfig: Config = { ...config, pool: { ...config.pool, size: 0, maxOverflow: config.access.connectionsPerUser } };
    this.pools = new UserPools<UserConnections>({
      connectionsPerUser: config.access.connectionsPerUser,
      maxConnections: config.access.maxConnections,
      waitTimeoutMs: config.pool.timeoutSeconds * 1000,
      idleCloseMs: config.access.idleCloseSeconds * 1000,
      logger,
      open: (user) => {
        const password = this.passwords.get(user);
        if (!password) throw new Error(`no credential source for ${user}`); // identify() always sets one first
        const pool = createPool({ ...target, user, password }, poolConfig, 'lakebase-api (on behalf of a user)');
        return { pool, db: new Database(pool, password) };
      },
    });
  }

  /**
   * The verified caller of a request: 401 when the headers are missing or malformed, or the
   * workspace refuses the token, or the token belongs to someone other than X-Forwarded-Email.
   */
  async identify(headers: NeutralRequest['headers']): Promise<VerifiedUser & WorkspaceIdentity> {
    const { email, token } = readForwardedIdentity(headers);
    const identity = await this.tokens.verify(token, FORWARDED_TOKEN);
    if (identity.userName.toLowerCase() !== email.toLowerCase()) {
      throw new Unauthorized('X-Forwarded-Email does not match the identity of X-Forwarded-Access-Token', EMAIL_HEADER, { error: 'invalid_token' });
    }
    return this.runAs(identity, token, FORWARDED_TOKEN);
  }

  /**
   * The owner of a token the caller presented themselves (AUTH_MODE=databricks-token): verified
   * with the workspace, and the token their database logins are minted with.
   */
  async verifyToken(token: string, source: TokenSource): Promise<VerifiedUser & WorkspaceIdentity> {
    return this.runAs(await this.tokens.verify(token, source), token, source);
  }

  /** Keeps the newest token of the user for minting their Postgres password. */
  private runAs(identity: WorkspaceIdentity, token: string, source: TokenSource): VerifiedUser & WorkspaceIdentity {
    const owner = identity.userName;
    const password = this.passwords.get(owner);
    if (password) password.useToken(token);
    else this.passwords.set(owner, new UserPassword(owner, token, this.issuer, (err) => this.credentialFailure(err, owner, source)));
    return { email: owner, ...identity };
  }

  /** Runs `work` with a database handle logged in as the user. */
  withDatabase<T>(user: VerifiedUser, work: (db: Database) => Promise<T>): Promise<T> {
    return this.pools.with(user.email, async ({ db }) => {
      try {
        return await work(db);
      } catch (err) {
        throw this.refusedLogin(err, user) ?? err;
      }
    });
  }

  stats(): UserPoolStats {
    return this.pools.stats();
  }

  connectionsOf(user: VerifiedUser): number {
    return this.pools.connectionsOf(user.email);
  }

  close(): Promise<void> {
    return this.pools.closeAll();
  }

  private credentialFailure(err: unknown, user: string, source: TokenSource): ApiError {
    if (err instanceof ApiError) return err;
    const { kind, message } = this.issuer.classify(err);
    if (kind === 'unauthenticated') {
      return new Unauthorized(`The workspace did not accept ${source.label} for a database credential (${message})`, source.field, {
        cause: err,
        error: 'invalid_token',
      });
    }
    if (kind === 'forbidden' || kind === 'not-found') {
      return new Forbidden(
        `the workspace refused a database credential for ${user} (${message}); the user needs access to the database, ` +
          "and the app's user authorization scopes must allow database credentials",
        undefined,
        { cause: err },
      );
    }
    this.logger.warn({ user, kind, error: message }, 'Could not mint a database credential for a user');
    return new Unavailable("The Databricks workspace could not issue the user's database credential; retry shortly", { cause: err });
  }

  /** A login refused because the user has no Postgres role is their access problem (403), not an outage. */
  private refusedLogin(err: unknown, user: VerifiedUser): Forbidden | undefined {
    const cause = err instanceof ApiError ? err.cause : err;
    const code = (cause as { code?: unknown } | null)?.code;
    if (typeof code === 'string' && NO_ROLE_SQLSTATES.has(code)) {
      return new Forbidden(`${user.email} cannot log in to the database (no Postgres role for this user)`, undefined, { cause });
    }
    return undefined;
  }
}
