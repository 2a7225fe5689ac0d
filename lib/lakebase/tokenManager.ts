import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import { credentialRefreshChannel } from './credentialChannel.ts';
import { ConfigError, type Env } from '../ground/settingsReaders.ts';
import type { PasswordSource, TokenState } from '../db/connectionTarget.ts';

/**
 * Holds the current Lakebase OAuth token (the Postgres password) and keeps it fresh.
 *
 * Scheduling. A node-cron job refreshes the token every TOKEN_REFRESH_INTERVAL_SECONDS (3000 s =
 * 50 minutes by default). Cron cannot say "every 50 minutes": `*\/50` in the minutes field means
 * minutes 0 and 50 of each hour, i.e. alternately 50 and 10 minutes apart. So the job is a
 * heartbeat (a seconds-field expression such as `*\/30 * * * * *`) that compares the token's age
 * with the interval. The same heartbeat refreshes early when fewer than
 * TOKEN_REFRESH_MARGIN_SECONDS (600) of validity remain (at most half the token's lifetime), so
 * a suspended process or a missed tick cannot let the token lapse. TOKEN_REFRESH_CRON, when set, is a cron expression (5 fields, or 6
 * with seconds) at whose firings the token is refreshed instead of the interval; the early refresh
 * still applies.
 *
 * Behaviour. One refresh at a time: concurrent callers share it. A failed refresh is retried with
 * exponential backoff and jitter (TOKEN_REFRESH_RETRY_MIN_SECONDS … _MAX_SECONDS) for as long as
 * it takes, while the old token keeps being handed out as long as it is valid: a refresh never
 * blocks a request that has a valid token to use. Only when no valid token is held does
 * getPassword() wait for one (and fails fast while the workspace is backing off).
 *
 * Logs never contain the token.
 */
export interface Credential {
  token: string;
  expiresAt: Date;
}

/** Where tokens come from: the only difference between Lakebase Provisioned and Autoscaling. */
export interface CredentialSource {
  /** Safe to log, e.g. `Lakebase Provisioned instance "orders"`. */
  readonly description: string;
  generate(signal: AbortSignal): Promise<Credential>;
}

export interface TokenRefreshSettings {
  /** Refresh when the token is this old (seconds). Ignored when `cron` is set. */
  intervalSeconds: number;
  /** A node-cron expression at whose firings the token is refreshed, instead of the interval. */
  cron: string | null;
  /** Refresh early when fewer than this many seconds of validity remain. */
  marginSeconds: number;
  /** First retry delay after a failed refresh; doubles each time, with jitter. */
  retryMinSeconds: number;
  /** Longest retry delay. */
  retryMaxSeconds: number;
  /** Deadline for one credential request to the workspace. */
  requestTimeoutSeconds: number;
}

export const DEFAULT_TOKEN_REFRESH: Readonly<TokenRefreshSettings> = Object.freeze({
  intervalSeconds: 50 * 60,
  cron: null,
  marginSeconds: 10 * 60,
  retryMinSeconds: 1,
  retryMaxSeconds: 60,
  requestTimeoutSeconds: 30,
});

function readSeconds(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new ConfigError(name, `must be a number of seconds, got "${raw}"`);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max} seconds, got ${value}`);
  return value;
}

/** TOKEN_REFRESH_* settings, validated; a bad value names its variable. */
export function readTokenRefreshSettings(env: Env): TokenRefreshSettings {
  const cronExpression = env.TOKEN_REFRESH_CRON?.trim() || null;
  if (cronExpression !== null && !cron.validate(cronExpression)) {
    throw new ConfigError(
      'TOKEN_REFRESH_CRON',
      `is not a valid cron expression: "${cronExpression}" (5 fields "m h dom mon dow", or 6 with seconds first; ` +
        'note "*/50" in the minutes field fires at :00 and :50, not every 50 minutes: use TOKEN_REFRESH_INTERVAL_SECONDS for that)',
    );
  }
  const settings: TokenRefreshSettings = {
    intervalSeconds: readSeconds(env, 'TOKEN_REFRESH_INTERVAL_SECONDS', DEFAULT_TOKEN_REFRESH.intervalSeconds, 1, 24 * 3600),
    cron: cronExpression,
    marginSeconds: readSeconds(env, 'TOKEN_REFRESH_MARGIN_SECONDS', DEFAULT_TOKEN_REFRESH.marginSeconds, 0, 24 * 3600),
    retryMinSeconds: readSeconds(env, 'TOKEN_REFRESH_RETRY_MIN_SECONDS', DEFAULT_TOKEN_REFRESH.retryMinSeconds, 0.01, 3600),
    retryMaxSeconds: readSeconds(env, 'TOKEN_REFRESH_RETRY_MAX_SECONDS', DEFAULT_TOKEN_REFRESH.retryMaxSeconds, 0.01, 3600),
    requestTimeoutSeconds: readSeconds(env, 'WORKSPACE_REQUEST_TIMEOUT_SECONDS', DEFAULT_TOKEN_REFRESH.requestTimeoutSeconds, 0.1, 600),
  };
  if (settings.retryMaxSeconds < settings.retryMinSeconds) {
    throw new ConfigError('TOKEN_REFRESH_RETRY_MAX_SECONDS', `must not be below TOKEN_REFRESH_RETRY_MIN_SECONDS (${settings.retryMinSeconds})`);
  }
  return settings;
}

/** The heartbeat's period: a divisor of 60 (so a seconds-field `*\/n` ticks evenly), ~1/10 of the shortest deadline. */
export function heartbeatSeconds(settings: Pick<TokenRefreshSettings, 'intervalSeconds' | 'marginSeconds' | 'cron'>): number {
  const deadlines = [settings.marginSeconds > 0 ? settings.marginSeconds : Infinity];
  if (!settings.cron) deadlines.push(settings.intervalSeconds);
  const wanted = Math.min(...deadlines) / 10;
  const divisors = [30, 20, 15, 12, 10, 6, 5, 4, 3, 2, 1];
  return divisors.find((d) => d <= wanted) ?? 1;
}

type TokenStatus = 'starting' | 'ok' | 'degraded' | 'expired' | 'stopped';

/** TokenState plus what health and metrics may want beyond it. Never holds the token. */
export interface LakebaseTokenState extends TokenState {
  /** ok; degraded = the last refresh failed but the token is still valid; expired = no valid token. */
  status: TokenStatus;
  refreshing: boolean;
  consecutiveFailures: number;
  lastFailureAt: Date | null;
  /** When the next refresh (or retry) is due. */
  nextRefreshAt: Date | null;
  /** Where tokens come from (no secrets). */
  source: string;
  /** How refreshes are scheduled, in words (interval or cron, heartbeat, early-refresh margin). */
  schedule: string;
}

export interface RefreshOptions {
  /**
   * When the login that was refused (28P01) took its password. If a newer token was obtained
   * since then, the refused login used an older one: no refresh, retry with the current token.
   * Not when the attempt started: a login that waited for a pool slot may have taken a token
   * obtained after that, and then the refused token is the current one. Without it, a refresh
   * within `loginRetryGraceMs` of the last one is skipped likewise.
   */
  refusedPasswordTakenAt?: number;
}

export interface TokenManagerOptions {
  /** false = no node-cron jobs and no background refresh (tests of the bare mechanism). Default true. */
  schedule?: boolean;
  /** See RefreshOptions. Default 1000 ms. */
  loginRetryGraceMs?: number;
  /** Attempts for the first token in start(). Default 3. */
  startupAttempts?: number;
  /** Whether a failed first attempt in start() is worth repeating (default: always). */
  isRetryable?: (err: unknown) => boolean;
  random?: () => number;
}

/** A token this close to expiry is not handed out for a new login. */
const EXPIRY_SAFETY_MS = 500;

interface HeldToken {
  token: string;
  expiresAt: number;
  obtainedAt: number;
}

export class TokenUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TokenUnavailableError';
  }
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

export class TokenManager implements PasswordSource {
  private held: HeldToken | null = null;
  private inflight: Promise<void> | null = null;
  private inflightAbort: AbortController | null = null;
  private refreshCount = 0;
  private refreshFailures = 0;
  private consecutiveFailures = 0;
  private lastError: string | null = null;
  private lastFailureAt: number | null = null;
  private nextRetryAt: number | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private tasks: ScheduledTask[] = [];
  private started = false;
  private stopped = false;
  private readonly random: () => number;
  private readonly loginRetryGraceMs: number;
  private readonly scheduleEnabled: boolean;
  private readonly log: Logger;
  /** Bumped on each new token; lets callers tell whether the token changed under them. */
  generation = 0;

  constructor(
    private readonly source: CredentialSource,
    private readonly settings: TokenRefreshSettings,
    logger: Logger,
    private readonly options: TokenManagerOptions = {},
  ) {
    this.random = options.random ?? Math.random;
    this.loginRetryGraceMs = options.loginRetryGraceMs ?? 1000;
    this.scheduleEnabled = options.schedule ?? true;
    this.log = logger.child({ component: 'tokenManager' });
  }

  /** Obtains the first token (a few quick attempts, then the error is thrown) and starts the schedule. */
  async start(): Promise<void> {
    if (this.started) throw new Error('TokenManager already started');
    this.started = true;
    const attempts = Math.max(1, this.options.startupAttempts ?? 3);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.attempt(attempt === 1 ? 'start-up' : `start-up, attempt ${attempt}`, false);
        break;
      } catch (err) {
        if (this.stopped || attempt >= attempts || this.options.isRetryable?.(err) === false) throw err;
        await new Promise((resolve) => setTimeout(resolve, this.backoffMs(attempt)));
      }
    }
    if (this.scheduleEnabled && !this.stopped) this.startSchedule();
  }

  private startSchedule(): void {
    const logger = {
      info: (message: string) => this.log.debug({ cron: message }, 'node-cron'),
      warn: (message: string) => this.log.warn({ cron: message }, 'node-cron warning'),
      error: (message: string | Error) => this.log.error({ cron: errorMessage(message) }, 'node-cron error'),
      debug: (message: string | Error) => this.log.debug({ cron: errorMessage(message) }, 'node-cron'),
    };
    const common = { noOverlap: true, unref: true, logger };
    this.tasks.push(cron.schedule(this.heartbeatExpression(), () => this.tick(), { ...common, name: 'lakebase-token-heartbeat' }));
    if (this.settings.cron) {
      this.tasks.push(
        cron.schedule(this.settings.cron, () => this.background('scheduled (TOKEN_REFRESH_CRON)'), { ...common, name: 'lakebase-token-refresh' }),
      );
    }
    this.log.info({ schedule: this.describeSchedule() }, 'Token refresh scheduled');
  }

  private heartbeatExpression(): string {
    return `*/${heartbeatSeconds(this.settings)} * * * * *`;
  }

  private describeSchedule(): string {
    if (!this.scheduleEnabled) return 'disabled';
    const every = this.settings.cron ? `at "${this.settings.cron}"` : `every ${this.settings.intervalSeconds}s`;
    return `${every} (heartbeat "${this.heartbeatExpression()}"), early when ${this.settings.marginSeconds}s of validity remain`;
  }

  /**
   * The early-refresh margin for the held token: the setting, but at most half the token's
   * lifetime, so a short-lived token (seconds, in tests) does not trigger a refresh on every use.
   */
  private marginMs(held: HeldToken): number {
    return Math.min(this.settings.marginSeconds * 1000, (held.expiresAt - held.obtainedAt) / 2);
  }

  /** The current token: no I/O while it is valid. Waits for a refresh only when none is valid. */
  async getPassword(): Promise<string> {
    if (this.stopped) throw new TokenUnavailableError('The token manager is stopped');
    const now = Date.now();
    const held = this.held;
    if (held && held.expiresAt - now > EXPIRY_SAFETY_MS) {
      if (this.scheduleEnabled && held.expiresAt - now <= this.marginMs(held)) {
        this.background(`fewer than ${Math.round(this.marginMs(held) / 1000)}s of validity left`);
      }
      return held.token;
    }
    await this.refreshNow(held ? 'the token expired' : 'no token held');
    // refreshNow resolves only once attempt() has stored a token: this check states it for the compiler.
    if (!this.held) throw new TokenUnavailableError('The refresh ended without a token');
    return this.held.token;
  }

  /**
   * Forces a refresh, e.g. after a login refused with 28P01. Joins a refresh under way; skips it
   * when a newer token arrived since the failed login started (see RefreshOptions).
   */
  async refresh(reason: string, options: RefreshOptions = {}): Promise<void> {
    if (this.stopped) throw new TokenUnavailableError('The token manager is stopped');
    if (this.inflight) return this.inflight;
    const held = this.held;
    if (held) {
      const newer =
        options.refusedPasswordTakenAt !== undefined ? held.obtainedAt > options.refusedPasswordTakenAt : Date.now() - held.obtainedAt < this.loginRetryGraceMs;
      if (newer) {
        this.log.debug({ reason }, 'A newer token was obtained since the failed login started: retrying with it');
        return;
      }
    }
    return this.refreshNow(reason);
  }

  private async refreshNow(reason: string): Promise<void> {
    if (this.inflight) return this.inflight;
    const now = Date.now();
    if (this.nextRetryAt !== null && now < this.nextRetryAt) {
      // Do not hammer a failing workspace from the request path: the scheduled retry will come.
      throw new TokenUnavailableError(
        `No fresh database token: the last refresh failed (${this.lastError ?? 'unknown error'}); next retry in ${Math.ceil((this.nextRetryAt - now) / 1000)}s`,
      );
    }
    return this.attempt(reason, true);
  }

  /** Starts a refresh in the background unless one is running or a retry is pending. */
  private background(reason: string): void {
    if (this.stopped || this.inflight) return;
    if (this.nextRetryAt !== null && Date.now() < this.nextRetryAt) return;
    this.attempt(reason, true).catch(() => undefined); // logged and recorded in attempt()
  }

  /** The heartbeat: refresh when the token is old, near expiry, or a retry is overdue. */
  private tick(): void {
    if (this.stopped || this.inflight) return;
    const now = Date.now();
    if (this.nextRetryAt !== null) {
      if (now >= this.nextRetryAt) this.background('retry after a failed refresh');
      return;
    }
    const held = this.held;
    if (!held) {
      this.background('no token held');
    } else if (held.expiresAt - now <= this.marginMs(held)) {
      this.background(`fewer than ${Math.round(this.marginMs(held) / 1000)}s of validity left`);
    } else if (!this.settings.cron && now - held.obtainedAt >= this.settings.intervalSeconds * 1000) {
      this.background(`scheduled (every ${this.settings.intervalSeconds}s)`);
    }
  }

  private backoffMs(failures: number): number {
    const base = Math.min(this.settings.retryMaxSeconds, this.settings.retryMinSeconds * 2 ** Math.max(0, failures - 1)) * 1000;
    // "Equal jitter": between half and all of the exponential delay, so retries of many
    // instances spread out but never come back immediately.
    return Math.round(base / 2 + this.random() * (base / 2));
  }

  /** One single-flight refresh attempt; on failure records it and (if scheduling) arms a retry. */
  private attempt(reason: string, scheduleRetry: boolean): Promise<void> {
    if (this.inflight) return this.inflight;
    const abort = new AbortController();
    this.inflightAbort = abort;
    const work = () => this.runAttempt(reason, scheduleRetry, abort.signal);
    const run = credentialRefreshChannel.hasSubscribers ? credentialRefreshChannel.tracePromise(work, { kind: 'service', reason }) : work();
    const tracked = run.finally(() => {
      if (this.inflight === tracked) {
        this.inflight = null;
        this.inflightAbort = null;
      }
    });
    this.inflight = tracked;
    return tracked;
  }

  private async runAttempt(reason: string, scheduleRetry: boolean, signal: AbortSignal): Promise<void> {
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    const startedAt = Date.now();
    this.log.info({ reason, source: this.source.description }, 'Background token refresh: Generating fresh PostgreSQL OAuth token');
    try {
      const credential = await this.source.generate(signal);
      if (this.stopped) throw new TokenUnavailableError('The token manager was stopped during a refresh');
      if (typeof credential.token !== 'string' || credential.token === '') throw new Error('the workspace returned no token');
      const expiresAt = credential.expiresAt.getTime();
      if (!Number.isFinite(expiresAt)) throw new Error('the workspace returned no valid expiry time');
      const now = Date.now();
      if (expiresAt <= now) throw new Error(`the workspace returned a token that already expired at ${credential.expiresAt.toISOString()}`);
      this.held = { token: credential.token, expiresAt, obtainedAt: now };
      this.generation += 1;
      this.refreshCount += 1;
      this.consecutiveFailures = 0;
      this.lastError = null;
      this.nextRetryAt = null;
      this.log.info(
        {
          reason,
          expiresAt: credential.expiresAt.toISOString(),
          validForSeconds: Math.round((expiresAt - now) / 1000),
          durationMs: now - startedAt,
          refreshCount: this.refreshCount,
        },
        'Background token refresh: Token updated successfully',
      );
    } catch (err) {
      const message = errorMessage(err);
      if (this.stopped) throw err;
      const now = Date.now();
      this.refreshFailures += 1;
      this.consecutiveFailures += 1;
      this.lastError = message;
      this.lastFailureAt = now;
      const delay = this.backoffMs(this.consecutiveFailures);
      this.nextRetryAt = now + delay;
      const validFor = this.held ? Math.max(0, Math.floor((this.held.expiresAt - now) / 1000)) : 0;
      if (scheduleRetry && this.scheduleEnabled) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.background('retry after a failed refresh');
        }, delay);
        this.retryTimer.unref();
      }
      const fields = {
        reason,
        error: message,
        consecutiveFailures: this.consecutiveFailures,
        retryInSeconds: Math.round(delay / 100) / 10,
        tokenValidForSeconds: validFor,
        source: this.source.description,
      };
      if (validFor > 0) this.log.warn(fields, `Background token refresh failed (the current token stays valid for ${validFor}s): ${message}`);
      else this.log.error(fields, `Background token refresh failed and no valid token is held: ${message}`);
      throw err;
    }
  }

  state(): LakebaseTokenState {
    const now = Date.now();
    const held = this.held;
    const valid = held !== null && held.expiresAt > now;
    let status: TokenStatus;
    if (this.stopped) status = 'stopped';
    else if (!held) status = this.started && this.refreshFailures > 0 ? 'expired' : 'starting';
    else if (!valid) status = 'expired';
    else status = this.consecutiveFailures > 0 ? 'degraded' : 'ok';
    let nextRefreshAt: number | null = null;
    if (!this.stopped && this.scheduleEnabled) {
      if (this.nextRetryAt !== null) nextRefreshAt = this.nextRetryAt;
      else if (held) {
        const early = held.expiresAt - this.marginMs(held);
        const cronNext = this.settings.cron ? (this.tasks[1]?.getNextRun()?.getTime() ?? Infinity) : held.obtainedAt + this.settings.intervalSeconds * 1000;
        nextRefreshAt = Math.min(early, cronNext);
      }
    }
    return {
      valid,
      expiresAt: held ? new Date(held.expiresAt) : null,
      secondsToExpiry: held ? Math.round((held.expiresAt - now) / 1000) : null,
      ageSeconds: held ? Math.round((now - held.obtainedAt) / 1000) : null,
      lastRefreshAt: held ? new Date(held.obtainedAt) : null,
      lastError: this.lastError,
      refreshCount: this.refreshCount,
      refreshFailures: this.refreshFailures,
      status,
      refreshing: this.inflight !== null,
      consecutiveFailures: this.consecutiveFailures,
      lastFailureAt: this.lastFailureAt === null ? null : new Date(this.lastFailureAt),
      nextRefreshAt: nextRefreshAt === null || !Number.isFinite(nextRefreshAt) ? null : new Date(nextRefreshAt),
      source: this.source.description,
      schedule: this.describeSchedule(),
    };
  }

  /** Stops the schedule and abandons a refresh under way. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const tasks = this.tasks;
    this.tasks = [];
    await Promise.all(tasks.map(async (task) => task.destroy()));
    this.inflightAbort?.abort(new TokenUnavailableError('The token manager was stopped'));
  }
}
