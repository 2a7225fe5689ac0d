import type { ParsedQuery } from './syntaxTree.ts';
import { column, columnSql, orderSql, Params, rowJsonSql, whereSql } from './sqlFragments.ts';
import type { PostgrestTable } from './tableShape.ts';

/** One parameterised statement and what it answers. */
export interface CompiledStatement {
  text: string;
  values: unknown[];
}

/**
 * A read compiles to one statement answering one row: `body` (the page as a JSON array, built by
 * Postgres), `n` (rows in the page) and `total` (the count the client asked for with
 * `Prefer: count=…`, else null).
 */
export interface ReadRow {
  body: string;
  n: number;
  total: string | number | null;
  /** The last row's key (text), when the page walks the primary key: the keyset cursor of the next page. */
  last_key: string | null;
}

export interface CompiledRead extends CompiledStatement {
  /** The first row of the page and the most rows it may hold (after db-max-rows). */
  offset: number;
  limit: number | undefined;
  /** The one key column the page is ordered by (no order=), which a next-page link continues from. */
  keyColumn: string | undefined;
  planned?: PlannedCount;
}

/**
 * A filtered `count=planned|estimated`: the rows the planner expects the filter to pass, read from
 * `EXPLAIN` of `statement` (as PostgREST does) before the read runs, and bound as parameter `slot`
 * (0-based) of the read. Unfiltered, the estimate is pg_class.reltuples, read by the read itself.
 */
export interface PlannedCount {
  statement: CompiledStatement;
  slot: number;
}

/** `statement` with a filtered planned count's estimate (`rows`, from its EXPLAIN) bound. */
export function bindPlannedCount(statement: CompiledStatement, planned: PlannedCount, rows: number): CompiledStatement {
  const values = [...statement.values];
  values[planned.slot] = Math.round(rows);
  return { text: statement.text, values };
}

/** The SQL of the total and, for a filtered estimate, the statement whose plan gives it. */
function totalSql(table: PostgrestTable, query: ParsedQuery, where: string, params: Params): { sql: string; planned?: PlannedCount } {
  const { count } = query.preferences;
  if (count === undefined) return { sql: 'NULL::bigint' };
  const exact = `(SELECT count(*) FROM ${table.relation} AS t ${where})`;
  if (count === 'exact') return { sql: exact };
  let estimate: string;
  let planned: PlannedCount | undefined;
  if (where === '') {
    // pg_class.reltuples is -1 until the table is first analysed: then count exactly.
    estimate = `(SELECT nullif(reltuples, -1)::bigint FROM pg_class WHERE oid = ${params.add(table.relation)}::regclass)`;
  } else {
    const own = new Params();
    planned = {
      statement: { text: `SELECT 1 FROM ${table.relation} AS t ${whereSql(table, query.filters, own)}`, values: own.values },
      slot: params.values.length,
    };
    estimate = `${params.add(null)}::bigint`;
  }
  if (count === 'planned') return { sql: `coalesce(${estimate}, ${exact})`, planned };
  // estimated: exact while the count is small enough to take, the estimate past db-max-rows.
  const threshold = params.add(table.maxRows ?? 1000);
  return {
    sql: `(SELECT CASE WHEN p.estimate IS NULL OR p.estimate <= ${threshold}::bigint THEN ${exact} ELSE p.estimate END FROM (SELECT ${estimate} AS estimate) AS p)`,
    planned,
  };
}

/** The rows a page may hold: the request's limit, cut to the table's db-max-rows. */
function pageLimit(table: PostgrestTable, limit: number | undefined): number | undefined {
  if (table.maxRows === undefined) return limit;
  return limit === undefined ? table.maxRows : Math.min(limit, table.maxRows);
}

/**
 * The one key column a page without order= walks, whose last value continues it in a next-page
 * link (`<key>=gt.<last>`): none for a composite key, or when the owner did not let clients filter
 * on the key (the link would be refused).
 */
function walkedKey(table: PostgrestTable, query: ParsedQuery): string | undefined {
  const key = table.primaryKey.length === 1 ? table.primaryKey[0] : undefined;
  if (key === undefined || query.order.length > 0) return undefined;
  return table.filterable && !table.filterable.includes(key) ? undefined : key;
}

/** GET/HEAD of the collection, checked (checkQuery.ts) first. */
export function compileRead(table: PostgrestTable, query: ParsedQuery & { stripNulls?: boolean }): CompiledRead {
  const params = new Params();
  const { json, lateral } = rowJsonSql(table, query.select, params, query.stripNulls === true);
  const where = whereSql(table, query.filters, params);
  const order = orderSql(table, query.order, params);
  const limit = pageLimit(table, query.range.limit);
  const offset = query.range.offset;
  // Walking the primary key (no order=) of a one-column key: the last row's key continues the walk (keyset).
  const keyColumn = walkedKey(table, query);
  const key = keyColumn === undefined ? 'NULL::text' : `${columnSql(column(table, keyColumn))}::text`;
  // The page's rows first, their JSON after: built in the same select as the sort, Postgres would
  // make JSON of every row the filter passes (600,000 of a million for an unindexed filter, seconds)
  // to keep 100. A subquery with a LIMIT is never flattened, so its order is the page's.
  const rows = `SELECT t.* FROM ${table.relation} AS t ${where} ${order} LIMIT ${params.add(limit ?? null)}::bigint OFFSET ${params.add(offset)}::bigint`;
  const page = `SELECT ${json} AS item, ${key} AS pgrst_key FROM (${rows}) AS t ${lateral}`;
  const total = totalSql(table, query, where, params);
  const text =
    `SELECT coalesce(json_agg(pgrst_page.item), '[]')::text AS body, count(*)::int AS n, ${total.sql} AS total, ` +
    `(array_agg(pgrst_page.pgrst_key))[count(*)] AS last_key FROM (${page}) AS pgrst_page`;
  return { text, values: params.values, offset, limit, keyColumn, planned: total.planned };
}

/**
 * A streamed read (lib/postgrest/streamRead.ts) is two statements in one snapshot: `head` answers
 * one row like a read's (n, total, last_key, no body) so the status and Content-Range are known
 * before the first byte, and `rows` is the page, one JSON text per row, for a cursor to walk.
 */
export interface CompiledStream {
  /** The head's values take a filtered planned count at `planned.slot`. */
  head: CompiledStatement;
  rows: CompiledStatement;
  offset: number;
  limit: number | undefined;
  keyColumn: string | undefined;
  planned?: PlannedCount;
}

export function compileStream(table: PostgrestTable, query: ParsedQuery & { stripNulls?: boolean }): CompiledStream {
  const limit = pageLimit(table, query.range.limit);
  const offset = query.range.offset;
  const keyColumn = walkedKey(table, query);

  const rowParams = new Params();
  const { json, lateral } = rowJsonSql(table, query.select, rowParams, query.stripNulls === true);
  const rowsText = `SELECT ${json}::text AS item FROM ${table.relation} AS t ${lateral} ${whereSql(table, query.filters, rowParams)} ${orderSql(table, query.order, rowParams)} LIMIT ${rowParams.add(limit ?? null)}::bigint OFFSET ${rowParams.add(offset)}::bigint`;

  const headParams = new Params();
  const where = whereSql(table, query.filters, headParams);
  const order = orderSql(table, query.order, headParams);
  // The page's last key is its greatest: a page walking the key is ordered by it, ascending.
  const key = keyColumn === undefined ? 'NULL::text' : columnSql(column(table, keyColumn));
  const page = `SELECT ${key} AS pgrst_key FROM ${table.relation} AS t ${where} ${order} LIMIT ${headParams.add(limit ?? null)}::bigint OFFSET ${headParams.add(offset)}::bigint`;
  const total = totalSql(table, query, where, headParams);
  const headText = `SELECT '' AS body, count(*)::int AS n, ${total.sql} AS total, max(pgrst_page.pgrst_key)::text AS last_key FROM (${page}) AS pgrst_page`;
  return {
    head: { text: headText, values: headParams.values },
    rows: { text: rowsText, values: rowParams.values },
    offset,
    limit,
    keyColumn,
    planned: total.planned,
  };
}
