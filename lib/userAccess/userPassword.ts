import type { OnBehalfOfIssuer, PasswordSource, TokenState } from '../db/connectionTarget.ts';
import type { Credential } from '../lakebase/tokenManager.ts';
import { credentialRefreshChannel } from '../lakebase/credentialChannel.ts';

/** Renew this long before expiry (AppKit uses 2 minutes), and at most a quarter into short test lifetimes. */
const RENEW_MARGIN_MS = 2 * 60 * 1000;

/**
 * One user's Postgres password (LAKEBASE_ACCESS=user): minted with the user's own workspace token,
 * kept until shortly before it expires, renewed single-flight. Each user has their own, so a
 * failure for one never touches another. Holds the latest token the user's requests carried and
 * never logs either.
 */
export class UserPassword implements PasswordSource {
  private credential: Credential | null = null;
  private mintedAt = 0;
  private renewAt = 0;
  private inflight: Promise<Credential> | null = null;
  private userToken: string;
  private refreshCount = 0;
  private refreshFailures = 0;
  private lastError: string | null = null;

  constructor(
    readonly user: string,
    userToken: string,
    private readonly issuer: OnBehalfOfIssuer,
    /** Turns a workspace failure into the API error the request gets (401, 403, 503). */
    private readonly toApiError: (err: unknown) => Error,
  ) {
    this.userToken = userToken;
  }

  /** The newest verified token of this user: the next mint uses it (the proxy renews them). */
  useToken(userToken: string): void {
    this.userToken = userToken;
  }

  async getPassword(): Promise<string> {
    if (this.credential && Date.now() < this.renewAt) return this.credential.token;
    return (await this.mint()).token;
  }

  async refresh(_reason: string, options: { refusedPasswordTakenAt?: number } = {}): Promise<void> {
    // A password minted after the refused login took its password is already a new one.
    if (options.refusedPasswordTakenAt !== undefined && this.mintedAt > options.refusedPasswordTakenAt) return;
    this.credential = null;
    await this.mint();
  }

  private mint(): Promise<Credential> {
    this.inflight ??= (async () => {
      try {
        const mint = () => this.issuer.mint(this.userToken, AbortSignal.timeout(60_000));
        const credential = await (credentialRefreshChannel.hasSubscribers ? credentialRefreshChannel.tracePromise(mint, { kind: 'user' }) : mint());
        const now = Date.now();
        const lifetime = credential.expiresAt.getTime() - now;
        this.credential = credential;
        this.mintedAt = now;
        this.renewAt = now + Math.max(0, lifetime - Math.min(RENEW_MARGIN_MS, lifetime / 4));
        this.refreshCount++;
        this.lastError = null;
        return credential;
      } catch (err) {
        const failure = this.toApiError(err);
        this.refreshFailures++;
        this.lastError = failure.message;
        throw failure;
      } finally {
        this.inflight = null;
      }
    })();
    return this.inflight;
  }

  state(): TokenState {
    const expiresAt = this.credential?.expiresAt ?? null;
    const now = Date.now();
    return {
      valid: expiresAt !== null && expiresAt.getTime() > now,
      expiresAt,
      secondsToExpiry: expiresAt ? Math.round((expiresAt.getTime() - now) / 1000) : null,
      ageSeconds: this.mintedAt ? Math.round((now - this.mintedAt) / 1000) : null,
      lastRefreshAt: this.mintedAt ? new Date(this.mintedAt) : null,
      lastError: this.lastError,
      refreshCount: this.refreshCount,
      refreshFailures: this.refreshFailures,
    };
  }

  async stop(): Promise<void> {
    this.credential = null;
  }
}
