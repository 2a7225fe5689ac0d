/**
 * The neutral request and response every adapter translates to and from, so the router (and all
 * rules behind it) is the same in Express, a fetch host or Lambda.
 */
export interface NeutralRequest {
  method: string;
  /** Path and query string as received, e.g. `/trips/pages?page=2`. */
  url: string;
  /** Header names in lower case. */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The raw body, when the method has one. */
  body?: Buffer;
  /**
   * The peer's IP address as the runtime saw it (the socket's, API Gateway's `sourceIp`), when the
   * runtime tells: the caller of last resort for per-caller limits (lib/http/routing/admission.ts).
   */
  remoteAddress?: string;
  /** Set by an adapter when the client went away, so work for it can stop early. */
  signal?: AbortSignal;
}

/**
 * A body sent while it is produced (a large export read through a cursor), chunk by chunk, so
 * memory stays flat whatever its size. Read it once, to the end, or `cancel` it: either ends the
 * work behind it (the cursor's transaction) and gives its connection back. Never cached.
 */
export class StreamedBody implements AsyncIterable<string> {
  /**
   * `onEnd` runs once nobody will read on, even when the generator never started (a generator's
   * `return` before its first `next` skips its own `finally`).
   */
  constructor(
    private readonly chunks: AsyncGenerator<string, void, undefined>,
    private readonly onEnd: () => void = () => undefined,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<string, void, undefined> {
    return {
      next: () => this.chunks.next(),
      return: async () => {
        await this.cancel();
        return { done: true, value: undefined };
      },
    };
  }

  /** Nobody will read on (a HEAD, a client gone, an adapter that failed): stop the producer. */
  async cancel(): Promise<void> {
    try {
      await this.chunks.return(undefined);
    } finally {
      this.onEnd();
    }
  }
}

export interface NeutralResponse {
  status: number;
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: Buffer | string | StreamedBody | undefined;
}

export function headerValue(headers: NeutralRequest['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
