import { PostgrestError, queryParseError, short, unknownColumn } from './postgrestError.ts';
import type { FieldRef, Filter, ParsedQuery, Predicate } from './syntaxTree.ts';
import { columnOf, type PostgrestTable, type TableColumn } from './tableShape.ts';

/**
 * The parsed request against the table: every name it uses is a column, filters and orders only
 * name columns the owner allows, and each operator suits its operand's type. After this the
 * compiler may trust the tree; a refusal here is a 4xx before any SQL runs.
 */

function fieldColumn(table: PostgrestTable, field: FieldRef, parameter: string): TableColumn {
  const column = columnOf(table, field.column);
  if (!column) throw unknownColumn(parameter, table.name, field.column);
  if (field.path.length > 0 && column.kind !== 'json') {
    throw queryParseError(parameter, `${short(field.column)} is not a json or jsonb column, so it has no JSON path`);
  }
  return column;
}

/** What an operand compares as: the column's kind, or text / json at the end of a JSON path. */
function operandKind(column: TableColumn, field: FieldRef): TableColumn['kind'] {
  const last = field.path[field.path.length - 1];
  if (!last) return column.kind;
  return last.arrow === '->>' ? 'text' : 'json';
}

const PATTERN_OPERATORS = new Set(['like', 'ilike', 'match', 'imatch']);

function checkPredicate(predicate: Predicate, kind: TableColumn['kind'], column: string, parameter: string): void {
  const refuse = (what: string) =>
    new PostgrestError(
      400,
      { code: 'PGRST100', message: `"${short(parameter)}": ${predicate.op} does not apply to ${short(column)}`, details: what },
      { field: parameter },
    );
  if (PATTERN_OPERATORS.has(predicate.op) && kind !== 'text') throw refuse(`${predicate.op} matches text; ${short(column)} is ${kind}`);
  if (['fts', 'plfts', 'phfts', 'wfts'].includes(predicate.op) && kind !== 'text' && kind !== 'tsvector') {
    throw refuse(`full-text search needs a text or tsvector column; ${short(column)} is ${kind}`);
  }
  if (predicate.op === 'ov' && !['array', 'range', 'other'].includes(kind)) throw refuse(`ov compares arrays and ranges; ${short(column)} is ${kind}`);
  if ((predicate.op === 'cs' || predicate.op === 'cd') && !['array', 'range', 'json', 'other'].includes(kind)) {
    throw refuse(`${predicate.op} compares arrays, ranges and JSON; ${short(column)} is ${kind}`);
  }
  if (predicate.op === 'is' && (predicate.value === 'true' || predicate.value === 'false' || predicate.value === 'unknown') && kind !== 'boolean') {
    throw refuse(`is.${predicate.value} needs a boolean column; ${short(column)} is ${kind}`);
  }
}

function checkFilter(table: PostgrestTable, filter: Filter): void {
  if (filter.kind === 'logic') {
    for (const child of filter.children) checkFilter(table, child);
    return;
  }
  const column = fieldColumn(table, filter.field, filter.parameter);
  if (table.filterable && !table.filterable.includes(column.name)) {
    throw new PostgrestError(
      400,
      {
        code: 'PGRST100',
        message: `"${short(filter.parameter)}": ${table.name} may not be filtered on ${column.name}`,
        hint: `filterable columns: ${table.filterable.join(', ')}`,
      },
      { field: filter.parameter },
    );
  }
  checkPredicate(filter.predicate, operandKind(column, filter.field), column.name, filter.parameter);
}

/** PGRST204: a body or columns= names a column the table does not have (or that cannot be written). */
function unknownWriteColumn(table: PostgrestTable, name: string, parameter: string): PostgrestError {
  return new PostgrestError(
    400,
    { code: 'PGRST204', message: `Could not find the '${short(name)}' column of '${table.name}' in the schema cache` },
    { field: parameter },
  );
}

/** The column `name` that a write may set, or a PGRST204 refusal. */
export function writableColumn(table: PostgrestTable, name: string, parameter: string): TableColumn {
  const column = columnOf(table, name);
  if (!column || column.readOnly) throw unknownWriteColumn(table, name, parameter);
  return column;
}

/** Checks the whole parsed request against `table`; throws the first refusal. */
export function checkQuery(table: PostgrestTable, query: ParsedQuery): void {
  for (const item of query.select) if (item.kind === 'column') fieldColumn(table, item.field, 'select');
  for (const filter of query.filters) checkFilter(table, filter);
  for (const term of query.order) {
    const column = fieldColumn(table, term.field, 'order');
    if (table.orderable && !table.orderable.includes(column.name)) {
      throw new PostgrestError(
        400,
        { code: 'PGRST100', message: `"order": ${table.name} may not be ordered by ${column.name}`, hint: `orderable columns: ${table.orderable.join(', ')}` },
        { field: 'order' },
      );
    }
  }
  for (const name of query.columns ?? []) writableColumn(table, name, 'columns');
  for (const name of query.onConflict ?? []) if (!columnOf(table, name)) throw unknownColumn('on_conflict', table.name, name);
}
