import { randomUUID } from 'node:crypto';
import type { CacheOutcome } from '../../cache/resultsCache.ts';
import type { Context } from '../serviceContext.ts';
import { callerLogFields } from '../../ops/callerIdentity.ts';
import type { RequestSpan } from '../../telemetry/tracing.ts';
import { headerValue, type NeutralRequest } from '../../ground/neutralRequest.ts';
import { shortPath } from './responses.ts';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's request id when it is a sane one, else a fresh one. */
export function requestIdOf(request: NeutralRequest): string {
  const incoming = headerValue(request.headers, 'x-request-id');
  return incoming !== undefined && REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/** Filled in while a request is dispatched, for its log line, metrics and span even when it fails. */
export interface RequestTrace {
  /** The matched route template, or 'unmatched'. */
  route: string;
  cache: CacheOutcome | undefined;
  /** The authenticated caller's e-mail. */
  user: string | undefined;
  /** The matched operation's id. */
  operation?: string;
  /** The limit that refused the request (429 / shed 503), e.g. `caller-rate`, `scan-share`. */
  refused?: string;
}

export const newTrace = (): RequestTrace => ({ route: 'unmatched', cache: undefined, user: undefined });

/** What is known of a request once its response is ready. */
export interface FinishedRequest {
  request: NeutralRequest;
  requestId: string;
  method: string;
  path: string;
  status: number;
  ms: number;
  trace: RequestTrace;
}

/**
 * The per-request record: one log line, the request metrics and the end of the server span.
 *
 * The line holds only fields the router sets (validated request id, method, route template,
 * status, timing, cache outcome, the caller's bounded email/user and, in user mode, the verified
 * user's e-mail), never a credential: key-based redaction, which walks every key of every line,
 * would be most of the router's cost on a cache hit. Error lines keep the redacting logger.
 */
export function createRequestLog(ctx: Context) {
  const requestLog = ctx.logger.child({}, { redact: [] });
  return function record({ request, requestId, method, path, status, ms, trace }: FinishedRequest, span: RequestSpan | undefined): void {
    const { route, cache, user, refused } = trace;
    requestLog.info(
      {
        reqId: requestId,
        method,
        route,
        status,
        ms: Math.round(ms * 100) / 100,
        ...(cache ? { cache } : {}),
        ...(refused ? { refused } : {}),
        ...callerLogFields(request.headers),
        // The authenticated caller (and, with LAKEBASE_ACCESS=user, who Postgres saw): the audit trail.
        ...(user ? { user } : {}),
      },
      `${method} ${shortPath(path)} ${status} ${ms.toFixed(1)}ms`,
    );
    ctx.metrics?.observeRequest(method, route, status, ms / 1000);
    span?.finish({ route: route === 'unmatched' ? undefined : route, status, requestId, user, cache });
  };
}
