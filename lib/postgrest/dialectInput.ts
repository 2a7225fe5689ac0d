import { type HeaderMap, parseAccept, parseRangeHeader } from './parseQuery.ts';
import type { DialectRequest } from './serveTable.ts';

/** The OpenAPI extension marking an operation that speaks PostgREST's dialect (a generated table's collection). */
export const POSTGREST_EXTENSION = 'x-postgrest';
/** On a dialect read: the table's primary key columns, so the router can tell a point read from a scan. */
export const POSTGREST_KEY_EXTENSION = 'x-postgrest-key';

/**
 * What the router hands a dialect operation as its `query`: the raw query string, normalised
 * (parameters sorted by name, so the same request in another order is the same cache entry), and
 * the request headers that change the answer. Being the validated query, all of it is part of the
 * results cache's key.
 */
export interface DialectQuery {
  search: string;
  accept?: string;
  prefer?: string;
  range?: string;
}

const ANSWER_HEADERS = ['accept', 'prefer', 'range'] as const;

function headerText(headers: HeaderMap, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

export function dialectQuery(params: URLSearchParams, headers: HeaderMap): DialectQuery {
  const sorted = new URLSearchParams(params);
  // Stable: repeated names keep their order (filters on one column are ANDed either way).
  sorted.sort();
  const query: DialectQuery = { search: sorted.toString() };
  for (const name of ANSWER_HEADERS) {
    const value = headerText(headers, name);
    if (value !== undefined && value !== '') query[name] = value;
  }
  return query;
}

/** The dialect request a handler passes to readTable / writeTable. */
export function dialectRequest(query: DialectQuery): DialectRequest {
  const { search, ...headers } = query;
  return { search, headers };
}

/**
 * A JSON page that may hold more rows than this is streamed rather than built whole; below it, one
 * statement building the page is cheaper than a cursor and the answer may be cached.
 */
const STREAM_FROM_ROWS = 1000;

/** The smallest of the row bounds present (limit=, the Range header, db-max-rows). */
function pageBound(query: DialectQuery, maxRows: number): number {
  let bound = maxRows;
  const limit = new URLSearchParams(query.search).get('limit');
  if (limit !== null && /^\d{1,15}$/.test(limit)) bound = Math.min(bound, Number(limit));
  const range = parseRangeHeader(query.range);
  if (range?.limit !== undefined) bound = Math.min(bound, range.limit);
  return bound;
}

/**
 * Whether a GET is answered as a stream (lib/postgrest/streamRead.ts), decided before the cache:
 * CSV always (an export), a JSON array when its page may pass STREAM_FROM_ROWS rows, one object
 * never. A request whose headers do not parse is not streamed: its refusal comes from the parser.
 */
export function streamsAnswer(validated: object, maxRows: number): boolean {
  const query = validated as DialectQuery;
  try {
    const { shape } = parseAccept(query.accept);
    if (shape === 'csv') return true;
    return shape === 'array' && pageBound(query, maxRows) > STREAM_FROM_ROWS;
  } catch {
    return false;
  }
}

/**
 * Whether a read asks for one object by an equality on each `key` column and nothing else (what
 * postgrest-js' `.eq('id', 7).single()` sends): a point read, answered by the batched lookup by key
 * (lib/postgrest/keyRead.ts), so it does not take a scanning read's share of the pool. A cheap look
 * at the raw query; the handler's parsed check (keyOfSingleRead) is the one that decides the SQL.
 */
export function asksOneRowByKey(validated: object, key: readonly string[]): boolean {
  const query = validated as DialectQuery;
  if (key.length === 0 || query.prefer !== undefined || query.range !== undefined) return false;
  try {
    if (parseAccept(query.accept).shape !== 'object') return false;
  } catch {
    return false;
  }
  const seen = new Set<string>();
  for (const [name, value] of new URLSearchParams(query.search)) {
    if (name === 'select' && value === '*') continue;
    if (!key.includes(name) || seen.has(name) || !value.startsWith('eq.')) return false;
    seen.add(name);
  }
  return seen.size === key.length;
}
