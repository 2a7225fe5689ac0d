import type { SchemaObject } from 'openapi3-ts/oas31';
import { quoteIdent } from '../../lib/db/sqlIdentifiers.ts';
import type { CatalogColumn, CatalogTable } from './catalog.ts';
import { columnSchema, fill, mapType, type TypeMapping } from './typeMapping.ts';

/**
 * Everything the emitters need, decided once from the catalog: names, the wire form of every
 * column, the key the list walks, the filters offered and what a write may set.
 */
export interface PlannedColumn {
  name: string;
  catalog: CatalogColumn;
  mapping: TypeMapping;
  /** Schema of the value in a response row. */
  schema: SchemaObject;
  /** `t."col"`. */
  sql: string;
  /** The wire value from `t`: `t."price"::text`. */
  output: string;
}

interface PlannedFilter {
  param: string;
  column: PlannedColumn;
  operator: '=' | '>' | '>=' | '<' | '<=';
}

export interface TablePlan {
  table: CatalogTable;
  /** `"schema"."table"`. */
  qualified: string;
  path: string;
  /** `Rides` / `Ride` / `ride` */
  plural: string;
  singular: string;
  camel: string;
  /**
   * `list` (GET), `create` (POST), `updateWhere` (PATCH), `deleteWhere` (DELETE) and `replace` (PUT)
   * serve the collection in PostgREST's dialect; get/update/delete address one row by its key.
   */
  operationIds: {
    list?: string;
    count: string;
    get?: string;
    create?: string;
    update?: string;
    delete?: string;
    updateWhere?: string;
    deleteWhere?: string;
    replace?: string;
  };
  columns: PlannedColumn[];
  /** What the list walks in order, and where that order comes from. */
  key: PlannedColumn[];
  keySource: string | null;
  /** Path parameters of get/update/delete, one per primary key column (null without a primary key). */
  keyParams: string[] | null;
  filters: PlannedFilter[];
  writes: boolean;
  /** Columns a POST may set, and which of them it must. */
  insertable: PlannedColumn[];
  requiredOnInsert: string[];
  /** Columns a PATCH may change. */
  updatable: PlannedColumn[];
  warnings: string[];
  notes: string[];
}

const RESERVED_QUERY = new Set(['limit', 'cursor']);

const words = (text: string) => text.split(/[^A-Za-z0-9]+/).filter(Boolean);
const pascal = (text: string) =>
  words(text)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('') || 'Row';

/** English plural to singular, the common cases; a name that is not plural gets `Row` appended. */
function singularOf(plural: string): string {
  if (/ies$/.test(plural)) return `${plural.slice(0, -3)}y`;
  if (/(ss|us|is)$/.test(plural)) return `${plural}Row`;
  if (/(ches|shes|xes|sses)$/.test(plural)) return plural.slice(0, -2);
  if (/s$/.test(plural)) return plural.slice(0, -1);
  return `${plural}Row`;
}

/** A path parameter name the router accepts (`[A-Za-z0-9_]+`) for a column. */
function paramName(column: string, taken: Set<string>): string {
  let name =
    column
      .toLowerCase()
      .replace(/[^a-z0-9_]+/g, '_')
      .replace(/^_+|_+$/g, '') || 'key';
  while (taken.has(name)) name = `${name}_`;
  taken.add(name);
  return name;
}

export interface PlanOptions {
  path?: string;
  writes: boolean;
}

export function planTable(table: CatalogTable, options: PlanOptions): TablePlan {
  const warnings: string[] = [];
  const notes: string[] = [];
  const path = options.path ?? table.table.toLowerCase().replace(/[^a-z0-9_-]+/g, '_');
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(path)) throw new Error(`--path ${path}: use lower-case letters, digits, "_" or "-"`);
  const plural = pascal(path);
  const singular = singularOf(plural);
  const camel = singular[0]!.toLowerCase() + singular.slice(1);

  const columns: PlannedColumn[] = table.columns.map((catalog) => {
    const mapping = mapType(catalog.type);
    if (mapping.loose) warnings.push(`column ${catalog.name}: ${mapping.loose}`);
    const sql = `t.${quoteIdent(catalog.name)}`;
    return {
      name: catalog.name,
      catalog,
      mapping,
      schema: columnSchema(catalog, mapping),
      sql,
      output: fill(mapping.output, sql),
    };
  });
  const byName = new Map(columns.map((c) => [c.name, c]));

  let key: PlannedColumn[] = [];
  let keySource: string | null = null;
  if (table.primaryKey.length > 0) {
    key = table.primaryKey.map((name) => byName.get(name)!);
    keySource = 'primary key';
  } else {
    // Without a primary key, a unique index on NOT NULL columns still gives every row one place in an order.
    const unique = table.indexes.find(
      (index) =>
        index.unique &&
        index.method === 'btree' &&
        index.leadingColumn !== null &&
        index.columns.every((name) => byName.get(name)?.catalog.notNull && byName.get(name)?.mapping.orderable),
    );
    if (unique) {
      key = unique.columns.map((name) => byName.get(name)!);
      keySource = `unique index ${unique.name}`;
      notes.push(
        `${table.schema}.${table.table} has no primary key: the list walks unique index ${unique.name} (${unique.columns.join(', ')}); no get, update or delete by key`,
      );
    } else {
      notes.push(
        `${table.schema}.${table.table} has no primary key and no unique index on NOT NULL columns: only the count is served (a list could not visit every row exactly once)`,
      );
    }
  }
  const unorderedKey = key.find((c) => !c.mapping.orderable);
  if (unorderedKey) {
    notes.push(`key column ${unorderedKey.name} (${unorderedKey.catalog.type.declared}) cannot be walked by a cursor: only the count is served`);
    key = [];
    keySource = null;
  }
  const hasPrimaryKey = table.primaryKey.length > 0 && key.length > 0;
  const taken = new Set<string>();
  const keyParams = hasPrimaryKey ? key.map((c) => paramName(c.name, taken)) : null;

  // Filters: only on columns that lead a btree index (the key's first column among them).
  const leading = new Set<string>();
  for (const index of table.indexes) if (index.method === 'btree' && index.leadingColumn) leading.add(index.leadingColumn);
  const filters: PlannedFilter[] = [];
  for (const column of columns) {
    if (!leading.has(column.name)) continue;
    if (!column.mapping.orderable) {
      warnings.push(`column ${column.name} leads an index but ${column.catalog.type.declared} is not filterable here: no filter offered`);
      continue;
    }
    if (RESERVED_QUERY.has(column.name)) {
      warnings.push(`column ${column.name} is named like the list's own "${column.name}" parameter: no filter offered`);
      continue;
    }
    filters.push({ param: column.name, column, operator: '=' });
    if (column.mapping.fixture.kind === 'bool') continue;
    for (const [suffix, operator] of [
      ['gt', '>'],
      ['gte', '>='],
      ['lt', '<'],
      ['lte', '<='],
    ] as const) {
      filters.push({ param: `${column.name}.${suffix}`, column, operator });
    }
  }

  const writes = options.writes && hasPrimaryKey && table.kind !== 'view' && table.kind !== 'materialized view';
  if (options.writes && !writes) notes.push('--write needs a table with a primary key: only reads are generated');
  const insertable = columns.filter((c) => !c.catalog.generatedExpr && c.catalog.identity !== 'always');
  const requiredOnInsert = insertable
    .filter((c) => (c.catalog.notNull || c.mapping.notNull) && c.catalog.defaultExpr === null && c.catalog.identity === null && !c.catalog.serial)
    .map((c) => c.name);
  const keyNames = new Set(key.map((c) => c.name));
  const updatable = insertable.filter((c) => !keyNames.has(c.name));

  const operationIds: TablePlan['operationIds'] = { count: `count${plural}` };
  if (key.length > 0) operationIds.list = `list${plural}`;
  if (hasPrimaryKey) operationIds.get = `get${singular}`;
  if (writes) {
    operationIds.create = `create${plural}`;
    if (updatable.length > 0) operationIds.update = `update${singular}`;
    operationIds.delete = `delete${singular}`;
    operationIds.updateWhere = `update${plural}`;
    operationIds.deleteWhere = `delete${plural}`;
    operationIds.replace = `replace${singular}`;
  }
  return {
    table,
    qualified: `${quoteIdent(table.schema)}.${quoteIdent(table.table)}`,
    path,
    plural,
    singular,
    camel,
    operationIds,
    columns,
    key,
    keySource,
    keyParams,
    filters,
    writes,
    insertable,
    requiredOnInsert,
    updatable,
    warnings,
    notes,
  };
}
