import type { HeadersObject, OperationObject, ParameterObject, RequestBodyObject, ResponseObject, ResponsesObject, SchemaObject } from 'openapi3-ts/oas31';
import type { TableNarrowing } from '../lib/postgrest/tableShape.ts';
import { schemaRef, type TableApi, tableDatabaseErrors, tableWriteErrors } from './tableApi.ts';

/**
 * The contract of a generated table's collection in PostgREST's dialect (lib/postgrest/): the query
 * parameters, the Prefer/Range/Accept headers, and the answers with their Content-Range, one
 * object or CSV. The router hands these operations the raw query string (`x-postgrest`); these
 * entries document it, and the contract tests check every answer against them.
 */
export interface DialectTable {
  /** `/rides` */
  path: string;
  tag: string;
  /** The table, for descriptions: `public.nyc_train_synced`. */
  table: string;
  /** The row schema's component name (`Ride`). */
  itemSchema: string;
  /** The schema of a new row (`RideCreate`: defaults may be omitted); default itemSchema. */
  createSchema?: string;
  /** Every column, for the filter parameters. */
  columns: readonly string[];
  /** Primary key columns (PUT addresses a row by all of them). */
  primaryKey: readonly string[];
  operationIds: { read: string; create?: string; update?: string; remove?: string; replace?: string };
  cacheTtlSeconds: number;
  /** Most rows a response carries, when set here; else the narrowing's maxRows, else DB_MAX_ROWS. */
  maxRows?: number;
  /** What the owner allows (functions/<singular>Dialect.ts): the filters and order keys offered, the row bound. */
  narrowing?: TableNarrowing;
}

const PGRST_FIELDS = "The problem body carries PostgREST's `code`, `message`, `details` and `hint` (e.g. `PGRST100`, `23505`).";

const param = (name: string, description: string, schema: SchemaObject = { type: 'string' }): ParameterObject => ({ name, in: 'query', description, schema });
const header = (name: string, description: string, schema: SchemaObject = { type: 'string' }): ParameterObject => ({ name, in: 'header', description, schema });

function filterParameters(table: DialectTable): ParameterObject[] {
  const filterable = table.narrowing?.filterable ?? table.columns;
  return [
    ...filterable.map((column) =>
      param(
        column,
        `Filter on ${column}: \`[not.]<operator>.<value>\` with eq, neq, gt, gte, lt, lte, like, ilike, match, imatch, in.(a,b), is.null|true|false, isdistinct, cs, cd, ov, fts/plfts/phfts/wfts(<config>); repeat to AND. A JSON column takes a path on the left (\`${column}->k\`, \`${column}->>k\`).`,
      ),
    ),
    param('or', 'Conditions of which one must hold: `(a.eq.1,b.gt.2,and(c.lt.3,d.is.null))`; also `and`, `not.or`, `not.and`'),
    param('and', 'Conditions that must all hold, as for `or`'),
  ];
}

const selectParam = param(
  'select',
  'Columns to return: `a,b`, `alias:a`, `a::text` (allowed casts: text, int, bigint, numeric, float8, boolean, date, timestamp(tz), uuid, json(b), …), JSON paths `meta->>k`; default `*`',
);

const maxRowsText = (table: DialectTable) => {
  const maxRows = table.maxRows ?? table.narrowing?.maxRows;
  return maxRows === undefined ? 'DB_MAX_ROWS (default 1000)' : String(maxRows);
};

const readHeaders = (table: DialectTable): ParameterObject[] => [
  header('Prefer', '`count=exact|planned|estimated` (answered in Content-Range)'),
  header('Range', `Rows \`from-to\` (0-based, inclusive), intersected with limit/offset; at most ${maxRowsText(table)} rows a response`),
  header(
    'Accept',
    '`application/json` (default), `application/vnd.pgrst.object+json` (exactly one row, else 406), `text/csv`; `;nulls=stripped` drops null members',
  ),
];

const writeHeaders: ParameterObject[] = [
  header(
    'Prefer',
    '`return=minimal|headers-only|representation`, `count=exact`, `resolution=merge-duplicates|ignore-duplicates` (upsert), `missing=default`, `handling=strict` with `max-affected=<n>`',
  ),
  header('Accept', 'With return=representation: as for reads'),
];

const pageHeaders: HeadersObject = {
  Link: { description: 'A full page in primary key order: `<…>; rel="next"`, the same request continued after its last key', schema: { type: 'string' } },
  'Content-Range': {
    description: 'Rows of the answer and the total when counted: `0-24/3573`, `*/0`',
    schema: { type: 'string', pattern: '^(\\d+-\\d+|\\*)/(\\d+|\\*)$' },
  },
};

const rowObject = (table: DialectTable): SchemaObject => ({
  type: 'object',
  description: `A ${table.table} row: every column (the ${table.itemSchema} schema) by default, or as select= shapes it`,
});

function rowsContent(table: DialectTable): ResponseObject['content'] {
  return {
    'application/json': { schema: { type: 'array', items: rowObject(table) } },
    'application/vnd.pgrst.object+json': { schema: rowObject(table) },
    'text/csv': { schema: { type: 'string', description: 'A header line with the member names, then one line per row' } },
  };
}

const problemResponse = (description: string): ResponseObject => ({
  description: `${description}. ${PGRST_FIELDS}`,
  content: { 'application/problem+json': { schema: schemaRef('Problem') } },
});

const refusals = {
  '400': problemResponse(
    'The query string, Prefer header or body is refused (PGRST100, PGRST102, PGRST122, PGRST124, PGRST204, 42703, 22P02, 23502, 23514, …), before any change',
  ),
  '406': problemResponse('PGRST116: one object was asked for and zero or several rows matched; or PGRST107: no acceptable media type'),
};

function readOperation(table: DialectTable): OperationObject & { operationId: string } {
  const responses: ResponsesObject = {
    '200': { description: `${table.table} rows`, headers: pageHeaders, content: rowsContent(table) },
    '206': { description: 'Part of a counted result (Prefer: count=…)', headers: pageHeaders, content: rowsContent(table) },
    ...tableDatabaseErrors,
    ...refusals,
    '416': problemResponse('PGRST103: the range starts past the counted rows'),
  };
  return {
    operationId: table.operationIds.read,
    tags: [table.tag],
    summary: `${table.table} rows in PostgREST's dialect`,
    description:
      "Works with `@supabase/postgrest-js` and the Lakebase Data API's other clients. Without order= rows come in primary key order. " +
      `Content-Range says which rows came (and the count when asked); at most ${maxRowsText(table)} rows a response. A full page in key order links to the next in \`Link: <…>; rel="next"\`.`,
    'x-postgrest': true,
    // The primary key: single() by it is a point read (lib/postgrest/dialectInput.ts, asksOneRowByKey), not a scan.
    'x-postgrest-key': [...table.primaryKey],
    'x-cache-ttl-seconds': table.cacheTtlSeconds,
    'x-read-from': 'replica',
    parameters: [
      selectParam,
      param(
        'order',
        `Sort keys: \`a.desc.nullslast,b\` (asc|desc, nullsfirst|nullslast)${table.narrowing?.orderable ? `; only by ${table.narrowing.orderable.join(', ') || 'no column'}` : ''}`,
      ),
      param('limit', 'Most rows to return', { type: 'string', pattern: '^\\d+$' }),
      param('offset', 'Rows to skip', { type: 'string', pattern: '^\\d+$' }),
      ...filterParameters(table),
      ...readHeaders(table),
    ],
    responses,
  };
}

function writeOperation(
  table: DialectTable,
  operationId: string,
  verb: 'create' | 'update' | 'remove' | 'replace',
  invalidates: string[],
): OperationObject & { operationId: string } {
  const rows: ResponseObject = {
    description: 'The rows written (Prefer: return=representation), shaped by select=',
    headers: pageHeaders,
    content: rowsContent(table),
  };
  const body: RequestBodyObject = {
    required: verb !== 'remove',
    content: {
      'application/json': {
        schema:
          verb === 'create'
            ? {
                oneOf: [schemaRef(table.createSchema ?? table.itemSchema), { type: 'array', items: schemaRef(table.createSchema ?? table.itemSchema) }],
                description: 'One row or an array (columns=)',
              }
            : verb === 'update'
              ? { type: 'object', description: `Members of ${table.itemSchema} to set on every matching row` }
              : schemaRef(table.itemSchema),
      },
    },
  };
  const responses: ResponsesObject =
    verb === 'create'
      ? {
          '201': {
            ...rows,
            description: 'Created (with the rows when Prefer: return=representation)',
            headers: {
              ...pageHeaders,
              Location: { description: 'Prefer: return=headers-only, one row: the row as a filter on its key, `/<path>?id=eq.1`', schema: { type: 'string' } },
            },
          },
        }
      : { '200': rows, '204': { description: 'Done; nothing returned (Prefer: return=minimal, the default)', headers: pageHeaders } };
  const summaries = {
    create: `Insert ${table.table} rows (one or an array); upsert with Prefer: resolution=…`,
    update: `Update the ${table.table} rows the filters match (a filter is required)`,
    remove: `Delete the ${table.table} rows the filters match (a filter is required)`,
    replace: `Insert or replace one ${table.table} row addressed by its whole primary key (${table.primaryKey.map((k) => `${k}=eq.…`).join('&')})`,
  };
  return {
    operationId,
    tags: [table.tag],
    summary: summaries[verb],
    'x-postgrest': true,
    'x-cache-invalidates': invalidates,
    parameters: [
      selectParam,
      ...(verb === 'create'
        ? [
            param('columns', 'The columns to insert from each object: `"a","b"`'),
            param('on_conflict', 'The unique columns an upsert resolves on (default the primary key)'),
          ]
        : []),
      ...(verb === 'create' ? [] : filterParameters(table)),
      ...writeHeaders,
    ],
    ...(verb === 'remove' ? {} : { requestBody: body }),
    responses: {
      ...responses,
      ...tableWriteErrors,
      ...refusals,
      ...(verb === 'replace' ? { '405': problemResponse("PGRST105: the filters are not exactly the primary key's eq") } : {}),
    },
  };
}

/** The dialect's operations on `table.path`: GET (and HEAD) always, the writes whose operationIds are given. */
export function dialectOperations(table: DialectTable, invalidates: string[]): TableApi['operations'] {
  const operations: TableApi['operations'] = [{ path: table.path, method: 'get', operation: readOperation(table) }];
  const { create, update, remove, replace } = table.operationIds;
  if (create) operations.push({ path: table.path, method: 'post', operation: writeOperation(table, create, 'create', invalidates) });
  if (update) operations.push({ path: table.path, method: 'patch', operation: writeOperation(table, update, 'update', invalidates) });
  if (remove) operations.push({ path: table.path, method: 'delete', operation: writeOperation(table, remove, 'remove', invalidates) });
  if (replace) operations.push({ path: table.path, method: 'put', operation: writeOperation(table, replace, 'replace', invalidates) });
  return operations;
}
