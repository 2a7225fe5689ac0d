import type { HeaderMap } from './parseQuery.ts';
import type { DialectRequest } from './serveTable.ts';

/** The OpenAPI extension marking an operation that speaks PostgREST's dialect (a generated table's collection). */
export const POSTGREST_EXTENSION = 'x-postgrest';

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
