import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TableName } from './catalog.ts';
import { tableModule } from './emitFunctions.ts';
import type { TablePlan } from './tablePlan.ts';

/**
 * What add-table wrote for one table, kept next to its spec (`openapi/<path>.add-table.json`) so
 * `--refresh` knows the table, the options it was generated with, the columns it saw, and each
 * file as written: a machine-owned file that no longer matches was edited by hand, and a handler
 * that no longer matches is the owner's own code.
 */
export interface ManifestColumn {
  name: string;
  /** As declared, with its modifier: `numeric(10,2)`, `character varying(20)`. */
  type: string;
  notNull: boolean;
}

export interface Manifest {
  table: TableName;
  path: string;
  write: boolean;
  columns: ManifestColumn[];
  key: string[];
  operations: Record<string, string>;
  /** File → sha256 of its text as add-table wrote it. */
  files: Record<string, string>;
}

export const manifestPath = (path: string) => `openapi/${path}.add-table.json`;

/**
 * The files `--refresh` rewrites from the catalog: the table's metadata module (columns, wire
 * forms, filters, constraints: what the handlers import), its spec entries and its test. The
 * handlers are the owner's: `--refresh` never writes them.
 */
export const machineOwnedFiles = (plan: TablePlan) => [`functions/${tableModule(plan)}.ts`, `openapi/${plan.path}.ts`, `test/functions/${plan.path}.test.ts`];

export const digest = (text: string) => createHash('sha256').update(text).digest('hex');

export function buildManifest(plan: TablePlan, options: { write: boolean }, written: ReadonlyMap<string, string>): Manifest {
  return {
    table: { schema: plan.table.schema, table: plan.table.table },
    path: plan.path,
    write: options.write,
    columns: plan.table.columns.map((c) => ({ name: c.name, type: c.type.declared, notNull: c.notNull })),
    key: plan.key.map((c) => c.name),
    operations: { ...plan.operationIds } as Record<string, string>,
    files: Object.fromEntries([...written].map(([file, text]) => [file, digest(text)])),
  };
}

/** The manifests in `root` for this table (one per --path it was generated under). */
export function findManifests(root: string, name: TableName): Array<{ file: string; manifest: Manifest }> {
  const dir = join(root, 'openapi');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.add-table.json'))
    .map((f) => ({ file: `openapi/${f}`, manifest: JSON.parse(readFileSync(join(dir, f), 'utf8')) as Manifest }))
    .filter(({ manifest }) => manifest.table.schema === name.schema && manifest.table.table === name.table);
}

/** Columns added, dropped and retyped (and whose NOT NULL changed) between two readings of the table. */
export function columnChanges(before: ManifestColumn[], after: ManifestColumn[]): string[] {
  const old = new Map(before.map((c) => [c.name, c]));
  const now = new Map(after.map((c) => [c.name, c]));
  const changes: string[] = [];
  for (const column of after) {
    const was = old.get(column.name);
    if (!was) changes.push(`column added: ${column.name} (${column.type}${column.notNull ? ' NOT NULL' : ''})`);
    else if (was.type !== column.type) changes.push(`column retyped: ${column.name}: ${was.type} → ${column.type}`);
    if (was && was.notNull !== column.notNull) changes.push(`column ${column.name}: ${column.notNull ? 'now NOT NULL' : 'now nullable'}`);
  }
  for (const column of before) if (!now.has(column.name)) changes.push(`column dropped: ${column.name} (${column.type})`);
  return changes;
}
