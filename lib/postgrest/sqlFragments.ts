import { quoteIdent } from '../db/sqlIdentifiers.ts';
import type { Condition, FieldRef, Filter, OrderTerm, SelectColumn, SelectItem } from './syntaxTree.ts';
import { columnOf, type PostgrestTable, type TableColumn } from './tableShape.ts';

/**
 * The pieces every compiled statement is made of. Values from the request only ever enter as
 * bound parameters (`Params.add`); identifiers only as metadata names through quoteIdent. The
 * row alias is always `t`.
 */
export class Params {
  readonly values: unknown[] = [];
  /** `$n` for a new parameter holding `value`. */
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/** The column known to exist (checkQuery.ts ran first). */
export function column(table: PostgrestTable, name: string): TableColumn {
  const found = columnOf(table, name);
  if (!found) throw new Error(`compiler reached an unchecked column ${JSON.stringify(name)}`);
  return found;
}

export const columnSql = (c: TableColumn): string => `t.${quoteIdent(c.name)}`;

/** `{}` in a template replaced by `sql`. */
export const fill = (template: string, sql: string): string => template.replaceAll('{}', sql);

/** The SQL reading parameter `param` as the column's type. */
const inputSql = (c: TableColumn, param: string): string => fill(c.input ?? `{}::${c.sql}`, param);

/** A field with its JSON path: `t."meta" -> $3::text ->> $4::int`. Keys are parameters. */
function fieldSql(table: PostgrestTable, field: FieldRef, params: Params): string {
  let sql = columnSql(column(table, field.column));
  for (const step of field.path) {
    const index = /^-?\d{1,9}$/.test(step.key);
    sql = `(${sql} ${step.arrow} ${params.add(index ? Number(step.key) : step.key)}::${index ? 'int' : 'text'})`;
  }
  return sql;
}

/** How the right-hand side of a condition is read: as the column's type, as text or as jsonb. */
function operandReader(table: PostgrestTable, field: FieldRef): (param: string) => string {
  const last = field.path[field.path.length - 1];
  if (!last) {
    const c = column(table, field.column);
    return (param) => inputSql(c, param);
  }
  return last.arrow === '->>' ? (param) => `${param}::text` : (param) => `${param}::jsonb`;
}

const COMPARISON_SQL: Readonly<Record<string, string>> = {
  eq: '=',
  neq: '<>',
  gt: '>',
  gte: '>=',
  lt: '<',
  lte: '<=',
  like: 'LIKE',
  ilike: 'ILIKE',
  match: '~',
  imatch: '~*',
  isdistinct: 'IS DISTINCT FROM',
};

const TSQUERY: Readonly<Record<string, string>> = { fts: 'to_tsquery', plfts: 'plainto_tsquery', phfts: 'phraseto_tsquery', wfts: 'websearch_to_tsquery' };

const IS_SQL: Readonly<Record<string, string>> = { null: 'IS NULL', not_null: 'IS NOT NULL', true: 'IS TRUE', false: 'IS FALSE', unknown: 'IS UNKNOWN' };

/** PostgREST lets `*` stand for `%` in like patterns (a `%` is awkward in a URL). */
const likePattern = (op: string, value: string): string => (op === 'like' || op === 'ilike' ? value.replaceAll('*', '%') : value);

function conditionSql(table: PostgrestTable, condition: Condition, params: Params): string {
  const { field, predicate } = condition;
  let left = fieldSql(table, field, params);
  // json has no equality operator; jsonb has, and compares by value.
  if (field.path.length > 0 && field.path[field.path.length - 1]?.arrow === '->') left = `${left}::jsonb`;
  const read = operandReader(table, field);
  const c = column(table, field.column);
  let sql: string;
  switch (predicate.op) {
    case 'in':
      sql = predicate.values.length === 0 ? 'false' : `${left} IN (${predicate.values.map((v) => read(params.add(v))).join(', ')})`;
      break;
    case 'is':
      sql = `${left} ${IS_SQL[predicate.value]}`;
      break;
    case 'cs':
    case 'cd':
    case 'ov': {
      const operator = predicate.op === 'cs' ? '@>' : predicate.op === 'cd' ? '<@' : '&&';
      const type = field.path.length > 0 || c.kind === 'json' ? 'jsonb' : c.sql;
      sql = `${field.path.length === 0 && c.kind === 'json' ? `${left}::jsonb` : left} ${operator} ${params.add(predicate.value)}::${type}`;
      break;
    }
    case 'fts':
    case 'plfts':
    case 'phfts':
    case 'wfts': {
      const config = predicate.language !== undefined ? `${params.add(predicate.language)}::regconfig, ` : '';
      const vector = c.kind === 'tsvector' && field.path.length === 0 ? left : `to_tsvector(${config}${left})`;
      sql = `${vector} @@ ${TSQUERY[predicate.op]}(${config}${params.add(predicate.value)})`;
      break;
    }
    default: {
      const operator = COMPARISON_SQL[predicate.op] as string;
      if (predicate.quantifier && predicate.values) {
        const list = predicate.values.map((v) => read(params.add(likePattern(predicate.op, v)))).join(', ');
        sql = `${left} ${operator} ${predicate.quantifier.toUpperCase()}(ARRAY[${list}])`;
      } else {
        sql = `${left} ${operator} ${read(params.add(likePattern(predicate.op, predicate.value)))}`;
      }
    }
  }
  return condition.negated ? `NOT (${sql})` : sql;
}

function filterSql(table: PostgrestTable, filter: Filter, params: Params): string {
  if (filter.kind === 'condition') return conditionSql(table, filter, params);
  const parts = filter.children.map((child) => filterSql(table, child, params));
  const sql = `(${parts.join(filter.op === 'and' ? ' AND ' : ' OR ')})`;
  return filter.negated ? `NOT ${sql}` : sql;
}

/** `WHERE …` for the top-level filters (ANDed), or '' when there are none. */
export function whereSql(table: PostgrestTable, filters: readonly Filter[], params: Params): string {
  if (filters.length === 0) return '';
  return `WHERE ${filters.map((filter) => filterSql(table, filter, params)).join(' AND ')}`;
}

/** `ORDER BY …`; with no order= the primary key, so pages and ranges are deterministic. */
export function orderSql(table: PostgrestTable, order: readonly OrderTerm[], params: Params): string {
  const terms =
    order.length > 0
      ? order.map((term) => {
          const direction = term.direction === 'desc' ? ' DESC' : ' ASC';
          const nulls = term.nulls ? ` NULLS ${term.nulls === 'first' ? 'FIRST' : 'LAST'}` : '';
          return `${fieldSql(table, term.field, params)}${direction}${nulls}`;
        })
      : table.primaryKey.map((name) => columnSql(column(table, name)));
  return terms.length > 0 ? `ORDER BY ${terms.join(', ')}` : '';
}

/** The JSON member name a select item gets: its alias, the last JSON key, or the column. */
function memberName(item: SelectColumn): string {
  return item.alias ?? item.field.path[item.field.path.length - 1]?.key ?? item.field.column;
}

/** select= with `*` spelled out as the table's columns. */
function expandSelect(table: PostgrestTable, select: readonly SelectItem[]): SelectColumn[] {
  return select.flatMap((item): SelectColumn[] =>
    item.kind === 'star' ? table.columns.map((c): SelectColumn => ({ kind: 'column', field: { column: c.name, path: [] } })) : [item],
  );
}

/** The member names of each answered row, in order (CSV's header). */
export function selectNames(table: PostgrestTable, select: readonly SelectItem[]): string[] {
  return expandSelect(table, select).map(memberName);
}

/** json_build_object takes at most 100 arguments: 50 members per call. */
const MEMBERS_PER_CALL = 50;

/**
 * Each row of `t` as JSON (an expression over `t`), shaped by select=. Plain columns go through
 * row_to_json of a lateral row with metadata names (the fast path); aliases, casts and JSON paths
 * need member names from the request, which travel as parameters of json_build_object.
 * `lateral` is the FROM-clause addition the expression needs (or '').
 */
export function rowJsonSql(table: PostgrestTable, select: readonly SelectItem[], params: Params, stripNulls: boolean): { json: string; lateral: string } {
  const items = expandSelect(table, select);
  const output = (item: SelectColumn): string => {
    const c = column(table, item.field.column);
    if (item.cast) return `(${fieldSql(table, item.field, params)})::${item.cast}`;
    if (item.field.path.length > 0) return fieldSql(table, item.field, params);
    return fill(c.output ?? '{}', columnSql(c));
  };
  const plain = items.every((item) => item.alias === undefined && item.cast === undefined && item.field.path.length === 0);
  let json: string;
  let lateral = '';
  if (plain) {
    lateral = `CROSS JOIN LATERAL (SELECT ${items.map((item) => `${output(item)} AS ${quoteIdent(item.field.column)}`).join(', ')}) AS r`;
    json = 'row_to_json(r)';
  } else {
    const calls: string[] = [];
    for (let i = 0; i < items.length; i += MEMBERS_PER_CALL) {
      const members = items.slice(i, i + MEMBERS_PER_CALL).map((item) => `${params.add(memberName(item))}::text, ${output(item)}`);
      calls.push(`json_build_object(${members.join(', ')})`);
    }
    // Several objects become one by joining their text: `{a…}` + `{b…}` → `{a…, b…}`.
    const last = calls.length - 1;
    const trimmed = calls.map((call, i) => {
      const text = i === last ? `${call}::text` : `left(${call}::text, -1)`;
      return i === 0 ? text : `substr(${text}, 2)`;
    });
    json = calls.length === 1 ? (calls[0] as string) : `(${trimmed.join(" || ', ' || ")})::json`;
  }
  return { json: stripNulls ? `json_strip_nulls(${json})` : json, lateral };
}
