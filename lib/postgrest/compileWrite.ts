import { quoteIdent } from '../db/sqlIdentifiers.ts';
import { writableColumn } from './checkQuery.ts';
import type { CompiledStatement } from './compileRead.ts';
import { PostgrestError } from './postgrestError.ts';
import { column, columnSql, fill, Params, rowJsonSql, whereSql } from './sqlFragments.ts';
import type { ParsedQuery } from './syntaxTree.ts';
import type { PostgrestTable, TableColumn } from './tableShape.ts';

/**
 * Writes compile to one statement each: the change in a CTE, then one row with `n` (rows
 * affected) and `body` (the changed rows as a JSON array when `Prefer: return=representation`,
 * else null). The request body travels whole as one JSON parameter; Postgres reads each member as
 * its column's type (json_populate_record), so a bulk insert is one statement whatever its size.
 */
export interface WriteRow {
  n: number;
  body: string | null;
  /** With `Prefer: return=headers-only`: the first written row's key, a JSON array. */
  location_key?: string | null;
}

type Query = ParsedQuery & { stripNulls?: boolean };

const invalidBody = (message: string, details?: string) => new PostgrestError(400, { code: 'PGRST102', message, details }, { field: 'body' });

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The written rows and the changed rows' JSON: `WITH pgrst_changed AS (dml RETURNING …) SELECT n, body`. */
function wrap(table: PostgrestTable, query: Query, dml: string, params: Params): CompiledStatement {
  const preference = query.preferences.return;
  if (preference === 'headers-only' && table.primaryKey.length > 0) {
    // The first written row's key, for the Location of a single row (PostgREST's headers-only).
    const key = `json_build_array(${table.primaryKey.map((name) => columnSql(column(table, name))).join(', ')})::text`;
    return {
      text: `WITH pgrst_changed AS (${dml} RETURNING t.*) SELECT count(*)::int AS n, NULL::text AS body, (array_agg(${key}))[1] AS location_key FROM pgrst_changed AS t`,
      values: params.values,
    };
  }
  if (preference !== 'representation')
    return { text: `WITH pgrst_changed AS (${dml} RETURNING 1) SELECT count(*)::int AS n, NULL::text AS body FROM pgrst_changed`, values: params.values };
  const { json, lateral } = rowJsonSql(table, query.select, params, query.stripNulls === true);
  return {
    text: `WITH pgrst_changed AS (${dml} RETURNING t.*) SELECT count(*)::int AS n, coalesce(json_agg(${json}), '[]')::text AS body FROM pgrst_changed AS t ${lateral}`,
    values: params.values,
  };
}

/** A member of the JSON object `object` (SQL) read as column `c`; `row` is json_populate_record of it. */
function memberValue(c: TableColumn, object: string, row: string, params: Params): string {
  // A column with an input of its own (bytea from base64) reads the member's text; the rest come typed from the record.
  if (c.input !== undefined && !c.input.startsWith('{}::')) return fill(c.input, `(${object} ->> ${params.add(c.name)}::text)`);
  return `${row}.${quoteIdent(c.name)}`;
}

/** The body's rows, checked: objects only, members that are columns the table lets you write. */
function bodyRows(body: unknown): Record<string, unknown>[] {
  const rows = Array.isArray(body) ? body : [body];
  if (!rows.every(isObject)) throw invalidBody('The request body must be a JSON object or an array of objects');
  // PostgREST answers [] with 201 and no change; a write that writes nothing is refused here, so a client's empty batch is noticed.
  if (rows.length === 0) throw invalidBody('The request body holds no rows');
  return rows;
}

/** The columns an insert sets: columns= when given, else every member named by some row, in first-seen order. */
function insertColumns(table: PostgrestTable, query: Query, rows: readonly Record<string, unknown>[]): TableColumn[] {
  if (query.columns) return query.columns.map((name) => writableColumn(table, name, 'columns'));
  const names = new Set<string>();
  for (const row of rows) for (const name of Object.keys(row)) names.add(name);
  return [...names].map((name) => writableColumn(table, name, 'body'));
}

/** POST: one row or many; an upsert with `Prefer: resolution=…` (on on_conflict=, else the primary key). */
export function compileInsert(table: PostgrestTable, query: Query, body: unknown): CompiledStatement {
  const rows = bodyRows(body);
  const columns = insertColumns(table, query, rows);
  const params = new Params();
  const source = params.add(JSON.stringify(rows));
  const missingDefault = query.preferences.missing === 'default';
  const values = columns.map((c) => {
    const value = memberValue(c, 'pgrst_body.obj', 'pgrst_row', params);
    if (!missingDefault) return value;
    return `CASE WHEN pgrst_body.obj::jsonb ? ${params.add(c.name)}::text THEN ${value} ELSE ${c.default ?? 'NULL'} END`;
  });
  const names = columns.map((c) => quoteIdent(c.name));
  let dml =
    `INSERT INTO ${table.relation} AS t ${names.length > 0 ? `(${names.join(', ')})` : ''} ` +
    `SELECT ${values.join(', ')} FROM json_array_elements(${source}::json) WITH ORDINALITY AS pgrst_body(obj, n) ` +
    `CROSS JOIN LATERAL json_populate_record(NULL::${table.relation}, pgrst_body.obj) AS pgrst_row ORDER BY pgrst_body.n`;
  const resolution = query.preferences.resolution;
  if (resolution) {
    const target = (query.onConflict ?? table.primaryKey).map((name) => quoteIdent(column(table, name).name));
    if (target.length === 0)
      throw new PostgrestError(400, { code: 'PGRST100', message: `${table.name} has no primary key: give on_conflict=` }, { field: 'on_conflict' });
    const set = names.map((name) => `${name} = EXCLUDED.${name}`);
    dml += ` ON CONFLICT (${target.join(', ')}) ${resolution === 'ignore-duplicates' || set.length === 0 ? 'DO NOTHING' : `DO UPDATE SET ${set.join(', ')}`}`;
  }
  return wrap(table, query, dml, params);
}

/** PATCH and DELETE change rows chosen by a filter only, and take no limit. */
function requireFilter(query: Query, verb: 'UPDATE' | 'DELETE'): void {
  if (query.filters.length === 0) {
    throw new PostgrestError(
      400,
      {
        code: '21000',
        message: `${verb} requires a WHERE clause`,
        hint: 'add a filter, e.g. ?id=eq.1; to change every row, filter on a condition every row meets',
      },
      { field: 'query' },
    );
  }
  if (query.range.offset !== 0 || query.range.limit !== undefined) {
    throw new PostgrestError(
      400,
      { code: 'PGRST100', message: `limit and offset do not apply to ${verb === 'UPDATE' ? 'PATCH' : 'DELETE'} here` },
      { field: 'limit' },
    );
  }
}

/** PATCH: the body's members set on every row the filters match. */
export function compileUpdate(table: PostgrestTable, query: Query, body: unknown): CompiledStatement {
  requireFilter(query, 'UPDATE');
  if (!isObject(body)) throw invalidBody('The request body must be a JSON object');
  const params = new Params();
  const names = Object.keys(body);
  const columns = names.map((name) => writableColumn(table, name, 'body'));
  if (columns.length === 0) {
    // Nothing to set: no row changes, as PostgREST answers an empty PATCH.
    return { text: `SELECT 0 AS n, ${query.preferences.return === 'representation' ? "'[]'" : 'NULL'}::text AS body`, values: [] };
  }
  const source = params.add(JSON.stringify(body));
  const set = columns.map((c) => `${quoteIdent(c.name)} = ${memberValue(c, `${source}::json`, 'pgrst_row', params)}`);
  const where = whereSql(table, query.filters, params);
  const dml = `UPDATE ${table.relation} AS t SET ${set.join(', ')} FROM json_populate_record(NULL::${table.relation}, ${source}::json) AS pgrst_row ${where}`;
  return wrap(table, query, dml, params);
}

/** DELETE: every row the filters match. */
export function compileDelete(table: PostgrestTable, query: Query): CompiledStatement {
  requireFilter(query, 'DELETE');
  const params = new Params();
  const where = whereSql(table, query.filters, params);
  return wrap(table, query, `DELETE FROM ${table.relation} AS t ${where}`, params);
}

/**
 * PUT: one row, addressed by `pk=eq.value` for every primary-key column and nothing else, with
 * every column in the body and the key in the body equal to the URL's: an insert or a full update.
 */
export function compilePut(table: PostgrestTable, query: Query, body: unknown): CompiledStatement {
  const keyFilters = new Map<string, string>();
  for (const filter of query.filters) {
    if (filter.kind !== 'condition' || filter.negated || filter.predicate.op !== 'eq' || filter.predicate.quantifier || filter.field.path.length > 0) break;
    if (!table.primaryKey.includes(filter.field.column) || keyFilters.has(filter.field.column)) break;
    keyFilters.set(filter.field.column, filter.predicate.value);
  }
  if (table.primaryKey.length === 0 || keyFilters.size !== table.primaryKey.length || keyFilters.size !== query.filters.length) {
    throw new PostgrestError(
      405,
      { code: 'PGRST105', message: "Filters must include all and only primary key columns with 'eq' operators" },
      { field: 'query' },
    );
  }
  if (query.range.offset !== 0 || query.range.limit !== undefined) {
    throw new PostgrestError(400, { code: 'PGRST114', message: 'limit/offset querystring parameters are not allowed for PUT' }, { field: 'limit' });
  }
  if (!isObject(body)) throw invalidBody('The request body must be one JSON object');
  for (const name of Object.keys(body)) writableColumn(table, name, 'body');
  const missing = table.columns.filter((c) => !c.readOnly && !Object.hasOwn(body, c.name));
  if (missing.length > 0) throw invalidBody('You must specify all columns in the payload when using PUT', `missing: ${missing.map((c) => c.name).join(', ')}`);
  for (const [name, value] of keyFilters) {
    if (String(body[name]) !== value) {
      throw new PostgrestError(400, { code: 'PGRST115', message: 'Payload values do not match URL in primary key column(s)' }, { field: name });
    }
  }
  return compileInsert(
    table,
    { ...query, columns: undefined, preferences: { ...query.preferences, resolution: 'merge-duplicates' }, onConflict: table.primaryKey },
    body,
  );
}
