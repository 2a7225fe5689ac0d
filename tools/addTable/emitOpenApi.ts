import type { ParameterObject, SchemaObject } from 'openapi3-ts/oas31';
import { constantPrefix, dialectModule, type EmittedFile } from './emitFunctions.ts';
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
    // The collection in PostgREST's dialect (openapi/postgrestDialect.ts): GET/HEAD, and with --write POST, PATCH, DELETE, PUT.
    const dialect = {
      path: `/${path}`,
      tag: path,
      table: shown,
      itemSchema: singular,
      ...(ids.create ? { createSchema: `${singular}Create` } : {}),
      columns: plan.columns.map((c) => c.name),
      primaryKey: plan.key.map((c) => c.name),
      operationIds: {
        read: ids.list,
        ...(ids.create ? { create: ids.create } : {}),
        ...(ids.updateWhere ? { update: ids.updateWhere } : {}),
        ...(ids.deleteWhere ? { remove: ids.deleteWhere } : {}),
        ...(ids.replace ? { replace: ids.replace } : {}),
      },
      cacheTtlSeconds: 10,
      // The owner's narrowing (functions/<singular>Dialect.ts): only the filters and order keys it allows are offered.
      narrowing: code(`${constantPrefix(plan)}_DIALECT`),
    };
    // A write through the dialect may change any row: every cached read of the table goes.
    const everyRead = [...readCaches, ...(ids.get ? [`${ids.get}?`] : [])];
    operations.push(code(`...dialectOperations(${toSource(dialect)}, ${toSource(everyRead)})`));
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
  if (ids.get) helpers.push('errorRef');
  if (ids.update) helpers.push('tableWriteErrors');
  const sortedHelpers = helpers.sort((a, b) => a.replace(/^type /, '').localeCompare(b.replace(/^type /, ''), 'en', { sensitivity: 'base' }));
  const filtersSource = filterParams.length
    ? `/** Filters of the list and the count: the columns that lead an index. */\nconst ${filtersConstant}: ParameterObject[] = ${toSource(filterParams)};\n\n`
    : '';
  const imports = [
    ...(filterParams.length ? ["import type { ParameterObject } from 'openapi3-ts/oas31';"] : []),
    ...(ids.list ? [`import { ${constantPrefix(plan)}_DIALECT } from '../functions/${dialectModule(plan)}.ts';`] : []),
    ...(ids.list ? ["import { dialectOperations } from './postgrestDialect.ts';"] : []),
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
