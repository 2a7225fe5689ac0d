import { ApiError, type ProblemBody } from '../errors.ts';

/** The fields a PostgREST client reads from an error body (`error.code`, `error.message`, …). */
export interface PostgrestFields {
  /** `PGRST1xx` for a refused request, a SQLSTATE for a database refusal. */
  code: string;
  message: string;
  details: string | null;
  hint: string | null;
}

const TITLES: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable',
};

/**
 * A refusal in PostgREST's terms: the RFC 9457 problem body carries `code`, `message`, `details`
 * and `hint` as extension members, so `@supabase/postgrest-js` (which parses the body as its error)
 * sees what it would see from PostgREST. `field` names the query parameter or header at fault.
 */
export class PostgrestError extends ApiError {
  readonly code: string;
  readonly details: string | null;
  readonly hint: string | null;

  constructor(
    status: number,
    fields: { code: string; message: string; details?: string | null; hint?: string | null },
    options: { field?: string; cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(status, TITLES[status] ?? 'Bad Request', fields.message, options);
    this.code = fields.code;
    this.details = fields.details ?? null;
    this.hint = fields.hint ?? null;
  }

  get fields(): PostgrestFields {
    return { code: this.code, message: this.message, details: this.details, hint: this.hint };
  }

  override toProblem(requestId?: string): ProblemBody {
    const body = super.toProblem(requestId);
    if (this.details) body.detail = `${this.message}: ${this.details}`;
    return { ...body, ...this.fields };
  }
}

/** PGRST100: the query string does not parse; `parameter` is the query parameter at fault. */
export function queryParseError(parameter: string, message: string, details?: string, hint?: string): PostgrestError {
  return new PostgrestError(400, { code: 'PGRST100', message: `"${short(parameter)}": ${message}`, details, hint }, { field: parameter });
}

/** 42703 as PostgREST reports it: a column the table does not have. */
export function unknownColumn(parameter: string, table: string, column: string): PostgrestError {
  return new PostgrestError(400, { code: '42703', message: `column ${table}.${short(column)} does not exist` }, { field: parameter });
}

/** A parameter or value cut short for a message (a hostile 10 kB value is not echoed back whole). */
export function short(text: string): string {
  return text.length > 64 ? `${text.slice(0, 61)}...` : text;
}
