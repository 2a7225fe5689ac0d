import { quoteIdent } from '../../lib/db/sqlIdentifiers.ts';
import type { CatalogTable, PgType } from './catalog.ts';

/**
 * The table's DDL rebuilt from the catalog, for the generated test to recreate it in the embedded
 * PostgreSQL: its schema, the enum and domain types it uses, columns with defaults, identity and
 * generated expressions, constraints, the other indexes and comments. Tables it references get a
 * stand-in holding only the referenced columns.
 */
const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;
const qualifiedType = (type: PgType) => `${quoteIdent(type.schema)}.${quoteIdent(type.name)}`;

function typeStatements(type: PgType, done: Set<string>, out: string[]): void {
  if (type.element) typeStatements(type.element, done, out);
  if (type.base) typeStatements(type.base, done, out);
  if (type.kind !== 'enum' && type.kind !== 'domain') return;
  const name = qualifiedType(type);
  if (done.has(name)) return;
  done.add(name);
  if (type.schema !== 'public') out.push(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(type.schema)}`);
  if (type.kind === 'enum') out.push(`CREATE TYPE ${name} AS ENUM (${type.enumLabels!.map(literal).join(', ')})`);
  else
    out.push(
      `CREATE DOMAIN ${name} AS ${type.base!.declared}${type.domainNotNull ? ' NOT NULL' : ''}${(type.domainChecks ?? []).map((c) => ` ${c}`).join('')}`,
    );
}

const SERIALS: Record<string, string> = { int2: 'smallserial', int4: 'serial', int8: 'bigserial' };

export function tableDdl(table: CatalogTable): string[] {
  const qualified = `${quoteIdent(table.schema)}.${quoteIdent(table.table)}`;
  const statements: string[] = [];
  if (table.schema !== 'public') statements.push(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(table.schema)}`);
  statements.push(`DROP TABLE IF EXISTS ${qualified} CASCADE`);
  const done = new Set<string>();
  for (const column of table.columns) typeStatements(column.type, done, statements);

  const definitions = table.columns.map((column) => {
    const serial = column.serial ? SERIALS[column.type.name] : undefined;
    let text = `${quoteIdent(column.name)} ${serial ?? column.type.declared}`;
    if (column.identity) text += ` GENERATED ${column.identity.toUpperCase()} AS IDENTITY`;
    else if (column.generatedExpr) text += ` GENERATED ALWAYS AS (${column.generatedExpr}) STORED`;
    else if (column.defaultExpr && !serial) text += ` DEFAULT ${column.defaultExpr}`;
    if (column.notNull && !column.identity && !serial) text += ' NOT NULL';
    return text;
  });
  for (const constraint of table.constraints) definitions.push(`CONSTRAINT ${quoteIdent(constraint.name)} ${constraint.definition}`);
  statements.push(...parentStandIns(table));
  statements.push(`CREATE TABLE ${qualified} (\n  ${definitions.join(',\n  ')}\n)`);
  for (const index of table.indexes) if (!index.backsConstraint) statements.push(index.definition);
  if (table.comment) statements.push(`COMMENT ON TABLE ${qualified} IS ${literal(table.comment)}`);
  for (const column of table.columns) {
    if (column.comment) statements.push(`COMMENT ON COLUMN ${qualified}.${quoteIdent(column.name)} IS ${literal(column.comment)}`);
  }
  return statements;
}

/** Referenced tables, reduced to the referenced columns (their key), unless they already exist. */
function parentStandIns(table: CatalogTable): string[] {
  const parents: string[] = [];
  for (const constraint of table.constraints) {
    const ref = constraint.references;
    if (!ref || (ref.schema === table.schema && ref.table === table.table)) continue;
    const parent = `${quoteIdent(ref.schema)}.${quoteIdent(ref.table)}`;
    if (ref.schema !== 'public') parents.push(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(ref.schema)}`);
    const columns = ref.columns.map((name, i) => `${quoteIdent(name)} ${ref.columnTypes[i]}`);
    parents.push(`CREATE TABLE IF NOT EXISTS ${parent} (${columns.join(', ')}, PRIMARY KEY (${ref.columns.map(quoteIdent).join(', ')}))`);
  }
  return parents;
}
