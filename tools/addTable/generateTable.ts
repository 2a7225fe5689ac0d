import type pg from 'pg';
import { quoteIdent } from '../../lib/db/sqlIdentifiers.ts';
import { parseTableName, readTable } from './catalog.ts';
import { readChecks } from './checkConstraints.ts';
import { dialectModule, emitFunctions, tableModule, type EmittedFile } from './emitFunctions.ts';
import { apiConstant, emitOpenApi } from './emitOpenApi.ts';
import { emitTest } from './emitTest.ts';
import { machineOwnedFiles, manifestPath } from './manifest.ts';
import { register } from './registration.ts';
import { planTable, type TablePlan } from './tablePlan.ts';

export interface GeneratedTable {
  plan: TablePlan;
  files: EmittedFile[];
  /** Edits to the registration lists: the new text of each from its current text. */
  registrations: Array<{ file: string; apply: (source: string) => string }>;
  /** The operations' methods and path templates. */
  endpoints: Array<{ method: string; path: string; operationId: string }>;
  /** What the command prints: files, endpoints, notes and warnings. */
  report: string;
}

/** Text forms of columns without an exact mapping, read from the table, so the generated test can fill them. */
async function looseSamples(db: Pick<pg.Pool, 'query'>, plan: TablePlan): Promise<Map<string, string | null>> {
  const samples = new Map<string, string | null>();
  for (const column of plan.columns.filter((c) => c.mapping.loose)) {
    const { rows } = await db.query<{ value: string }>(
      `SELECT ${quoteIdent(column.name)}::text AS value FROM ${plan.qualified} WHERE ${quoteIdent(column.name)} IS NOT NULL LIMIT 1`,
    );
    samples.set(column.name, rows[0]?.value ?? null);
  }
  return samples;
}

/**
 * Rows of the columns of checks the generator could not read (`~ '^[A-Z]'`, a function), in their
 * wire form and aligned by row: values the table already holds satisfy those checks, so the
 * generated test tries them when its own values are refused.
 */
async function checkSamples(db: Pick<pg.Pool, 'query'>, plan: TablePlan, columns: string[]): Promise<Map<string, unknown[]>> {
  const samples = new Map<string, unknown[]>();
  const planned = plan.columns.filter((c) => columns.includes(c.name));
  if (planned.length === 0) return samples;
  // In key order where there is a key, so the same table gives the same generated test.
  const order = plan.key.length > 0 ? ` ORDER BY ${plan.key.map((c) => c.sql).join(', ')}` : '';
  const { rows } = await db.query<{ row: string }>(
    `SELECT json_build_array(${planned.map((c) => c.output).join(', ')})::text AS row FROM ${plan.qualified} AS t${order} LIMIT 20`,
  );
  const values = rows.map((r) => JSON.parse(r.row) as unknown[]);
  if (values.length === 0) return samples;
  for (const [n, column] of planned.entries()) {
    const aligned = values.map((v) => v[n]);
    samples.set(column.name, aligned);
  }
  return samples;
}

function endpoints(plan: TablePlan): string[][] {
  const ids = plan.operationIds;
  const keyPath = `/${plan.path}/${(plan.keyParams ?? []).map((p) => `{${p}}`).join('/')}`;
  const filters = plan.filters.length
    ? `filters: ${[...new Set(plan.filters.map((f) => f.column.name))].map((n) => `${n}[.gt|.gte|.lt|.lte]`).join(', ')}`
    : 'no filters';
  const rows: string[][] = [];
  if (ids.list)
    rows.push(['GET', `/${plan.path}`, ids.list, "PostgREST's dialect: select=, filters on every column, order=, Range, Prefer: count, single, CSV"]);
  rows.push(['GET', `/${plan.path}/count`, ids.count, filters]);
  if (ids.get) rows.push(['GET', keyPath, ids.get, '404 when absent']);
  if (ids.create) rows.push(['POST', `/${plan.path}`, ids.create, 'one row or an array; upsert with Prefer: resolution=…']);
  if (ids.updateWhere) rows.push(['PATCH', `/${plan.path}`, ids.updateWhere, 'rows matching the filters (a filter is required)']);
  if (ids.deleteWhere) rows.push(['DELETE', `/${plan.path}`, ids.deleteWhere, 'rows matching the filters (a filter is required)']);
  if (ids.replace) rows.push(['PUT', `/${plan.path}`, ids.replace, 'one whole row by <key>=eq.<value>']);
  if (ids.update) rows.push(['PATCH', keyPath, ids.update, '']);
  if (ids.delete) rows.push(['DELETE', keyPath, ids.delete, '204']);
  return rows;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => `  ${r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')}`.trimEnd()).join('\n');
}

/**
 * The first line of every file the command writes: --force replaces a file only when it starts
 * with a header for the same table, never a hand-written file or another table's. Machine-owned
 * files (manifest.ts: the table's metadata module, spec entries and test) say that --refresh
 * rewrites them; the handlers and the narrowing (<singular>Dialect.ts) are the owner's.
 */
const generatedHeader = (schema: string, table: string, machineOwned = false) =>
  machineOwned
    ? `// Written by \`npm run add-table\` for ${schema}.${table} from the catalog: --refresh rewrites it, so put your own code in the handlers.`
    : `// Written by \`npm run add-table\` for ${schema}.${table}: yours to edit; re-running with --force replaces it.`;

/** Whether add-table wrote `text` for this table (either header). */
export const writtenFor = (text: string, schema: string, table: string) =>
  [true, false].some((machineOwned) => text.startsWith(`${generatedHeader(schema, table, machineOwned)}\n`));

export async function generateTable(db: Pick<pg.Pool, 'query'>, name: string, options: { path?: string; writes: boolean }): Promise<GeneratedTable> {
  const catalog = await readTable(db, parseTableName(name));
  const plan = planTable(catalog, options);
  const kinds = new Map(plan.columns.map((c) => [c.name, c.mapping.fixture.kind]));
  const checks = readChecks(catalog, (column) => kinds.get(column) ?? 'other');
  const unreadColumns = [...new Set(checks.unread.flatMap((c) => c.columns))];
  const tested = emitTest(plan, await looseSamples(db, plan), { rules: checks.columns, samples: await checkSamples(db, plan, unreadColumns) });
  const machineOwned = new Set(machineOwnedFiles(plan));
  const files = [...emitFunctions(plan), emitOpenApi(plan), tested].map((file) => ({
    ...file,
    text: `${generatedHeader(catalog.schema, catalog.table, machineOwned.has(file.path))}\n${file.text}`,
  }));
  const handlerIds = Object.values(plan.operationIds);
  const registrations = [
    {
      file: 'openapi/tables.ts',
      apply: (source: string) =>
        register(source, {
          file: 'openapi/tables.ts',
          importLine: `import { ${apiConstant(plan)} } from './${plan.path}.ts';`,
          entryLine: `${apiConstant(plan)},`,
        }),
    },
    {
      file: 'functions/tableHandlers.ts',
      apply: (source: string) =>
        register(source, {
          file: 'functions/tableHandlers.ts',
          importLine: handlerIds.map((id) => `import { ${id} } from './${id}.ts';`).join('\n'),
          entryLine: `${handlerIds.join(', ')},`,
        }),
    },
  ];

  const keyText = plan.key.length ? `${plan.keySource} (${plan.key.map((c) => c.name).join(', ')})` : 'no key to walk';
  const count = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
  const lines = [
    `Read ${catalog.schema}.${catalog.table}: ${count(catalog.columns.length, 'column', 'columns')}, ${keyText}, ` +
      `${count(catalog.indexes.length, 'index', 'indexes')}, ${count(catalog.constraints.length, 'constraint', 'constraints')}`,
    '',
    'Wrote:',
    ...files.map((f) => `  ${f.path}`),
    `  ${manifestPath(plan.path)} (what --refresh reads)`,
    `Registered in openapi/tables.ts and functions/tableHandlers.ts (${tableModule(plan)} holds the table's SQL pieces)`,
    ...(plan.operationIds.list
      ? [`What clients may filter and order by, and the most rows a response carries: functions/${dialectModule(plan)}.ts (yours; --refresh keeps it)`]
      : []),
    '',
    'Endpoints:',
    table(endpoints(plan)),
  ];
  if (plan.notes.length) lines.push('', ...plan.notes.map((n) => `Note: ${n}`));
  if (plan.warnings.length) lines.push('', ...plan.warnings.map((w) => `Warning: ${w}`));
  lines.push('', `Next: npm run typecheck && node --import tsx --test test/functions/${plan.path}.test.ts, then npm start and open /docs`);
  return {
    plan,
    files,
    registrations,
    endpoints: endpoints(plan).map(([method, path, operationId]) => ({ method: method!, path: path!, operationId: operationId! })),
    report: lines.join('\n'),
  };
}
