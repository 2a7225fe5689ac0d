import type { CompiledRead, ReadRow } from './compileRead.ts';
import type { WriteRow } from './compileWrite.ts';
import { PostgrestError } from './postgrestError.ts';
import type { ParsedRequest } from './parseQuery.ts';

/**
 * The HTTP answer to a compiled statement's row, as PostgREST gives it: Content-Range (and 206 for a
 * partial page of a counted result, 416 past its end), the media type the client accepted, and
 * Preference-Applied. Bodies are text, ready to send.
 */
export interface DialectResponse {
  status: number;
  headers: Record<string, string>;
  body: string | undefined;
}

const MEDIA_TYPES = {
  array: 'application/json; charset=utf-8',
  object: 'application/vnd.pgrst.object+json; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
} as const;

function preferenceApplied(query: ParsedRequest): Record<string, string> {
  return query.preferences.applied.length > 0 ? { 'preference-applied': query.preferences.applied.join(', ') } : {};
}

/** 406 PGRST116: one object was asked for and `n` rows answered. */
function notOneRow(n: number): PostgrestError {
  return new PostgrestError(406, {
    code: 'PGRST116',
    message: 'JSON object requested, multiple (or no) rows returned',
    details: `The result contains ${n} rows`,
  });
}

/** A value as one CSV field (RFC 4180): nulls empty, objects as JSON, quoted when it must be. */
function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** A JSON array of objects as CSV, headed by `names` (the select list's member names). */
function csvFromJson(json: string, names: readonly string[]): string {
  const rows = JSON.parse(json) as Array<Record<string, unknown>>;
  return csvLine(names) + csvLines(rows, names);
}

/** CSV's header line: the select list's member names. */
export const csvLine = (fields: readonly unknown[]): string => `${fields.map(csvField).join(',')}\n`;

/** Rows (objects) as CSV lines, each ended by a newline. */
export function csvLines(rows: ReadonlyArray<Record<string, unknown>>, names: readonly string[]): string {
  let text = '';
  for (const row of rows) text += csvLine(names.map((name) => row[name]));
  return text;
}

/**
 * RFC 8288 `Link: <…>; rel="next"` for a full page that walks the primary key: the same request
 * continued after the page's last key (`id=gt.<last>`), which costs the same at any depth, unlike
 * an offset. PostgREST clients ignore it; scripts can follow it.
 */
export function nextPageLink(
  path: string,
  search: string,
  compiled: Pick<CompiledRead, 'keyColumn' | 'limit'>,
  row: Pick<ReadRow, 'n' | 'last_key'>,
): string | undefined {
  if (compiled.keyColumn === undefined || row.last_key === null || compiled.limit === undefined || row.n < compiled.limit) return undefined;
  const params = new URLSearchParams(search);
  params.delete('offset');
  params.set('limit', String(compiled.limit));
  params.append(compiled.keyColumn, `gt.${row.last_key}`);
  return `<${path}?${params.toString()}>; rel="next"`;
}

/**
 * Status and headers of a read from its counts: Content-Range, 206 for a partial page of a counted
 * result, 416 past its end, PGRST116 when one object was asked for and not one row answered.
 * `offset` is the page's first row. A streamed read calls it before its first row is sent.
 */
export function readHead(query: ParsedRequest, offset: number, row: Pick<ReadRow, 'n' | 'total'>): { status: number; headers: Record<string, string> } {
  const total = row.total === null ? undefined : Number(row.total);
  const upper = offset + row.n - 1;
  const range = `${row.n > 0 ? `${offset}-${upper}` : '*'}/${total ?? '*'}`;
  if (total !== undefined && offset > total) {
    throw new PostgrestError(
      416,
      { code: 'PGRST103', message: 'Requested range not satisfiable', details: `An offset of ${offset} was requested, but there are only ${total} rows.` },
      { field: 'offset', headers: { 'content-range': `*/${total}` } },
    );
  }
  const headers = { 'content-range': range, ...preferenceApplied(query) };
  if (query.shape === 'object') {
    if (row.n !== 1) throw notOneRow(row.n);
    return { status: 200, headers: { ...headers, 'content-type': MEDIA_TYPES.object } };
  }
  const status = total !== undefined && row.n < total ? 206 : 200;
  return { status, headers: { ...headers, 'content-type': query.shape === 'csv' ? MEDIA_TYPES.csv : MEDIA_TYPES.array } };
}

/** The answer of a checked, compiled read; `names` are the members of each row (for CSV's header). */
export function readResponse(query: ParsedRequest, compiled: CompiledRead, row: ReadRow, names: readonly string[]): DialectResponse {
  const { status, headers } = readHead(query, compiled.offset, row);
  if (query.shape === 'object') return { status, headers, body: row.body.slice(1, -1) };
  if (query.shape === 'csv') return { status, headers, body: csvFromJson(row.body, names) };
  return { status, headers, body: row.body };
}

/** PGRST124: `Prefer: max-affected=N` with handling=strict, and more rows would change. */
function tooManyAffected(n: number): PostgrestError {
  return new PostgrestError(400, {
    code: 'PGRST124',
    message: 'Query result exceeds max-affected preference constraint',
    details: `The query affects ${n} rows`,
  });
}

/**
 * Whether a write's outcome must be undone before it commits: more rows than `max-affected`
 * (with handling=strict), or not exactly one row when one object was asked for.
 */
export function writeRefusal(query: ParsedRequest, row: WriteRow): PostgrestError | undefined {
  const { maxAffected, handling } = query.preferences;
  if (maxAffected !== undefined && handling === 'strict' && row.n > maxAffected) return tooManyAffected(row.n);
  if (query.shape === 'object' && query.preferences.return === 'representation' && row.n !== 1) return notOneRow(row.n);
  return undefined;
}

/** The answer of a committed write: 201 for POST, 200 with the rows or 204 without for the others. */
export function writeResponse(
  method: 'POST' | 'PATCH' | 'DELETE' | 'PUT',
  query: ParsedRequest,
  row: WriteRow,
  names: readonly string[],
  location?: { path: string; key: readonly string[] },
): DialectResponse {
  const headers: Record<string, string> = { ...preferenceApplied(query) };
  if (query.preferences.count !== undefined) headers['content-range'] = `*/${row.n}`;
  // Prefer: return=headers-only on a one-row POST: where the row is, as a filter on its key.
  if (method === 'POST' && location && row.n === 1 && row.location_key) {
    const values = JSON.parse(row.location_key) as unknown[];
    const params = new URLSearchParams(location.key.map((name, i) => [name, `eq.${String(values[i])}`]));
    headers.location = `${location.path}?${params.toString()}`;
  }
  const created = method === 'POST';
  if (query.preferences.return !== 'representation' || row.body === null) {
    return { status: created ? 201 : 204, headers, body: undefined };
  }
  const status = created ? 201 : 200;
  if (query.shape === 'object') return { status, headers: { ...headers, 'content-type': MEDIA_TYPES.object }, body: row.body.slice(1, -1) };
  if (query.shape === 'csv') return { status, headers: { ...headers, 'content-type': MEDIA_TYPES.csv }, body: csvFromJson(row.body, names) };
  return { status, headers: { ...headers, 'content-type': MEDIA_TYPES.array }, body: row.body };
}
