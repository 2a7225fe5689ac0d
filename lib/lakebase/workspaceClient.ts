import { ApiError, Config, ConfigError as SdkConfigError, Context, HttpError, WorkspaceClient, retries } from '@databricks/sdk-experimental';
import type { CancellationToken } from '@databricks/sdk-experimental';

import type { Env } from '../ground/settingsReaders.ts';

/**
 * All workspace access goes through the Databricks SDK's WorkspaceClient and its unified auth: a
 * PAT (DATABRICKS_HOST + DATABRICKS_TOKEN), OAuth M2M (DATABRICKS_CLIENT_ID +
 * DATABRICKS_CLIENT_SECRET, what a Databricks App gets) or a profile (DATABRICKS_CONFIG_PROFILE,
 * ~/.databrickscfg). The SDK reads the variables from the `env` object given here, never from
 * process.env directly, so tests can run several clients side by side.
 */
export interface WorkspaceClientOptions {
  /**
   * How long the SDK itself keeps retrying a 429 / transient answer before giving up. Its default
   * is 300 s; the token manager has its own retries with backoff, so keep this short.
   */
  retryTimeoutSeconds?: number;
}

/** How this service names itself in the SDK's User-Agent. */
const PRODUCT = { product: 'lakebase-api', productVersion: '0.1.0' } as const;

export function createWorkspaceClient(env: Env, options: WorkspaceClientOptions = {}): WorkspaceClient {
  const config = new Config({
    // A copy: the SDK keeps a reference and must not see later changes to the caller's object.
    env: { ...env } as NodeJS.ProcessEnv,
    retryTimeoutSeconds: options.retryTimeoutSeconds ?? 20,
  });
  return new WorkspaceClient(config, PRODUCT);
}

/**
 * A workspace client that is the signed-in user (LAKEBASE_ACCESS=user): authenticated with the
 * access token the Databricks Apps proxy forwards, and nothing else. Its environment is empty on
 * purpose: the app's own DATABRICKS_CLIENT_ID / _SECRET must never be picked up in the user's place.
 */
export function createUserWorkspaceClient(host: string, userToken: string, options: WorkspaceClientOptions = {}): WorkspaceClient {
  const config = new Config({ host, token: userToken, authType: 'pat', env: {} as NodeJS.ProcessEnv, retryTimeoutSeconds: options.retryTimeoutSeconds ?? 20 });
  return new WorkspaceClient(config, PRODUCT);
}

/** Which credentials the SDK will use, in words, for messages (no secrets). */
export function workspaceAuthHint(env: Env): string {
  if (env.DATABRICKS_CLIENT_ID && env.DATABRICKS_CLIENT_SECRET) return 'DATABRICKS_CLIENT_ID / DATABRICKS_CLIENT_SECRET (OAuth M2M)';
  if (env.DATABRICKS_TOKEN) return 'DATABRICKS_TOKEN (personal access token)';
  if (env.DATABRICKS_CONFIG_PROFILE) return `the profile "${env.DATABRICKS_CONFIG_PROFILE}" (DATABRICKS_CONFIG_PROFILE)`;
  return 'the SDK default chain (~/.databrickscfg, Databricks CLI, …)';
}

/** Raised when a workspace call takes longer than its deadline (a slow or hung workspace). */
class WorkspaceTimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`${what} did not answer within ${Math.round(ms / 100) / 10}s`);
    this.name = 'WorkspaceTimeoutError';
  }
}

class AbortCancellationToken implements CancellationToken {
  constructor(private readonly signal: AbortSignal) {}
  get isCancellationRequested(): boolean {
    return this.signal.aborted;
  }
  onCancellationRequested = (f: (e?: unknown) => unknown): void => {
    if (this.signal.aborted) f();
    else this.signal.addEventListener('abort', () => f(), { once: true });
  };
}

/**
 * Runs one SDK call with a deadline. The SDK's own fetch has no timeout (a hung workspace would
 * hang the call forever), and M2M token exchange is not cancellable at all, so the deadline both
 * cancels the HTTP request (through the SDK Context's cancellation token) and stops waiting.
 */
export async function callWorkspace<T>(what: string, timeoutMs: number, fn: (context: Context) => Promise<T>, outer?: AbortSignal): Promise<T> {
  const controller = new AbortController();
  const abortFromOuter = () => controller.abort(outer?.reason);
  if (outer?.aborted) abortFromOuter();
  else outer?.addEventListener('abort', abortFromOuter, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new WorkspaceTimeoutError(what, timeoutMs);
      controller.abort(err);
      reject(err);
    }, timeoutMs);
    timer.unref();
    controller.signal.addEventListener('abort', () => reject(controller.signal.reason ?? new Error(`${what} was cancelled`)), { once: true });
  });
  try {
    const call = fn(new Context({ cancellationToken: new AbortCancellationToken(controller.signal) }));
    call.catch(() => undefined); // settles after the deadline: nobody listens any more
    return await Promise.race([call, deadline]);
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', abortFromOuter);
    if (!controller.signal.aborted) controller.abort(new Error('done'));
  }
}

/** What kind of failure a workspace call met, for start-up messages and state. */
export type WorkspaceFailure = 'auth-config' | 'unauthenticated' | 'forbidden' | 'not-found' | 'unavailable' | 'timeout' | 'other';

export function classifyWorkspaceError(err: unknown): { kind: WorkspaceFailure; status?: number; message: string } {
  const message = describeWorkspaceError(err);
  if (err instanceof SdkConfigError) {
    // OIDC discovery failing because the workspace cannot be reached surfaces as a ConfigError.
    if (/ECONNREFUSED|ECONNRESET|ENOTFOUND|ETIMEDOUT|EAI_AGAIN|EHOSTUNREACH|socket hang up/i.test(err.message)) return { kind: 'unavailable', message };
    return { kind: 'auth-config', message };
  }
  if (err instanceof WorkspaceTimeoutError) return { kind: 'timeout', message };
  if (err instanceof ApiError) {
    const status = err.statusCode;
    if (status === 401) return { kind: 'unauthenticated', status, message };
    if (status === 403) return { kind: 'forbidden', status, message };
    if (status === 404) return { kind: 'not-found', status, message };
    if (status >= 500 || status === 429) return { kind: 'unavailable', status, message };
    return { kind: 'other', status, message };
  }
  if (err instanceof HttpError) return { kind: 'unavailable', status: err.code, message };
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^E[A-Z]+/.test(code)) return { kind: 'unavailable', message };
  if (err instanceof Error && /Failed to retrieve token/i.test(err.message)) return { kind: 'unauthenticated', message };
  // The SDK gave up retrying 429s / transient answers within its retryTimeoutSeconds.
  if (err instanceof retries.TimeoutError) return { kind: 'unavailable', message };
  return { kind: 'other', message };
}

/**
 * A one-line description of a workspace error, safe to log: SDK ConfigErrors mask sensitive
 * attributes themselves; API errors carry the workspace's message (which never echoes a token).
 */
function describeWorkspaceError(err: unknown): string {
  if (err instanceof SdkConfigError) return err.baseMessage;
  if (err instanceof ApiError) return `HTTP ${err.statusCode}${err.errorCode ? ` ${err.errorCode}` : ''}: ${err.message}`;
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
