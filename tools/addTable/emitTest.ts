import { quoteIdent } from '../../lib/db/sqlIdentifiers.ts';
import { type CheckRules, withRules } from './checkConstraints.ts';
import { constantPrefix, dialectModule, type EmittedFile } from './emitFunctions.ts';
import { tableDdl } from './tableDdl.ts';
import type { TablePlan } from './tablePlan.ts';
import { code, toSource } from './tsSource.ts';

/**
 * test/functions/<path>.test.ts: the table's DDL and what the generator read, handed to the shared
 * checks in test/support/tableApiSuite.ts. `samples` are text forms of columns without an exact
 * mapping, read from the table, so generated rows can fill them. `checks` is what the table's checks
 * allow each column, and values read from the table for the checks not understood.
 */
export function emitTest(
  plan: TablePlan,
  samples: ReadonlyMap<string, string | null>,
  checks: { rules: CheckRules['columns']; samples: ReadonlyMap<string, unknown[]> } = { rules: new Map(), samples: new Map() },
): EmittedFile {
  const { table } = plan;
  const keyNames = new Set(plan.key.map((c) => c.name));
  const spec = {
    table: plan.qualified,
    path: `/${plan.path}`,
    ddl: tableDdl(table),
    columns: plan.columns.map((c) => ({
      name: c.name,
      fixture: {
        ...withRules(c.mapping.fixture, checks.rules.get(c.name)),
        ...(c.mapping.loose ? { sample: samples.get(c.name) ?? null } : {}),
        ...(checks.samples.has(c.name) ? { samples: checks.samples.get(c.name) } : {}),
      },
      notNull: c.catalog.notNull || c.mapping.notNull === true,
      filledByDatabase:
        c.catalog.identity !== null || c.catalog.serial || c.catalog.generatedExpr !== null || (keyNames.has(c.name) && c.catalog.defaultExpr !== null),
      writable: c.catalog.generatedExpr === null && c.catalog.identity !== 'always',
    })),
    key: plan.key.map((c) => c.name),
    keyParams: plan.keyParams,
    filters: plan.filters.map((f) => ({ param: f.param, column: f.column.name, operator: f.operator })),
    foreignKeys: table.constraints
      .filter((c) => c.references)
      .map((c) => ({
        columns: c.columns,
        parent: `${quoteIdent(c.references!.schema)}.${quoteIdent(c.references!.table)}`,
        parentColumns: c.references!.columns,
      })),
    uniqueKeys: table.constraints.filter((c) => c.type === 'primary key' || c.type === 'unique').map((c) => c.columns),
    updatable: plan.updatable.map((c) => c.name),
    operations: plan.operationIds,
    // The collection as the handlers serve it, with the owner's narrowing (functions/<singular>Dialect.ts).
    ...(plan.operationIds.list ? { dialect: code(`${constantPrefix(plan)}_DIALECT`) } : {}),
  };
  const dialectImport = plan.operationIds.list ? `import { ${constantPrefix(plan)}_DIALECT } from '../../functions/${dialectModule(plan)}.ts';\n` : '';
  const text = `${dialectImport}import { describeTableApi } from '../support/tableApiSuite.ts';

/**
 * ${table.schema}.${table.table} under /${plan.path}: the table is recreated from
 * this DDL in a throw-away embedded PostgreSQL, filled with generated rows, and every generated
 * operation is checked (see test/support/tableApiSuite.ts), the collection through
 * \`@supabase/postgrest-js\` as a front end would call it, within what functions/${dialectModule(plan)}.ts
 * allows. When the table changes, \`npm run add-table -- ${table.schema}.${table.table} --refresh\`
 * rewrites this file: put checks of your own in another test file.
 */
describeTableApi(${toSource(spec)});
`;
  return { path: `test/functions/${plan.path}.test.ts`, text };
}
