import type { ApiError } from '../../errors.ts';
import { JsonText } from '../handler.ts';
import { type NeutralResponse, StreamedBody } from '../../ground/neutralRequest.ts';

export const JSON_TYPE = 'application/json; charset=utf-8';
const PROBLEM_TYPE = 'application/problem+json; charset=utf-8';

/** A handler's body as JSON text: already serialised (JsonText) or stringified here. */
export function serializeBody(body: unknown): string {
  if (body instanceof JsonText) return body.text;
  // Only the router's direct path sends a stream; a cached read must have asked for a finished body.
  if (body instanceof StreamedBody) throw new Error('A streamed body cannot be cached or serialised');
  return JSON.stringify(body);
}

/** A long path cut for a message or a log line. */
export const shortPath = (path: string): string => (path.length > 200 ? `${path.slice(0, 200)}…` : path);

/** A typed error as an `application/problem+json` response. */
export function problemResponse(error: ApiError, requestId: string): NeutralResponse {
  const headers: Record<string, string> = { 'content-type': PROBLEM_TYPE, 'cache-control': 'no-store', ...error.headers };
  if (error.retryAfterSeconds !== undefined) headers['retry-after'] = String(error.retryAfterSeconds);
  return { status: error.status, headers, body: JSON.stringify(error.toProblem(requestId)) };
}
