import { ApiError, BadRequest, Conflict, InternalError } from '../errors.ts';

/**
 * Rows the database refused, as 4xx problems naming what was refused. The service maps every
 * driver failure in lib/db/databaseErrors.ts, where an unknown SQLSTATE stays a 500: a generated
 * table operation knows more, since the refused values came from its own input. A data exception
 * there (class 22: text Postgres cannot read as the column's type, a value out of range) or an
 * integrity violation (class 23) is the caller's row, never a server fault.
 */
export interface RefusalContext {
  /** Constraint name → the columns it covers, so a refusal names columns, not only a constraint. */
  constraints: Readonly<Record<string, readonly string[]>>;
  /** The input members the statement used, to name the field whose value Postgres could not read. */
  fields: Readonly<Record<string, unknown>>;
  /** What to name when no single field can be told apart: `body` for writes, a parameter for reads. */
  fallbackField: string;
}

interface PgError {
  code: string;
  message: string;
  constraint?: string;
  column?: string;
  detail?: string;
}

function pgErrorOf(err: unknown): PgError | undefined {
  const cause = err instanceof InternalError ? err.cause : err instanceof ApiError ? undefined : err;
  if (typeof cause !== 'object' || cause === null) return undefined;
  const code = (cause as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? (cause as PgError) : undefined;
}

/** The field whose value Postgres quoted in its message (`invalid input syntax for type uuid: "x"`). */
function fieldNamedBy(message: string, fields: Readonly<Record<string, unknown>>): string | undefined {
  for (const [name, value] of Object.entries(fields)) {
    const candidates = Array.isArray(value) ? value : [value];
    for (const candidate of candidates) {
      if (candidate === null || candidate === undefined || typeof candidate === 'object') continue;
      if (message.includes(`"${String(candidate)}"`)) return name;
    }
  }
  return undefined;
}

/** `Key (a, b)=(…) already exists.` → ['a', 'b'] when the constraint is not known by name. */
function keyColumnsIn(detail: string | undefined): string[] {
  const columns = /^Key \((.+?)\)=/.exec(detail ?? '')?.[1];
  return columns ? columns.split(', ') : [];
}

/** The refusal as a 4xx problem, or `err` unchanged when it is not a refused row. */
export function refusedRow(err: unknown, context: RefusalContext): unknown {
  const pgError = pgErrorOf(err);
  if (!pgError) return err;
  const { code, message } = pgError;
  const columns = (pgError.constraint && context.constraints[pgError.constraint]) || keyColumnsIn(pgError.detail);
  const named = columns.length > 0 ? ` (${columns.join(', ')})` : '';
  switch (code) {
    case '23505':
      return new Conflict(
        `A row with the same ${columns.join(', ') || 'key'} already exists (constraint ${pgError.constraint ?? 'unique'})`,
        columns[0] ?? context.fallbackField,
      );
    case '23503':
      return new Conflict(`${message}${named}`, columns[0] ?? context.fallbackField);
    case '23P01':
      return new Conflict(`${message}${named}`, columns[0] ?? context.fallbackField);
    case '23514':
      return new BadRequest(`${message}${named}`, columns.length === 1 ? columns[0] : (pgError.constraint ?? context.fallbackField));
    case '23502':
      return new BadRequest(`${pgError.column ?? 'a column'} must not be null`, pgError.column ?? context.fallbackField);
  }
  if (code.startsWith('22')) {
    const field = fieldNamedBy(message, context.fields) ?? context.fallbackField;
    return new BadRequest(`${field}: ${message}`, field);
  }
  return err;
}
