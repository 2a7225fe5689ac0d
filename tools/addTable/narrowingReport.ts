import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { constantPrefix, dialectModule, tableModule } from './emitFunctions.ts';
import type { TablePlan } from './tablePlan.ts';

/**
 * What `--refresh` says about the owner's narrowing (functions/<singular>Dialect.ts, a file it never
 * rewrites) once the table changed: columns it lists that the table lost (the typecheck fails on
 * them too), and new columns its explicit lists leave out. The file is loaded as the service loads
 * it, so what it computes counts, not just what it spells.
 */
export async function narrowingNotes(root: string, plan: TablePlan, added: readonly string[]): Promise<string[]> {
  if (!plan.operationIds.list) return [];
  const file = `functions/${dialectModule(plan)}.ts`;
  if (!existsSync(join(root, file))) return [];
  const name = `${constantPrefix(plan)}_DIALECT`;
  let narrowing: { filterable?: unknown; orderable?: unknown };
  try {
    const loaded = (await import(pathToFileURL(join(root, file)).href)) as Record<string, unknown>;
    narrowing = (loaded[name] ?? {}) as typeof narrowing;
  } catch (err) {
    return [`${file} did not load (${(err as Error).message.split('\n')[0]}): npm run typecheck says why`];
  }
  const columns = new Set(plan.columns.map((c) => c.name));
  const notes: string[] = [];
  const listing = (names: readonly string[]) => `${names.length === 1 ? 'column' : 'columns'} ${names.join(', ')}`;
  for (const key of ['filterable', 'orderable'] as const) {
    const list = narrowing[key];
    if (!Array.isArray(list)) continue;
    const gone = list.filter((n): n is string => typeof n === 'string' && !columns.has(n));
    if (gone.length > 0) {
      notes.push(
        `${file}: ${key} names ${listing(gone)} that ${plan.table.schema}.${plan.table.table} no longer has: remove ${gone.length === 1 ? 'it' : 'them'} (npm run typecheck fails until then)`,
      );
    }
    const left = added.filter((n) => !list.includes(n));
    if (left.length > 0) {
      notes.push(
        `${file}: ${key} lists its columns, so the new ${listing(left)} ${left.length === 1 ? 'is' : 'are'} not ${key}: add ${left.length === 1 ? 'it' : 'them'} there to offer ${left.length === 1 ? 'it' : 'them'}`,
      );
    }
  }
  return notes;
}

/**
 * Handlers generated before the narrowing moved to its own file import `<SINGULAR>_DIALECT` from the
 * table file, which no longer exports it: named, since --refresh never edits a handler.
 */
export function staleDialectImports(root: string, plan: TablePlan, handlers: readonly string[]): string[] {
  const name = `${constantPrefix(plan)}_DIALECT`;
  const stale = new RegExp(`\\b${name}\\b[^;]*from '\\./${tableModule(plan)}\\.ts'`);
  return handlers
    .filter((file) => existsSync(join(root, file)) && stale.test(readFileSync(join(root, file), 'utf8')))
    .map((file) => `${file} imports ${name} from ./${tableModule(plan)}.ts: it now lives in ./${dialectModule(plan)}.ts (yours), so change that import`);
}
