import type { SchemaObject } from 'openapi3-ts/oas31';
import { quoteIdent } from '../../lib/db/sqlIdentifiers.ts';
import type { ColumnKind } from '../../lib/postgrest/tableShape.ts';
import type { PlannedColumn, TablePlan } from './tablePlan.ts';
import { fill } from './typeMapping.ts';
import { stringLiteral, templateText, toSource } from './tsSource.ts';

/** functions/: the table module (like tripColumns.ts) and one handler per operation. */

export interface EmittedFile {
  path: string;
  text: string;
}

export const constantPrefix = (plan: TablePlan) => plan.singular.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
export const tableModule = (plan: TablePlan) => `${plan.camel}Table`;
/** The owner's file: what clients may filter and order by, and the most rows a response carries. */
export const dialectModule = (plan: TablePlan) => `${plan.camel}Dialect`;
const columnType = (plan: TablePlan) => `${plan.singular}Column`;

const propertyName = (name: string) => (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : stringLiteral(name));

function tsType(schema: SchemaObject): string {
  const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
  if (types.length === 0) return 'unknown';
  return types
    .map((type) => {
      if (type === 'integer' || type === 'number') return 'number';
      if (type === 'array') return `Array<${tsType(schema.items as SchemaObject)}>`;
      return type;
    })
    .join(' | ');
}

/** `(p) => \`$${p}::numeric\`` */
const inputFunction = (column: PlannedColumn) => `(p) => \`${templateText(fill(column.mapping.input, '\u0000')).replace('\u0000', () => '$${p}')}\``;

/** `t."a" = $1::int8 AND t."b" = $2::text`, the i-th key column's value read from `value(i)`. */
function keyCondition(plan: TablePlan, value: (i: number) => string = (i) => `$${1 + i}`): string {
  return plan.key.map((c, i) => `${c.sql} = ${fill(c.mapping.input, value(i))}`).join(' AND ');
}

/** The table's constraints, and its domains' checks, with the columns each one covers. */
function constraintColumns(plan: TablePlan): Record<string, string[]> {
  const columns: Record<string, string[]> = Object.fromEntries(plan.table.constraints.map((c) => [c.name, c.columns]));
  for (const column of plan.table.columns) {
    const domain = column.type.kind === 'domain' ? column.type : column.type.element?.kind === 'domain' ? column.type.element : undefined;
    for (const name of domain?.domainCheckNames ?? []) columns[name] = [...(columns[name] ?? []), column.name];
  }
  return columns;
}

const NUMBER_TYPES = new Set(['int2', 'int4', 'int8', 'numeric', 'float4', 'float8', 'oid', 'money']);
const TEXT_TYPES = new Set(['text', 'varchar', 'bpchar', 'name', 'citext']);
const TEMPORAL_TYPES = new Set(['date', 'timestamp', 'timestamptz', 'time', 'timetz', 'interval']);

/** How the dialect compares a column (which operators it takes): from its type, a domain's from its base. */
function columnKind(column: PlannedColumn): ColumnKind {
  let type = column.catalog.type;
  while (type.kind === 'domain' && type.base) type = type.base;
  if (type.kind === 'array') return 'array';
  if (type.kind === 'enum') return 'other';
  if (NUMBER_TYPES.has(type.name)) return 'number';
  if (TEXT_TYPES.has(type.name)) return 'text';
  if (TEMPORAL_TYPES.has(type.name)) return 'temporal';
  if (type.name === 'bool') return 'boolean';
  if (type.name === 'uuid') return 'uuid';
  if (type.name === 'json' || type.name === 'jsonb') return 'json';
  if (type.name === 'tsvector') return 'tsvector';
  if (/range$/.test(type.name)) return 'range';
  return 'other';
}

/** One column of the dialect's table metadata, as source. */
function dialectColumn(c: PlannedColumn): string {
  const sql = c.catalog.type.sql;
  const parts = [`name: ${stringLiteral(c.name)}`, `sql: ${stringLiteral(sql)}`, `kind: '${columnKind(c)}'`];
  if (c.mapping.output !== '{}') parts.push(`output: ${stringLiteral(c.mapping.output)}`);
  if (c.mapping.input !== `{}::${sql}`) parts.push(`input: ${stringLiteral(c.mapping.input)}`);
  if (c.mapping.param === 'json') parts.push('json: true');
  if (c.catalog.defaultExpr !== null && c.catalog.identity === null && !c.catalog.serial) parts.push(`default: ${stringLiteral(c.catalog.defaultExpr)}`);
  if (c.catalog.generatedExpr !== null || c.catalog.identity === 'always') parts.push('readOnly: true');
  return `{ ${parts.join(', ')} }`;
}

/** The column names and the dialect's table as the catalog describes them (a table with a collection). */
function catalogLines(plan: TablePlan): string[] {
  const P = constantPrefix(plan);
  return [
    '',
    `/** The table's column names: what ./${dialectModule(plan)}.ts may list as filterable and orderable. */`,
    `export type ${columnType(plan)} = ${plan.columns.map((c) => stringLiteral(c.name)).join(' | ') || 'never'};`,
    '',
    '/**',
    ` * /${plan.path} in PostgREST's dialect (lib/postgrest/): the columns as the catalog describes them, every`,
    ` * one filterable and orderable. The handlers serve ${P}_DIALECT of ./${dialectModule(plan)}.ts: this, narrowed`,
    ' * as the owner chooses there (that file is yours: --refresh never rewrites it).',
    ' */',
    `export const ${P}_CATALOG: PostgrestTable = {`,
    `  name: ${stringLiteral(plan.path)},`,
    `  relation: ${stringLiteral(plan.qualified)},`,
    '  columns: [',
    ...plan.columns.map((c) => `    ${dialectColumn(c)},`),
    '  ],',
    `  primaryKey: [${plan.key.map((c) => stringLiteral(c.name)).join(', ')}],`,
    '};',
  ];
}

function emitTableModule(plan: TablePlan): EmittedFile {
  const P = constantPrefix(plan);
  const { table } = plan;
  const imports = [`import type { ColumnFilter } from '../lib/tables/tableFilters.ts';`];
  if (plan.operationIds.list) imports.push(`import type { PostgrestTable } from '../lib/postgrest/tableShape.ts';`);
  if (plan.writes) imports.push(`import type { WritableColumn } from '../lib/tables/tableWrites.ts';`);
  const wire = plan.columns.map((c) => `  ${stringLiteral(`${c.output} AS ${quoteIdent(c.name)}`)},`).join('\n');
  const rowType = plan.columns.map((c) => `  ${propertyName(c.name)}: ${tsType(c.schema)};`).join('\n');
  const lines: string[] = [
    imports.sort().join('\n'),
    '',
    '/**',
    ` * ${table.schema}.${table.table}, served under /${plan.path}.`,
    ...(table.description ? [` * ${table.description.replace(/\*\//g, '* /')}`] : []),
    ' */',
    `export const ${P}_TABLE = ${stringLiteral(plan.qualified)};`,
    '',
    '/**',
    ` * One row as every response carries it (the ${plan.singular} schema in openapi/${plan.path}.ts).`,
    ' * @public for the code you write against this table',
    ' */',
    `export type ${plan.singular} = {`,
    rowType,
    '};',
    '',
    '/**',
    " * Each row of `t` in its wire form, as `r`: Postgres' row_to_json(r) is then the response JSON",
    ' * (numeric as exact text, bytea as base64, timestamps in ISO 8601), built in C from the row it has.',
    ' */',
    `export const ${P}_WIRE = \`CROSS JOIN LATERAL (SELECT \${[`,
    wire,
    `].join(', ')}) AS r\`;`,
  ];
  if (plan.operationIds.list) lines.push(...catalogLines(plan));
  lines.push(
    '',
    '/** Filters of the list and count: the columns that lead an index (a filter that scans the whole table is not offered). */',
    `export const ${plan.camel}Filters: Readonly<Record<string, ColumnFilter>> = {`,
    ...plan.filters.map(
      (f) => `  ${propertyName(f.param)}: { column: ${stringLiteral(f.column.sql)}, operator: '${f.operator}', value: ${inputFunction(f.column)} },`,
    ),
    '};',
    '',
    '/** Constraint → its columns, so a refused row names the columns. */',
    `export const ${plan.camel}Constraints: Readonly<Record<string, readonly string[]>> = ${toSource(constraintColumns(plan))};`,
  );
  if (plan.writes) {
    lines.push(
      '',
      '/** The columns a POST or PATCH may set (not generated columns, not GENERATED ALWAYS identities). */',
      `export const ${plan.camel}WritableColumns: Readonly<Record<string, WritableColumn>> = {`,
      ...plan.insertable.map(
        (c) =>
          `  ${propertyName(c.name)}: { column: ${stringLiteral(quoteIdent(c.name))}, value: ${inputFunction(c)}${c.mapping.param === 'json' ? ', json: true' : ''} },`,
      ),
      '};',
    );
  }
  return { path: `functions/${tableModule(plan)}.ts`, text: `${lines.join('\n')}\n` };
}

function keyParamsType(plan: TablePlan): string {
  return `{ ${plan.key.map((c, i) => `${plan.keyParams![i]}: ${tsType({ ...c.mapping.schema })}`).join('; ')} }`;
}

/** The names every handler template uses: the table module's constant prefix and the input type. */
function handlerNames(plan: TablePlan, id: string): { P: string; Input: string } {
  return { P: constantPrefix(plan), Input: `${id[0]!.toUpperCase()}${id.slice(1)}Input` };
}

/** `throw new NotFound(…)` naming the path and the key values. */
const notFound = (plan: TablePlan) =>
  `throw new NotFound(\`No ${plan.path} row with ${templateText(plan.key.map((c) => c.name).join(', '))} ${keyText(plan)}\`);`;

const keyValues = (plan: TablePlan) => plan.keyParams!.map((p) => `params.${p}`).join(', ');
const keyText = (plan: TablePlan) => plan.keyParams!.map((p) => `\${params.${p}}`).join(', ');

function refusal(plan: TablePlan, fields: string, fallback: string): string {
  return `    throw refusedRow(err, { constraints: ${plan.camel}Constraints, fields: ${fields}, fallbackField: ${fallback} });`;
}

/** `import { A, b, type C } from '…';` with names sorted as the project does (`type ` ignored). */
function importLine(names: string[], from: string): string {
  const bare = (name: string) => name.replace(/^type /, '');
  const sorted = [...names].sort((a, b) => bare(a).localeCompare(bare(b), 'en', { sensitivity: 'base' }) || (bare(a) < bare(b) ? -1 : 1));
  return `import { ${sorted.join(', ')} } from '${from}';`;
}

/**
 * functions/<singular>Dialect.ts, the owner's: the table file's columns narrowed to what clients may
 * filter and order by, and the most rows a response carries. Written once: --refresh rewrites the
 * table file from the catalog and keeps this one, typed by the table's column names so that
 * `npm run typecheck` names a column it lists and the table lost.
 */
function emitDialectModule(plan: TablePlan): EmittedFile {
  const P = constantPrefix(plan);
  const example = plan.columns
    .slice(0, 2)
    .map((c) => stringLiteral(c.name))
    .join(', ');
  const text = `import type { PostgrestTable, TableNarrowing } from '../lib/postgrest/tableShape.ts';
import { ${P}_CATALOG, type ${columnType(plan)} } from './${tableModule(plan)}.ts';

/**
 * What clients may ask of /${plan.path} in PostgREST's dialect: yours to decide, and the handlers need no
 * change. \`--refresh\` rewrites ./${tableModule(plan)}.ts from the catalog but never this file; it says
 * when a column listed here is gone (so does \`npm run typecheck\`) or a new column is left out.
 * - filterable: the columns filters (inside or= and and= too) may name; another is a 400 PGRST100 naming it.
 * - orderable: the columns order= may name.
 * - maxRows: the most rows one response carries (Content-Range shows the cut); else DB_MAX_ROWS.
 * Left out, every column is filterable and orderable, and a column the table gains is too.
 */
const narrowing: TableNarrowing<${columnType(plan)}> = {
  // filterable: [${example}],
  // orderable: [${example}],
  // maxRows: 500,
};

/** /${plan.path} as the handlers serve it: the table as the catalog describes it, narrowed as above. */
export const ${P}_DIALECT: PostgrestTable = { ...${P}_CATALOG, ...narrowing };
`;
  return { path: `functions/${dialectModule(plan)}.ts`, text };
}

/** A handler of the collection in PostgREST's dialect: one line over lib/http/dialectHandlers.ts. */
function emitDialect(plan: TablePlan, id: string, doc: string, call: string): EmittedFile {
  const P = constantPrefix(plan);
  const helper = call.startsWith('read') ? 'readCollection' : 'writeCollection';
  const text = `import type { Handler } from '../lib/http/handler.ts';
import { type DialectInput, ${helper} } from '../lib/http/dialectHandlers.ts';
import { ${P}_DIALECT } from './${dialectModule(plan)}.ts';

/** ${doc} */
export const ${id}: Handler<DialectInput> = (input, ctx) => ${call.replace('TABLE', `${P}_DIALECT`)};
`;
  return { path: `functions/${id}.ts`, text };
}

function emitList(plan: TablePlan): EmittedFile {
  return emitDialect(
    plan,
    plan.operationIds.list!,
    `GET and HEAD /${plan.path} in PostgREST's dialect: select=, filters on every column, order=, limit/offset and Range, Prefer: count, one object, CSV.`,
    'readCollection(ctx, TABLE, input)',
  );
}

function emitCount(plan: TablePlan): EmittedFile {
  const id = plan.operationIds.count;
  const { P, Input } = handlerNames(plan, id);
  const text = `import { firstRow } from '../lib/db/firstRow.ts';
import type { Handler, HandlerInput } from '../lib/http/handler.ts';
import { refusedRow } from '../lib/tables/rowRefusals.ts';
import { filterSql } from '../lib/tables/tableFilters.ts';
${importLine([`${P}_TABLE`, `${plan.camel}Constraints`, `${plan.camel}Filters`], `./${tableModule(plan)}.ts`)}

export type ${Input} = HandlerInput<Record<string, never>, Record<string, unknown>>;

export const ${id}: Handler<${Input}> = async ({ query, signal }, ctx) => {
  const filters = filterSql(query, ${plan.camel}Filters, 1);
  const where = filters.conditions.length > 0 ? \`WHERE \${filters.conditions.join(' AND ')}\` : '';
  try {
    const result = await ctx.db.query<{ count: number }>({
      name: \`${id}:\${filters.key}\`,
      text: \`SELECT count(*) AS count FROM \${${P}_TABLE} AS t \${where}\`,
      values: filters.values,
    }, { signal });
    return { body: { count: firstRow(result, 'count(*)').count } };
  } catch (err) {
${refusal(plan, 'query', "filters.used[0] ?? 'query'")}
  }
};
`;
  return { path: `functions/${id}.ts`, text };
}

function emitGet(plan: TablePlan): EmittedFile {
  const id = plan.operationIds.get!;
  const { P, Input } = handlerNames(plan, id);
  const arrays = plan.key.map((_, i) => `$${i + 1}::text[]`).join(', ');
  const columns = plan.key.map((_, i) => `k${i + 1}`).join(', ');
  const text = `import { NotFound } from '../lib/errors.ts';
import { JsonText, type Handler, type HandlerInput } from '../lib/http/handler.ts';
import { type KeyLookup, lookupByKey } from '../lib/tables/keyLookup.ts';
import { refusedRow } from '../lib/tables/rowRefusals.ts';
${importLine([`${P}_TABLE`, `${P}_WIRE`, `${plan.camel}Constraints`], `./${tableModule(plan)}.ts`)}

export type ${Input} = HandlerInput<${keyParamsType(plan)}>;

/**
 * Concurrent reads of single rows share one statement (lib/tables/keyLookup.ts): the keys arrive as
 * text arrays, and each row comes back with the position of the key it matched.
 */
const BY_KEY: KeyLookup = {
  name: '${id}',
  text: \`SELECT k.n, row_to_json(r)::text AS item FROM unnest(${arrays}) WITH ORDINALITY AS k(${columns}, n) JOIN \${${P}_TABLE} AS t ON ${templateText(keyCondition(plan, (i) => `k.k${i + 1}`))} \${${P}_WIRE}\`,
};

export const ${id}: Handler<${Input}> = async ({ params, signal }, ctx) => {
  try {
    const item = await lookupByKey(ctx, BY_KEY, [${keyValues(plan)}], signal);
    if (item === undefined) ${notFound(plan)}
    return { body: new JsonText(item) };
  } catch (err) {
${refusal(plan, 'params', `'${plan.keyParams![0]}'`)}
  }
};
`;
  return { path: `functions/${id}.ts`, text };
}

function emitCreate(plan: TablePlan): EmittedFile {
  return emitDialect(
    plan,
    plan.operationIds.create!,
    `POST /${plan.path}: one row or an array (columns=), upserts with Prefer: resolution=…, Prefer: return=… and missing=default.`,
    "writeCollection(ctx, TABLE, 'POST', input)",
  );
}

function emitCollectionWrites(plan: TablePlan): EmittedFile[] {
  const { updateWhere, deleteWhere, replace } = plan.operationIds;
  const files: EmittedFile[] = [];
  if (updateWhere) {
    files.push(
      emitDialect(
        plan,
        updateWhere,
        `PATCH /${plan.path}?<filters>: the rows the filters match (a filter is required; Prefer: max-affected).`,
        "writeCollection(ctx, TABLE, 'PATCH', input)",
      ),
    );
  }
  if (deleteWhere) {
    files.push(
      emitDialect(
        plan,
        deleteWhere,
        `DELETE /${plan.path}?<filters>: the rows the filters match (a filter is required; Prefer: max-affected).`,
        "writeCollection(ctx, TABLE, 'DELETE', input)",
      ),
    );
  }
  if (replace) {
    files.push(
      emitDialect(plan, replace, `PUT /${plan.path}?<key>=eq.<value>: one whole row, inserted or replaced.`, "writeCollection(ctx, TABLE, 'PUT', input)"),
    );
  }
  return files;
}

function emitUpdate(plan: TablePlan): EmittedFile {
  const id = plan.operationIds.update!;
  const { P, Input } = handlerNames(plan, id);
  const first = plan.key.length + 1;
  const text = `import { NotFound } from '../lib/errors.ts';
import { JsonText, type Handler, type HandlerInput } from '../lib/http/handler.ts';
import { refusedRow } from '../lib/tables/rowRefusals.ts';
import { columnValues } from '../lib/tables/tableWrites.ts';
${importLine([`${P}_TABLE`, `${P}_WIRE`, `${plan.camel}Constraints`, `${plan.camel}WritableColumns`, `type ${plan.singular}`], `./${tableModule(plan)}.ts`)}

export type ${Input} = HandlerInput<${keyParamsType(plan)}, Record<string, never>, Partial<${plan.singular}>>;

export const ${id}: Handler<${Input}> = async ({ params, body }, ctx) => {
  // The schema requires at least one member; one UPDATE … RETURNING changes and returns the row atomically.
  const set = columnValues(body, ${plan.camel}WritableColumns, ${first});
  const assignments = set.columns.map((column, i) => \`\${column} = \${set.placeholders[i]}\`).join(', ');
  try {
    const { rows } = await ctx.db.query<{ item: string }>({
      text: \`WITH t AS (UPDATE \${${P}_TABLE} AS t SET \${assignments} WHERE ${templateText(keyCondition(plan))} RETURNING t.*) SELECT row_to_json(r)::text AS item FROM t \${${P}_WIRE}\`,
      values: [${keyValues(plan)}, ...set.values],
    });
    const row = rows[0];
    if (!row) ${notFound(plan)}
    return { body: new JsonText(row.item) };
  } catch (err) {
${refusal(plan, '{ ...params, ...body }', "'body'")}
  }
};
`;
  return { path: `functions/${id}.ts`, text };
}

function emitDelete(plan: TablePlan): EmittedFile {
  const id = plan.operationIds.delete!;
  const { P, Input } = handlerNames(plan, id);
  const text = `import { NotFound } from '../lib/errors.ts';
import type { Handler, HandlerInput } from '../lib/http/handler.ts';
import { refusedRow } from '../lib/tables/rowRefusals.ts';
${importLine([`${P}_TABLE`, `${plan.camel}Constraints`], `./${tableModule(plan)}.ts`)}

export type ${Input} = HandlerInput<${keyParamsType(plan)}>;

export const ${id}: Handler<${Input}> = async ({ params }, ctx) => {
  try {
    const { rowCount } = await ctx.db.query({
      name: '${id}',
      text: \`DELETE FROM \${${P}_TABLE} AS t WHERE ${templateText(keyCondition(plan))}\`,
      values: [${keyValues(plan)}],
    });
    if (rowCount === 0) ${notFound(plan)}
    return { status: 204, body: undefined };
  } catch (err) {
    // A row other rows still reference (a foreign key without ON DELETE CASCADE) is a 409 naming the constraint.
${refusal(plan, 'params', `'${plan.keyParams![0]}'`)}
  }
};
`;
  return { path: `functions/${id}.ts`, text };
}

export function emitFunctions(plan: TablePlan): EmittedFile[] {
  const files = [emitTableModule(plan), emitCount(plan)];
  if (plan.operationIds.list) files.push(emitDialectModule(plan), emitList(plan));
  if (plan.operationIds.get) files.push(emitGet(plan));
  if (plan.operationIds.create) files.push(emitCreate(plan));
  if (plan.operationIds.update) files.push(emitUpdate(plan));
  if (plan.operationIds.delete) files.push(emitDelete(plan));
  files.push(...emitCollectionWrites(plan));
  return files;
}
