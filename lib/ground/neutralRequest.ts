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

export interface NeutralResponse {
  status: number;
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: Buffer | string | undefined;
}

export function headerValue(headers: NeutralRequest['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
