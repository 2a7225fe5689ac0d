import type { ParsedRequest } from './parseQuery.ts';
import { column, columnSql, fill, Params, rowJsonSql } from './sqlFragments.ts';
import type { Condition } from './syntaxTree.ts';
import type { PostgrestTable, TableColumn } from './tableShape.ts';

/**
 * postgrest-js' `.eq('id', 7).single()` (one object, an equality on the whole primary key, every
 * column) is the item route's question asked in the dialect. Answered by the same batched lookup
 * (lib/tables/keyLookup.ts): concurrent ones share one statement, instead of one statement each.
 */

/** A key column's value as text Postgres will read without error: anything else takes the general path. */
const INTEGER_BOUNDS: Readonly<Record<string, bigint>> = {
  smallint: 32767n,
  int2: 32767n,
  integer: 2147483647n,
  int4: 2147483647n,
  bigint: 9223372036854775807n,
  int8: 9223372036854775807n,
};
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/**
 * Whether Postgres reads `value` as the column's type for sure. One statement carries many callers'
 * keys, so a value it would refuse (22P02) must never join a batch: it fails the others' lookups too.
 */
function readsSafely(c: TableColumn, value: string): boolean {
  if (c.input !== undefined) return false;
  const bound = INTEGER_BOUNDS[c.sql];
  if (bound !== undefined) {
    if (!/^-?\d{1,19}$/.test(value)) return false;
    const n = BigInt(value);
    return n <= bound && n >= -bound - 1n;
  }
  if (c.sql === 'text' || c.sql === 'character varying' || c.sql === 'varchar') return !value.includes('\u0000');
  if (c.sql === 'uuid') return UUID.test(value);
  return false;
}

/**
 * The key values when `query` asks for one object by its whole primary key and nothing the lookup
 * cannot answer: the default select, one plain `eq` per key column and no other filter, no count,
 * no range past the first row. Otherwise undefined: the general statement answers.
 */
export function keyOfSingleRead(table: PostgrestTable, query: ParsedRequest): string[] | undefined {
  if (query.shape !== 'object' || query.stripNulls || query.rangeRequested) return undefined;
  if (query.preferences.count !== undefined || query.range.offset !== 0 || query.range.limit === 0) return undefined;
  if (query.select.length !== 1 || query.select[0]?.kind !== 'star') return undefined;
  if (table.primaryKey.length === 0 || query.filters.length !== table.primaryKey.length) return undefined;
  const values = new Map<string, string>();
  for (const filter of query.filters) {
    if (filter.kind !== 'condition' || !isPlainEquality(filter) || values.has(filter.field.column)) return undefined;
    values.set(filter.field.column, filter.predicate.value);
  }
  const key: string[] = [];
  for (const name of table.primaryKey) {
    const value = values.get(name);
    if (value === undefined || !readsSafely(column(table, name), value)) return undefined;
    key.push(value);
  }
  return key;
}

function isPlainEquality(filter: Condition): filter is Condition & { predicate: { op: 'eq'; value: string } } {
  const { predicate } = filter;
  return !filter.negated && filter.field.path.length === 0 && predicate.op === 'eq' && !('quantifier' in predicate && predicate.quantifier);
}

/**
 * The batched statement for a table (the shape lib/tables/keyLookup.ts runs): the keys as text
 * arrays, one per key column, each row with the position of the key it matched and its JSON as the
 * general read builds it (rowJsonSql), so both paths answer the same bytes.
 */
export function keyLookupSql(table: PostgrestTable): string {
  const { json, lateral } = rowJsonSql(table, [{ kind: 'star' }], new Params(), false);
  const names = table.primaryKey.map((_, i) => `k${i + 1}`);
  const arrays = table.primaryKey.map((_, i) => `$${i + 1}::text[]`);
  const on = table.primaryKey.map((name, i) => {
    const c = column(table, name);
    return `${columnSql(c)} = ${fill(`{}::${c.sql}`, `k.${names[i]}`)}`;
  });
  return `SELECT k.n, ${json}::text AS item FROM unnest(${arrays.join(', ')}) WITH ORDINALITY AS k(${names.join(', ')}, n) JOIN ${table.relation} AS t ON ${on.join(' AND ')} ${lateral}`;
}
