import type { ParameterObject, SchemaObject } from 'openapi3-ts/oas31';
import type { EmittedFile } from './emitFunctions.ts';
import type { PlannedColumn, TablePlan } from './tablePlan.ts';
import { code, toSource } from './tsSource.ts';

/** openapi/<path>.ts: the table's schemas and operations, in the shape of openapi/tableApi.ts. */

export const apiConstant = (plan: TablePlan) => `${plan.plural[0]!.toLowerCase()}${plan.plural.slice(1)}Api`;

const CACHE_TTL = 'x-cache-ttl-seconds';
/** Scanning reads tolerate a replica's lag (docs/read-replicas.md); a point lookup stays on the primary. */
const READ_FROM = 'x-read-from';
const CACHE_INVALIDATES = 'x-cache-invalidates';

/** A value the key's schema accepts, for examples and docs "Try it out". */
function exampleKey(column: PlannedColumn): unknown {
  const schema = column.mapping.schema;
  if (schema.type === 'integer') return 1;
  if (schema.type === 'number') return 1.5;
  if (schema.type === 'boolean') return true;
  if (schema.format === 'uuid') return '00000000-0000-4000-8000-000000000001';
  if (schema.format === 'date') return '2024-01-31';
  if (schema.format === 'date-time') return '2024-01-31T12:00:00+00:00';
  if (schema.enum) return schema.enum[0];
  if (column.mapping.fixture.kind === 'numeric') return '1';
  if (column.mapping.fixture.kind === 'timestamp') return '2024-01-31T12:00:00';
  return 'example';
}

/** The value schema without its description (a parameter describes itself). */
function valueSchema(column: PlannedColumn): SchemaObject {
  const { description: _description, ...schema } = column.mapping.schema;
  return schema;
}

const describeOperator: Record<string, string> = { '=': 'equal to', '>': 'greater than', '>=': 'at least', '<': 'less than', '<=': 'at most' };

export function emitOpenApi(plan: TablePlan): EmittedFile {
  const { table, singular, path } = plan;
  const ids = plan.operationIds;
  const shown = `${table.schema}.${table.table}`;
  const keyNames = plan.key.map((c) => c.name).join(', ');

  const schemas: Record<string, unknown> = {
    [singular]: {
      type: 'object',
      description: table.description ?? `One row of ${shown}`,
      required: plan.columns.map((c) => c.name),
      additionalProperties: false,
      properties: Object.fromEntries(plan.columns.map((c) => [c.name, c.schema])),
    },
  };
  if (ids.list) schemas[`${singular}Page`] = code(`pageSchema('${singular}', 'A page of ${shown} rows in ${plan.keySource} order')`);
  if (ids.create) {
    schemas[`${singular}Create`] = {
      type: 'object',
      description: `A new ${shown} row: omitted columns take their defaults (identity, serial, DEFAULT)`,
      ...(plan.requiredOnInsert.length ? { required: plan.requiredOnInsert } : {}),
      additionalProperties: false,
      properties: Object.fromEntries(plan.insertable.map((c) => [c.name, c.schema])),
    };
  }
  if (ids.update) {
    schemas[`${singular}Update`] = {
      type: 'object',
      description: `Columns of a ${shown} row to change (the key cannot change)`,
      minProperties: 1,
      additionalProperties: false,
      properties: Object.fromEntries(plan.updatable.map((c) => [c.name, c.schema])),
    };
  }

  const filterParams: ParameterObject[] = plan.filters.map((f) => ({
    name: f.param,
    in: 'query',
    description: `Only rows whose ${f.column.name} is ${describeOperator[f.operator]} this value`,
    schema: valueSchema(f.column),
  }));
  const keyParams: ParameterObject[] = (plan.keyParams ?? []).map((name, i) => ({
    name,
    in: 'path',
    required: true,
    description: `${plan.key[i]!.name} of the row`,
    schema: valueSchema(plan.key[i]!),
    example: exampleKey(plan.key[i]!),
  }));
  const filtersConstant = `${plan.camel}Filters`;
  const keyPath = `/${path}/${(plan.keyParams ?? []).map((p) => `{${p}}`).join('/')}`;
  const getKey = ids.get
    ? `${ids.get}?${[...plan.keyParams!]
        .sort()
        .map((p) => `${p}={${p}}&`)
        .join('')}`
    : undefined;
  const readCaches = [...(ids.list ? [`${ids.list}?`] : []), `${ids.count}?`];
  const rowCaches = [...(getKey ? [getKey] : []), ...readCaches];
  const tags = [path];

  /** Reads are cached; a table with writes says that they evict what they change. */
  const writable = ids.create || ids.update || ids.delete ? '; a write through this API evicts it' : '';
  const operations: unknown[] = [];
  if (ids.list) {
    operations.push({
      path: `/${path}`,
      method: 'get',
      operation: {
        operationId: ids.list,
        tags,
        summary: `${shown} rows, in ${plan.keySource} order (keyset pagination)`,
        description:
          `Follow \`next_cursor\` from the first page to visit every matching row exactly once; a page costs the same at any depth. ` +
          (plan.filters.length
            ? `Filters (combined with AND and with the cursor) are offered on ${[...new Set(plan.filters.map((f) => f.column.name))].join(', ')}, the columns that lead an index.`
            : 'No filters are offered: no column of the table leads an index.'),
        [CACHE_TTL]: 10,
        [READ_FROM]: 'replica',
        parameters: [
          { name: 'limit', in: 'query', description: 'Rows per page, 1 to 1000', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
          {
            name: 'cursor',
            in: 'query',
            description: 'The `next_cursor` of the previous page (omit for the first page)',
            schema: { type: 'string', pattern: '^[A-Za-z0-9_-]+$', maxLength: 2048 },
          },
          ...(filterParams.length ? [code(`...${filtersConstant}`)] : []),
        ],
        responses: {
          '200': { description: `A page of ${path}`, content: { 'application/json': { schema: code(`schemaRef('${singular}Page')`) } } },
          '...': code('tableDatabaseErrors'),
        },
      },
    });
  }
  operations.push({
    path: `/${path}/count`,
    method: 'get',
    operation: {
      operationId: ids.count,
      tags,
      summary: `Number of ${shown} rows${plan.filters.length ? ' matching the filters' : ''}`,
      description: `A full \`count(*)\`${plan.filters.length ? ' of the rows the filters (those of the list) match' : ''}. Cached for up to 30 s${writable}.`,
      [CACHE_TTL]: 30,
      [READ_FROM]: 'replica',
      ...(filterParams.length ? { parameters: code(filtersConstant) } : {}),
      responses: {
        '200': { description: 'The number of rows', content: { 'application/json': { schema: code("schemaRef('RowCount')") } } },
        '...': code('tableDatabaseErrors'),
      },
    },
  });
  const rowResponse = (description: string) => ({ description, content: { 'application/json': { schema: code(`schemaRef('${singular}')`) } } });
  if (ids.get) {
    operations.push({
      path: keyPath,
      method: 'get',
      operation: {
        operationId: ids.get,
        tags,
        summary: `One ${shown} row by ${keyNames}`,
        description: `The row, or 404 when no row has this ${keyNames}. Cached for up to 5 s${writable}.`,
        [CACHE_TTL]: 5,
        parameters: keyParams,
        responses: { '200': rowResponse('The row'), '404': code("errorRef('NotFound')"), '...': code('tableDatabaseErrors') },
      },
    });
  }
  if (ids.create) {
    operations.push({
      path: `/${path}`,
      method: 'post',
      operation: {
        operationId: ids.create,
        tags,
        summary: `Add a ${shown} row`,
        description:
          'Returns the row as stored, with its defaults and identity filled in, and its URL in `Location`. A row the database refuses is a 409 (a unique or foreign key) or 400 (a check, a NOT NULL, a value out of range) naming what was refused.',
        [CACHE_INVALIDATES]: readCaches,
        requestBody: { required: true, content: { 'application/json': { schema: code(`schemaRef('${singular}Create')`) } } },
        responses: {
          '201': {
            ...rowResponse('The row as stored'),
            headers: { Location: { description: 'The URL of the new row', required: true, schema: { type: 'string' } } },
          },
          '...': code('tableWriteErrors'),
        },
      },
    });
  }
  if (ids.update) {
    operations.push({
      path: keyPath,
      method: 'patch',
      operation: {
        operationId: ids.update,
        tags,
        summary: `Change columns of a ${shown} row`,
        description: 'Sets the members sent and returns the row. Cached reads that could contain the row are evicted.',
        [CACHE_INVALIDATES]: rowCaches,
        parameters: keyParams,
        requestBody: { required: true, content: { 'application/json': { schema: code(`schemaRef('${singular}Update')`) } } },
        responses: { '200': rowResponse('The updated row'), '404': code("errorRef('NotFound')"), '...': code('tableWriteErrors') },
      },
    });
  }
  if (ids.delete) {
    operations.push({
      path: keyPath,
      method: 'delete',
      operation: {
        operationId: ids.delete,
        tags,
        summary: `Delete a ${shown} row`,
        description: 'A row other rows still reference is a 409 naming the foreign key.',
        [CACHE_INVALIDATES]: rowCaches,
        parameters: keyParams,
        responses: {
          '204': { description: 'Deleted' },
          '404': code("errorRef('NotFound')"),
          '409': code("errorRef('Conflict')"),
          '...': code('tableDatabaseErrors'),
        },
      },
    });
  }

  const helpers = ['type TableApi', 'schemaRef', 'tableDatabaseErrors'];
  if (ids.list) helpers.push('pageSchema');
  if (ids.get) helpers.push('errorRef');
  if (ids.create) helpers.push('tableWriteErrors');
  const sortedHelpers = helpers.sort((a, b) => a.replace(/^type /, '').localeCompare(b.replace(/^type /, ''), 'en', { sensitivity: 'base' }));
  const filtersSource = filterParams.length
    ? `/** Filters of the list and the count: the columns that lead an index. */\nconst ${filtersConstant}: ParameterObject[] = ${toSource(filterParams)};\n\n`
    : '';
  const imports = [
    ...(filterParams.length ? ["import type { ParameterObject } from 'openapi3-ts/oas31';"] : []),
    `import { ${sortedHelpers.join(', ')} } from './tableApi.ts';`,
  ];
  const text = `${imports.join('\n')}

/*
 * ${shown} under /${path}. Registered in
 * openapi/tables.ts; each operationId names its handler in functions/.
 */

${filtersSource}export const ${apiConstant(plan)}: TableApi = ${toSource({
    tag: { name: path, description: table.description ?? `Rows of ${shown}` },
    schemas,
    operations,
  })};
`;
  return { path: `openapi/${path}.ts`, text };
}
