import { headerValue, type NeutralRequest } from '../ground/neutralRequest.ts';

/** Long enough for any email or user id; bounds what a forged header can put in a log line. */
const MAX_LENGTH = 256;

function bounded(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (trimmed === '') return undefined;
  return trimmed.length > MAX_LENGTH ? `${trimmed.slice(0, MAX_LENGTH)}…` : trimmed;
}

/**
 * Who made the request, for audit trails: the Databricks Apps proxy authenticates the user and
 * passes their identity in `X-Forwarded-Email` / `X-Forwarded-User`. Outside Databricks Apps
 * anyone can send these headers, so this is who the proxy (or the caller) says it is, logged, never
 * used to authorise. The proxy's `X-Forwarded-Access-Token` is deliberately never read here.
 */
export function callerLogFields(headers: NeutralRequest['headers']): { caller?: { email?: string; user?: string } } {
  const email = bounded(headerValue(headers, 'x-forwarded-email'));
  const user = bounded(headerValue(headers, 'x-forwarded-user'));
  if (email === undefined && user === undefined) return {};
  return { caller: { ...(email === undefined ? {} : { email }), ...(user === undefined ? {} : { user }) } };
}
