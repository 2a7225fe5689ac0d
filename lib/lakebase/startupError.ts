/**
 * A start-up problem with the Lakebase settings or the workspace (missing or stopped instance, no
 * way to log in, no permission): one clear message naming the setting and the likely fix.
 * server.ts prints `err.message` alone for errors named `StartupError`.
 */
export class StartupError extends Error {
  /** The environment variable (or resource) the message is about, when there is one. */
  readonly variable: string | undefined;
  /** What to do about it, also part of the message. */
  readonly hint: string | undefined;

  constructor(message: string, options: { variable?: string; hint?: string; cause?: unknown } = {}) {
    super(options.hint ? `${message.replace(/[.\s]+$/, '')}. ${options.hint}` : message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StartupError';
    this.variable = options.variable;
    this.hint = options.hint;
  }
}
