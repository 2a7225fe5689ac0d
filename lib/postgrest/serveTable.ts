import type { Database } from '../db/database.ts';
import { checkQuery } from './checkQuery.ts';
import { bindPlannedCount, type CompiledStatement, compileRead, type ReadRow } from './compileRead.ts';
import { compileDelete, compileInsert, compilePut, compileUpdate, type WriteRow } from './compileWrite.ts';
import { postgrestRefusal } from './databaseRefusal.ts';
import { type DialectResponse, nextPageLink, readResponse, writeRefusal, writeResponse } from './dialectResponse.ts';
import { DEFAULT_BOUNDS, type HeaderMap, type ParsedRequest, parseQuery, type QueryBounds } from './parseQuery.ts';
import { selectNames } from './sqlFragments.ts';
import { statementName } from './statementNames.ts';
import type { PostgrestTable } from './tableShape.ts';

/**
 * A generated table's collection in PostgREST's dialect, from the raw request to the response:
 * parse, check against the table, compile one statement, run it, shape the answer. Handlers call
 * these with their table's metadata; nothing here knows HTTP frameworks.
 */
export interface DialectRequest {
  /** The raw query string, without `?`. */
  search: string;
  /** Lower-case header names. */
  headers: HeaderMap;
  bounds?: QueryBounds;
}

/** The request parsed and checked against the table: every refusal of the grammar happens here, before SQL. */
export function parseForTable(table: PostgrestTable, request: DialectRequest): ParsedRequest {
  const query = parseQuery(request.search, request.headers, request.bounds ?? DEFAULT_BOUNDS);
  checkQuery(table, query);
  return query;
}

/** GET/HEAD: one statement for the page, its count when asked, and the JSON Postgres built. */
export function readTable(
  db: Pick<Database, 'query' | 'plan'>,
  table: PostgrestTable,
  request: DialectRequest,
  signal?: AbortSignal,
): Promise<DialectResponse> {
  return readParsed(db, table, parseForTable(table, request), request.search, signal);
}

/** readTable of a request already parsed and checked (parseForTable); `search` is its query string, for the next page's link. */
export async function readParsed(
  db: Pick<Database, 'query' | 'plan'>,
  table: PostgrestTable,
  query: ParsedRequest,
  search: string,
  signal?: AbortSignal,
): Promise<DialectResponse> {
  const compiled = compileRead(table, query);
  let row: ReadRow;
  try {
    const { planned } = compiled;
    const statement: CompiledStatement = planned ? bindPlannedCount(compiled, planned, (await db.plan(planned.statement)).rows) : compiled;
    const name = statementName(statement.text);
    const result = await db.query<ReadRow>({ ...(name ? { name } : {}), text: statement.text, values: statement.values }, signal ? { signal } : {});
    row = result.rows[0] as ReadRow;
  } catch (err) {
    throw postgrestRefusal(err);
  }
  const response = readResponse(query, compiled, row, selectNames(table, query.select));
  // A Range header asks for rows by position: its pages are not continued by key.
  const next = query.rangeRequested ? undefined : nextPageLink(`/${table.name}`, search, compiled, row);
  if (next) response.headers.link = next;
  return response;
}

export type WriteMethod = 'POST' | 'PATCH' | 'DELETE' | 'PUT';

/**
 * POST/PATCH/DELETE/PUT in one transaction: the statement runs, and a result the client's
 * preferences refuse (more rows than max-affected with handling=strict, not one row for a single
 * object) rolls back before anything commits.
 */
export async function writeTable(
  db: Pick<Database, 'transaction'>,
  table: PostgrestTable,
  method: WriteMethod,
  request: DialectRequest,
  body: unknown,
): Promise<DialectResponse> {
  const query = parseForTable(table, request);
  const compiled =
    method === 'POST'
      ? compileInsert(table, query, body)
      : method === 'PATCH'
        ? compileUpdate(table, query, body)
        : method === 'PUT'
          ? compilePut(table, query, body)
          : compileDelete(table, query);
  let row: WriteRow;
  try {
    row = await db.transaction(async (client) => {
      const name = statementName(compiled.text);
      const result = await client.query<WriteRow>({ ...(name ? { name } : {}), text: compiled.text, values: compiled.values });
      const written = result.rows[0] as WriteRow;
      const refusal = writeRefusal(query, written);
      if (refusal) throw refusal;
      return written;
    });
  } catch (err) {
    throw postgrestRefusal(err);
  }
  return writeResponse(method, query, row, selectNames(table, query.select), { path: `/${table.name}`, key: table.primaryKey });
}
