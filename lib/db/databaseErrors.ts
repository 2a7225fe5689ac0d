import { ApiError, Forbidden, InternalError, Timeout, Unavailable } from '../errors.ts';

/**
 * The one place where Postgres and driver failures become API errors.
 * SQLSTATE classes: https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
const UNAVAILABLE_SQLSTATES = new Set([
  '28P01', // invalid password: an expired or revoked token that a refresh did not cure
  '28000', // invalid authorization specification
  '53300', // too many connections
  '57P01', // admin shutdown
  '57P02', // crash shutdown
  '57P03', // cannot connect now (starting up / shutting down)
  '3D000', // database does not exist (e.g. not yet created)
]);

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

export function mapDatabaseError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const code = typeof err === 'object' && err !== null ? String((err as { code?: unknown }).code ?? '') : '';
  const message = err instanceof Error ? err.message : String(err);

  // insufficient_privilege: a grant or a row-level security policy said no. The router names the
  // operation; Postgres' own message ("permission denied for table …") says what was refused.
  if (code === '42501') return new Forbidden(message, undefined, { cause: err });
  if (code === '57014') return new Timeout('The database cancelled the query because it exceeded the command timeout', { cause: err });
  // node-postgres' own timer (query_timeout): the server did not answer at all, not even to cancel.
  if (/^Query read timeout$/.test(message)) return new Timeout('The database did not answer within the command timeout', { cause: err });
  if (UNAVAILABLE_SQLSTATES.has(code) || code.startsWith('08') || NETWORK_CODES.has(code)) {
    return new Unavailable('The database is unavailable; retry shortly', { cause: err });
  }
  // node-postgres reports pool waits and dropped sockets only through the message.
  if (/timeout exceeded when trying to connect/i.test(message)) {
    return new Unavailable('No database connection became free in time; retry shortly', { cause: err });
  }
  if (/Connection terminated|connection closed|Client has encountered a connection error|the database system is (starting up|shutting down)/i.test(message)) {
    return new Unavailable('The database connection was lost; retry shortly', { cause: err });
  }
  return new InternalError(err);
}
