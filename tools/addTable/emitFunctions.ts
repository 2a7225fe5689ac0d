import type { SchemaObject } from 'openapi3-ts/oas31';
import { quoteIdent } from '../../lib/db/sqlIdentifiers.ts';
import type { PlannedColumn, TablePlan } from './tablePlan.ts';
import { fill } from './typeMapping.ts';
import { stringLiteral, templateText, toSource } from './tsSource.ts';

/** functions/: the table module (like tripColumns.ts) and one handler per operation. */

export interface EmittedFile {
  path: string;
  text: string;
}

const constantPrefix = (plan: TablePlan) => plan.singular.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
export const tableModule = (plan: TablePlan) => `${plan.camel}Table`;

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

function emitTableModule(plan: TablePlan): EmittedFile {
  const P = constantPrefix(plan);
  const { table } = plan;
  const imports = [`import type { ColumnFilter } from '../lib/tables/tableFilters.ts';`];
  // A table without a key gets no KeysetKey (count only): an unused import would fail the lint.
  if (plan.key.length > 0) imports.push(`import type { KeysetKey } from '../lib/tables/keysetCursor.ts';`);
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
  if (plan.key.length > 0) {
    lines.push(
      '',
      `/** The order the list walks (${plan.keySource}), the key as JSON for a cursor, and how a cursor's values are read. */`,
      `export const ${P}_KEY: KeysetKey = {`,
      `  columns: [${plan.key.map((c) => stringLiteral(c.sql)).join(', ')}],`,
      `  json: ${stringLiteral(`json_build_array(${plan.key.map((c) => `r.${quoteIdent(c.name)}`).join(', ')})::text`)},`,
      `  values: [${plan.key.map(inputFunction).join(', ')}],`,
      '};',
    );
  }
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

function emitList(plan: TablePlan): EmittedFile {
  const id = plan.operationIds.list!;
  const { P, Input } = handlerNames(plan, id);
  const text = `import { JsonText, type Handler, type HandlerInput } from '../lib/http/handler.ts';
import { decodeCursor, encodeCursor, keysetCondition } from '../lib/tables/keysetCursor.ts';
import { refusedRow } from '../lib/tables/rowRefusals.ts';
import { filterSql } from '../lib/tables/tableFilters.ts';
${importLine([`${P}_KEY`, `${P}_TABLE`, `${P}_WIRE`, `${plan.camel}Constraints`, `${plan.camel}Filters`], `./${tableModule(plan)}.ts`)}

export type ${Input} = HandlerInput<Record<string, never>, { limit: number; cursor?: string; [filter: string]: unknown }>;

export const ${id}: Handler<${Input}> = async ({ query, signal }, ctx) => {
  const { limit, cursor } = query;
  // $1 asks for one row past the page: whether it exists says whether another page follows.
  const filters = filterSql(query, ${plan.camel}Filters, 2);
  const conditions = filters.conditions;
  const values: unknown[] = [limit + 1, ...filters.values];
  if (cursor !== undefined) {
    const after = decodeCursor(cursor, ${P}_KEY.values.length);
    conditions.push(keysetCondition(${P}_KEY, values.length + 1));
    values.push(...after);
  }
  const where = conditions.length > 0 ? \`WHERE \${conditions.join(' AND ')}\` : '';
  try {
    const { rows } = await ctx.db.query<{ item: string; key: string }>({
      // The text depends only on which filters are used and whether a cursor is: one prepared statement each.
      name: \`${id}:\${filters.key}:\${cursor === undefined ? 'first' : 'after'}\`,
      text: \`SELECT row_to_json(r)::text AS item, \${${P}_KEY.json} AS key FROM \${${P}_TABLE} AS t \${${P}_WIRE} \${where} ORDER BY \${${P}_KEY.columns.join(', ')} LIMIT $1\`,
      values,
    }, { signal });
    const page = rows.slice(0, limit);
    // The page's last row is the next page's cursor, when a row past the page came back.
    const last = rows.length > limit ? page[page.length - 1] : undefined;
    const pagination = { limit, has_next: last !== undefined, next_cursor: last ? encodeCursor(last.key) : null };
    return { body: new JsonText(\`{"items":[\${page.map((row) => row.item).join(',')}],"pagination":\${JSON.stringify(pagination)}}\`) };
  } catch (err) {
    // A made-up cursor or filter value Postgres cannot read as the column's type is the caller's 400.
${refusal(plan, 'query', "cursor !== undefined ? 'cursor' : (filters.used[0] ?? 'query')")}
  }
};
`;
  return { path: `functions/${id}.ts`, text };
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
  const id = plan.operationIds.create!;
  const { P, Input } = handlerNames(plan, id);
  const text = `import { firstRow } from '../lib/db/firstRow.ts';
import { JsonText, type Handler, type HandlerInput } from '../lib/http/handler.ts';
import { refusedRow } from '../lib/tables/rowRefusals.ts';
import { columnValues } from '../lib/tables/tableWrites.ts';
${importLine([`${P}_KEY`, `${P}_TABLE`, `${P}_WIRE`, `${plan.camel}Constraints`, `${plan.camel}WritableColumns`, `type ${plan.singular}`], `./${tableModule(plan)}.ts`)}

export type ${Input} = HandlerInput<Record<string, never>, Record<string, never>, Partial<${plan.singular}>>;

export const ${id}: Handler<${Input}> = async ({ body }, ctx) => {
  // Only the members sent: Postgres fills the rest (defaults, identity, generated columns).
  const set = columnValues(body, ${plan.camel}WritableColumns, 1);
  const insert = set.columns.length === 0
    ? \`INSERT INTO \${${P}_TABLE} DEFAULT VALUES\`
    : \`INSERT INTO \${${P}_TABLE} (\${set.columns.join(', ')}) VALUES (\${set.placeholders.join(', ')})\`;
  try {
    const inserted = await ctx.db.query<{ item: string; key: string }>({
      text: \`WITH t AS (\${insert} RETURNING *) SELECT row_to_json(r)::text AS item, \${${P}_KEY.json} AS key FROM t \${${P}_WIRE}\`,
      values: set.values,
    });
    const row = firstRow(inserted, 'INSERT … RETURNING');
    const key = (JSON.parse(row.key) as unknown[]).map((value) => encodeURIComponent(String(value))).join('/');
    return { status: 201, headers: { location: \`/${plan.path}/\${key}\` }, body: new JsonText(row.item) };
  } catch (err) {
${refusal(plan, 'body', "'body'")}
  }
};
`;
  return { path: `functions/${id}.ts`, text };
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
  if (plan.operationIds.list) files.push(emitList(plan));
  if (plan.operationIds.get) files.push(emitGet(plan));
  if (plan.operationIds.create) files.push(emitCreate(plan));
  if (plan.operationIds.update) files.push(emitUpdate(plan));
  if (plan.operationIds.delete) files.push(emitDelete(plan));
  return files;
}
