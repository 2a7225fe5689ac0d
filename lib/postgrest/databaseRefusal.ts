import { mapDatabaseError } from '../db/databaseErrors.ts';
import { ApiError, Forbidden } from '../errors.ts';
import { PostgrestError } from './postgrestError.ts';

/**
 * Postgres refusing a request's statement, in PostgREST's terms: the SQLSTATE as `code`, Postgres'
 * message, detail and hint, and PostgREST's status for it. Values in a request that Postgres cannot
 * read (class 22), rows it refuses (class 23) and expressions that do not type (42xxx) are the
 * client's 4xx; an outage or a timeout keeps the service's own mapping (503/504).
 */
const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  '23503': 409,
  '23505': 409,
  '23P01': 409,
  '23502': 400,
  '23514': 400,
  '42703': 400,
  '42704': 400,
  '42804': 400,
  '42883': 400,
  '42P10': 400,
  '21000': 400,
  '2201B': 400,
};

interface PgError {
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  column?: string;
}

/** The column a refusal is about: Postgres names it (NOT NULL), or its detail does (`Key (a, b)=(…) already exists.`). */
function columnOf(pg: PgError): string | undefined {
  if (pg.column) return pg.column;
  const key = /^Key \((?:"((?:[^"]|"")+)"|([^,)]+))/.exec(pg.detail ?? '');
  return key?.[1]?.replaceAll('""', '"') ?? key?.[2];
}

function pgErrorOf(err: unknown): PgError | undefined {
  // A transaction has already mapped its failure (lib/db/databaseErrors.ts): the driver's error is its cause.
  const cause = err instanceof ApiError ? err.cause : err;
  if (typeof cause !== 'object' || cause === null) return undefined;
  const code = (cause as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? (cause as PgError) : undefined;
}

function statusOf(code: string): number | undefined {
  return STATUS_BY_CODE[code] ?? (code.startsWith('22') || code.startsWith('23') ? 400 : undefined);
}

/** The error as a PostgrestError when it is a refusal, else the service's own mapping. */
export function postgrestRefusal(err: unknown): ApiError {
  if (err instanceof PostgrestError) return err;
  const pg = pgErrorOf(err);
  if (!pg) return err instanceof ApiError ? err : mapDatabaseError(err);
  const fields = { code: pg.code, message: pg.message, details: pg.detail ?? null, hint: pg.hint ?? null };
  // A missing grant or a row-level policy stays the service's Forbidden (403), which the router names the operation and caller on.
  if (pg.code === '42501') return new Forbidden(pg.message, undefined, { cause: err, extensions: fields });
  const status = statusOf(pg.code);
  if (status === undefined) return err instanceof ApiError ? err : mapDatabaseError(err);
  const field = columnOf(pg);
  return new PostgrestError(status, fields, { cause: err, ...(field ? { field } : {}) });
}
